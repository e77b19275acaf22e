"""Fixtures for the pipeline tests; the fakes themselves live in pipeline_fakes.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make pipeline_fakes importable

from pipeline_fakes import FakeEngine, FakeKnowledge, FakeRetriever, scenario_context

from assistant.pipeline import Assistant
from assistant.settings import load_settings


@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path, llm="none", llm_timeout_s=5.0)


@pytest.fixture
def make_assistant(settings, fake_embedder):
    def make(chat_model: Any = None, *, retriever: Any = None, engine: Any = None, **kw: Any) -> Assistant:
        s = settings if chat_model is None else settings.model_copy(update={"llm": "openai", **kw.pop("settings", {})})
        return Assistant(
            s,
            retriever=retriever or FakeRetriever(),
            engine=engine or FakeEngine(),
            knowledge=FakeKnowledge(),
            chat_model=chat_model,
            embedder=fake_embedder,
            extract_context=scenario_context,
            **kw,
        )

    return make


