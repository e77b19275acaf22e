"""Chat-model backends behind one factory: ``local`` (embedded GGUF via llama-cpp-python + LangChain's
ChatLlamaCpp), ``openai`` (any OpenAI-compatible server via ChatOpenAI) and ``none``.

Loading the 1 GB GGUF takes seconds and ~2 GB RAM, so the local model is wrapped in a lazy proxy:
``make_chat_model`` returns at once and the real model is built on first use, then cached for the
process (one copy shared by every Assistant, UI session and eval worker).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from assistant.errors import ConfigError, LLMError
from assistant.settings import Settings

log = logging.getLogger(__name__)

_CACHE: dict[tuple[Any, ...], BaseChatModel] = {}
_LOCK = threading.Lock()

# Qwen2.5 chat template stop markers (why: llama.cpp's chat handler normally adds them, but a model
# that rambles past the answer wastes seconds of a 30 s budget).
_LOCAL_STOP = ["<|im_end|>", "<|endoftext|>"]


def _cached(key: tuple[Any, ...], build: Callable[[], BaseChatModel]) -> BaseChatModel:
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = build()
            _CACHE[key] = model
        return model


def clear_cache() -> None:
    """Forget loaded models (tests; frees the local model's memory once nothing else holds it)."""
    with _LOCK:
        _CACHE.clear()


def _close_local_models() -> None:
    # Close llama.cpp explicitly before interpreter shutdown: its __del__ otherwise runs after module
    # globals are gone and prints a TypeError traceback on exit.
    for model in list(_CACHE.values()):
        inner = getattr(model, "_inner", None)
        client = getattr(inner, "client", None)
        close = getattr(client, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:  # best effort at exit
                log.debug("closing the local model failed: %s", exc)


atexit.register(_close_local_models)


class LazyChatModel(BaseChatModel):
    """Builds the wrapped chat model on first call (thread-safe) and delegates generate/stream to it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    backend: str
    model_name: str = ""
    loader: Callable[[], BaseChatModel]
    _inner: BaseChatModel | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return f"guiderail-lazy-{self.backend}"

    @property
    def loaded(self) -> bool:
        return self._inner is not None

    def load(self) -> BaseChatModel:
        with self._lock:
            if self._inner is None:
                try:
                    self._inner = self.loader()
                except LLMError:
                    raise
                except Exception as exc:  # a broken build or file must become an LLMError the pipeline handles
                    raise LLMError(f"could not load the {self.backend} model: {exc}") from exc
            return self._inner

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self.load()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self.load()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's own tokenizer (local: exact; others: LangChain's estimate)."""
        inner = self.load()
        client = getattr(inner, "client", None)
        if client is not None and hasattr(client, "tokenize"):
            return len(client.tokenize(text.encode("utf-8"), add_bos=False, special=True))
        return inner.get_num_tokens(text)


def _build_local(settings: Settings) -> BaseChatModel:
    from assistant.llm.assets import ensure_model

    path: Path = ensure_model(settings)
    try:
        import llama_cpp  # noqa: F401  (fail with our message, not LangChain's)
    except ImportError as exc:
        raise LLMError(
            "llama-cpp-python is not installed; run `make setup` (it builds a portable AVX2 wheel)"
        ) from exc
    from langchain_community.chat_models import ChatLlamaCpp

    log.info("loading local model %s (threads=%d, ctx=%d)", path.name, settings.llm_threads, settings.llm_context)
    return ChatLlamaCpp(
        model_path=str(path),
        n_ctx=settings.llm_context,
        n_threads=settings.llm_threads,
        # The LangChain default n_batch=8 makes prompt prefill several times slower; 512 lets llama.cpp
        # process the whole ~800-token prompt in two matrix batches.
        n_batch=512,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        top_p=0.9,
        repeat_penalty=1.05,
        streaming=True,
        stop=_LOCAL_STOP,
        seed=42,
        verbose=False,
    )


def _build_openai(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    # A local server (vLLM, llama.cpp, Ollama) usually needs no key, but the client insists on one.
    return ChatOpenAI(
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        api_key=settings.openai_api_key or "not-needed",
        timeout=settings.llm_timeout_s,
        max_retries=1,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        # No streaming=True here: the pipeline calls .stream() itself, and with the flag set this
        # langchain-openai version sends stream=true on .invoke() too and then rejects the reply.
    )


def make_chat_model(settings: Settings) -> BaseChatModel | None:
    """The chat model for ``settings.llm`` (None for ``none``). Cheap: nothing is loaded until first use."""
    if settings.llm == "none":
        return None
    if settings.llm == "local":
        key: tuple[Any, ...] = (
            "local",
            str(settings.model_path or settings.models_dir),
            settings.llm_threads,
            settings.llm_context,
            settings.llm_max_tokens,
            settings.llm_temperature,
        )
        return _cached(
            key,
            lambda: LazyChatModel(backend="local", model_name="qwen2.5-coder-1.5b-instruct-q4_k_m", loader=lambda: _build_local(settings)),
        )
    if settings.llm == "openai":
        if not settings.openai_base_url:
            raise ConfigError("llm=openai needs GUIDERAIL_OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1)")
        key = ("openai", settings.openai_base_url, settings.openai_model, settings.llm_max_tokens, settings.llm_temperature)
        return _cached(
            key,
            lambda: LazyChatModel(backend="openai", model_name=settings.openai_model, loader=lambda: _build_openai(settings)),
        )
    raise ConfigError(f"unknown llm backend {settings.llm!r}; choose local, openai or none")


def local_token_counter(settings: Settings) -> Callable[[str], int]:
    """Exact token counts in the local model's own tokenizer, loading only its vocabulary (~0.3 s, no
    weights): for prompt budgeting in tests and benchmarks without paying for the 1 GB model."""
    from assistant.llm.assets import ensure_model

    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise LLMError("llama-cpp-python is not installed; run `make setup`") from exc
    vocab = Llama(model_path=str(ensure_model(settings)), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    return count


def model_label(model: BaseChatModel | None) -> str:
    """A short name for reports: the model name when known, else the class name."""
    if model is None:
        return ""
    return getattr(model, "model_name", "") or type(model).__name__
