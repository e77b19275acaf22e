"""What the answer stage needs from the stages it is given (STYLE.md §4): the retriever, the rule engine, the
corpus knowledge, the embedder and the chat model, as `typing.Protocol` classes. The real ones are built by
`pipeline.build_assistant`; tests pass fakes that satisfy the same protocols.

Optional abilities (an engine with a safety screen, a retriever that knows document frequencies, a chat model
that counts tokens or loads ahead of time) are separate runtime-checkable protocols, tested with `isinstance`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from assistant.models import Finding, PatientContext, RetrievedPassage

if TYPE_CHECKING:
    from assistant.knowledge.records import Digest
    from assistant.oncology.match import OncologyMatch
    from assistant.oncology.records import Approval
    from assistant.oncology.vocab import OncologyVocab


# ---------------------------------------------------------------- retrieval
class Retriever(Protocol):
    def retrieve(self, query: str, k: int | None = None, filters: Mapping[str, Any] | None = None) -> list[RetrievedPassage]: ...

    def passages_for_refs(self, refs: Sequence[str]) -> dict[str, list[RetrievedPassage]]: ...


@runtime_checkable
class TermStats(Protocol):
    """A retriever that can say how many indexed chunks contain each BM25 token."""

    def term_doc_freq(self, tokens: Iterable[str]) -> Mapping[str, int]: ...


@runtime_checkable
class TopicStats(Protocol):
    """A retriever that can say which words the indexed documents' titles, topics and headings use."""

    def topic_terms(self) -> frozenset[str]: ...


class EmbedderLike(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


# ---------------------------------------------------------------- rules
class Engine(Protocol):
    def evaluate(self, ctx: PatientContext) -> list[Finding]: ...


@runtime_checkable
class SafetyScreen(Protocol):
    """An engine with a safety pass: label checks for drugs named anywhere, and the drug matcher."""

    def screen(self, ctx: PatientContext, drugs: Iterable[str], findings: Iterable[Finding]) -> list[Finding]: ...

    def drugs_in(self, text: str) -> list[str]: ...


@runtime_checkable
class OncologyMatcher(Protocol):
    """An engine that matches the tumour context against the approval records."""

    def oncology_match(self, ctx: PatientContext) -> OncologyMatch: ...


# ---------------------------------------------------------------- knowledge
class LexiconEntryLike(Protocol):
    names: Sequence[str]
    classes: Sequence[str]


class LexiconLike(Protocol):
    """The therapy lexicon (`assistant.knowledge.Lexicon`)."""

    @property
    def entries(self) -> Mapping[str, LexiconEntryLike]: ...

    def names_of(self, therapy_id: str) -> list[str]: ...

    def classes_of(self, therapy_id: str) -> list[str]: ...

    def matches(self, therapy_id: str, token: str) -> bool: ...


class KnowledgeBase(Protocol):
    """The corpus knowledge the answer stage reads (`assistant.knowledge.Knowledge`)."""

    @property
    def lexicon(self) -> LexiconLike: ...

    @property
    def digests(self) -> Mapping[str, Digest]: ...

    @property
    def version(self) -> str: ...

    @property
    def conditions(self) -> Sequence[str]: ...

    @property
    def approvals(self) -> Sequence[Approval]: ...

    @property
    def oncology(self) -> OncologyVocab | None: ...


# ---------------------------------------------------------------- chat model
class ChatModel(Protocol):
    """A LangChain chat model: streamed message chunks (each with ``.content``)."""

    def stream(self, input: Any, **kwargs: Any) -> Iterator[Any]: ...


@runtime_checkable
class TokenCounting(Protocol):
    """A chat model that counts prompt tokens with its own tokenizer (the embedded local model)."""

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class Preloadable(Protocol):
    """A chat model that can be loaded ahead of the first question."""

    def load(self) -> Any: ...


@runtime_checkable
class Named(Protocol):
    model_name: str
