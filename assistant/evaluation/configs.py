"""Evaluation configurations: what `--compare none,local,naive-none,none@top_k=3` means, and how each is built.

Grammar: ``KIND[@field=value]...``
- KIND ``none`` | ``local`` | ``openai``: the GuideRail pipeline with that answer backend;
- KIND ``naive`` | ``naive-none`` | ``naive-local`` | ``naive-openai``: the naive RAG baseline with that LLM
  (``naive`` alone uses the run's own backend);
- each ``@field=value`` overrides one Settings field for this configuration only (e.g. ``@top_k=3``,
  ``@candidates_k=10``, ``@min_relevance=0.1``), validated like any setting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.errors import ConfigError
from assistant.models import Answer
from assistant.settings import Settings

log = logging.getLogger(__name__)

BACKENDS = ("none", "local", "openai")


class Answerer(Protocol):
    def ask(
        self,
        question: str,
        *,
        patient: str | None = None,
        history: Sequence[dict[str, str]] | None = None,
        audience: str = "clinician",
        context: Any = None,
    ) -> Answer: ...


# query, k → retrieved passages as plain dicts (doc_id, rec_id, section_path, chunk_id)
RecallProbe = Callable[[str, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class EvalConfig:
    name: str
    system: str  # "guiderail" | "naive"
    settings: Settings
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuiltConfig:
    answerer: Answerer
    recall_probe: RecallProbe | None = None


def parse_config(spec: str, base: Settings) -> EvalConfig:
    spec = spec.strip()
    if not spec:
        raise ConfigError("empty configuration name in --compare")
    kind, *assignments = spec.split("@")
    overrides: dict[str, Any] = {}
    for a in assignments:
        if "=" not in a:
            raise ConfigError(f"--compare {spec!r}: expected @field=value, got {a!r}")
        k, v = a.split("=", 1)
        if k not in Settings.model_fields:
            raise ConfigError(f"--compare {spec!r}: unknown setting {k!r}")
        overrides[k.strip()] = v.strip()
    if kind in BACKENDS:
        system, llm = "guiderail", kind
    elif kind == "naive":
        system, llm = "naive", base.llm
    elif kind.startswith("naive-") and kind[6:] in BACKENDS:
        system, llm = "naive", kind[6:]
    else:
        raise ConfigError(f"--compare: unknown configuration {kind!r}; use none, local, openai, naive or naive-<backend>")
    try:
        settings = base.model_copy(deep=True)
        for k, v in {"llm": llm, **overrides}.items():
            setattr(settings, k, v)  # validate_assignment=True checks each value
    except ValueError as exc:
        raise ConfigError(f"--compare {spec!r}: {exc}") from exc
    return EvalConfig(name=spec, system=system, settings=settings, overrides=overrides)


def default_configs(settings: Settings, compare: Sequence[str] | None) -> list[EvalConfig]:
    specs = list(compare) if compare else [settings.llm]
    configs = [parse_config(s, settings) for s in specs]
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--compare lists a configuration twice: {names}")
    return configs


def _passage_dicts(passages: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for p in passages:
        d = p.model_dump() if hasattr(p, "model_dump") else dict(p)
        out.append({k: d.get(k, "") for k in ("doc_id", "rec_id", "section_path", "slug", "chunk_id")})
    return out


def build_config(cfg: EvalConfig) -> BuiltConfig:
    """The real components for one configuration (imported lazily: they load models and open the index)."""
    if cfg.system == "guiderail":
        from assistant.pipeline import build_assistant

        assistant = build_assistant(cfg.settings)
        retriever = getattr(assistant, "retriever", None)
        probe = None
        if retriever is not None and hasattr(retriever, "retrieve"):
            def probe(q: str, k: int) -> list[dict[str, Any]]:
                return _passage_dicts(retriever.retrieve(q, k=k))
        return BuiltConfig(answerer=assistant, recall_probe=probe)

    from assistant.evaluation.baseline import DenseStoreRetriever, NaiveRAG

    search = dense_search(cfg.settings)
    chat = None
    if cfg.settings.llm != "none":
        from assistant.llm.backends import make_chat_model

        chat = make_chat_model(cfg.settings)
    retriever = DenseStoreRetriever(search=search, k=cfg.settings.top_k)
    return BuiltConfig(
        answerer=NaiveRAG(retriever, chat, backend=cfg.settings.llm),
        recall_probe=lambda q, k: _passage_dicts(search(q, k)),
    )


def dense_search(settings: Settings) -> Callable[[str, int], list[Any]]:
    """Dense-only search over GuideRail's own index: the baseline reads the same Chroma collection."""
    from assistant.retrieval import to_passage
    from ingest.embedder import load_embedder
    from ingest.store import open_store

    store = open_store(settings, load_embedder(settings))

    def search(query: str, k: int) -> list[Any]:
        return [to_passage(h, score=h.score, dense_rank=h.rank) for h in store.query_dense(query, k)]

    return search
