"""Language-model backends and the local model file (see backends.py and assets.py)."""

from __future__ import annotations

__all__ = ["ensure_model", "make_chat_model"]


def __getattr__(name: str):  # lazy: importing assistant.llm must not pull in LangChain or llama.cpp
    if name == "make_chat_model":
        from assistant.llm.backends import make_chat_model

        return make_chat_model
    if name == "ensure_model":
        from assistant.llm.assets import ensure_model

        return ensure_model
    raise AttributeError(name)
