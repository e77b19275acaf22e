"""Deterministic stand-ins for the slow or external dependencies (STYLE.md §12), importable by every test area
without `sys.path` changes: the hash-seeded embedder, the scripted chat model, a retriever that returns given
passages, an engine that returns given findings, and `corpus_passage`, which turns a citable block of a real
`Knowledge` into the passage a retriever would return for it.

The corpus itself is never faked: tests load the real `Knowledge` (tests/fixtures/corpus or corpus/). The
retriever and engine fakes are for tests that must control hits or findings exactly (a weak hit, no findings,
a finding whose reference resolves to nothing). Nothing here runs at import time.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field, PrivateAttr

from assistant.models import Finding, PatientContext, RetrievedPassage
from ingest.embedder import HashEmbedder

if TYPE_CHECKING:
    from assistant.knowledge import Knowledge

_TOKEN = re.compile(r"\w+", re.UNICODE)


# ---------------------------------------------------------------- embedder
class FakeEmbedder(HashEmbedder):
    """The one hash embedder (`ingest.embedder.HashEmbedder`, the `--embedder hash` of subprocess runs) at the size
    the in-process tests were written for: 64 dimensions and one token per word (their chunk sizes and rankings)."""

    name = "fake-hash-64"
    dimension = 64

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text))


# ---------------------------------------------------------------- chat model
@functools.cache
def _scripted_chat_model() -> type:
    # Built on first use: LangChain's chat-model base costs ~0.5 s to import, and the root conftest imports this
    # module for the embedder in every test run, most of which never touch a chat model.
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    class ScriptedChatModel(BaseChatModel):
        """Returns its scripted answers in turn (the last one repeats); can fail, hang or stream slowly.

        Records every prompt (`prompts`) and the keyword arguments of every streamed call (`call_kwargs`)."""

        responses: list[str] = Field(default_factory=list)
        error: str | None = None
        delay_s: float = 0.0
        prompts: list[list[BaseMessage]] = Field(default_factory=list)
        call_kwargs: list[dict[str, Any]] = Field(default_factory=list)
        _i: int = PrivateAttr(default=0)
        _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

        @property
        def _llm_type(self) -> str:
            return "scripted"

        def _next(self, messages: list[BaseMessage]) -> str:
            with self._lock:
                self.prompts.append(list(messages))
                if self.error:
                    raise RuntimeError(self.error)
                text = self.responses[min(self._i, len(self.responses) - 1)]
                self._i += 1
                return text

        def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._next(messages)))])

        def _stream(
            self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> Iterator[ChatGenerationChunk]:
            self.call_kwargs.append(dict(kw))
            text = self._next(messages)
            for piece in text.split(" "):
                if self.delay_s:
                    time.sleep(self.delay_s)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece + " "))

    ScriptedChatModel.__module__ = __name__
    ScriptedChatModel.__qualname__ = "ScriptedChatModel"
    return ScriptedChatModel


def __getattr__(name: str) -> Any:
    """`from assistant.testing.fakes import ScriptedChatModel` builds the class on first use (see above)."""
    if name == "ScriptedChatModel":
        return _scripted_chat_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- passages from the real corpus
def corpus_passage(knowledge: Knowledge, ref: str, *, score: float = 0.9) -> RetrievedPassage:
    """The passage a retriever returns for one citable block (or section) of `knowledge`, with a fixed score.

    `relevance` is left unset, so the pipeline reads `score` as the relevance (as for an uncalibrated hit)."""
    cref = knowledge.resolve(ref)
    if cref is None:
        raise KeyError(f"{ref!r} is not a block or section of the corpus at {knowledge.corpus_dir}")
    digest = knowledge.digests.get(cref.doc_id)
    meta = digest.meta if digest is not None else {}
    sources = meta.get("sources") or [{}]
    from assistant.testing.safety_harness import passage_of

    base = passage_of(cref, score)
    return base.model_copy(
        update={
            "chunk_id": f"chunk-{ref}",
            "issuing_body": ", ".join(str(b) for b in meta.get("issuing_bodies") or []),
            "year": str(sources[0].get("year", "")),
            "relevance": RetrievedPassage.model_fields["relevance"].default,
        }
    )


# ---------------------------------------------------------------- retriever and engine with given answers
class FakeRetriever:
    """Returns the given hits for every query (recorded in `queries`) and the given passage for each known ref."""

    def __init__(self, by_ref: Mapping[str, RetrievedPassage], hits: Sequence[RetrievedPassage] = ()) -> None:
        self.by_ref = dict(by_ref)
        self.hits = list(hits)
        self.queries: list[str] = []

    def retrieve(self, query: str, k: int | None = None, filters: Any = None) -> list[RetrievedPassage]:
        self.queries.append(query)
        return list(self.hits)[: k or 6]

    def passages_for_refs(self, refs: Sequence[str]) -> dict[str, list[RetrievedPassage]]:
        return {r: [self.by_ref[r]] for r in refs if r in self.by_ref}


class FakeEngine:
    """Returns the given findings for every patient (no safety pass)."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)

    def evaluate(self, ctx: PatientContext) -> list[Finding]:
        return list(self.findings)
