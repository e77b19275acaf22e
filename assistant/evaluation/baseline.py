"""The naive RAG baseline: plain LangChain — dense top-k from the same Chroma collection, the same LLM,
no patient context, no rules, no verification. With no LLM it answers extractively (top passages joined).

Its output is an `Answer` record, so every metric scores it exactly like GuideRail. The prompt below is part
of the baseline's definition — a generic "answer from the context" prompt — and deliberately lives here, not
in assistant/answer/prompts.py, so improving GuideRail's prompts can never silently change the baseline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.models import Answer, AnswerEvent, Citation, RetrievedPassage, final_answer

log = logging.getLogger(__name__)

NAIVE_SYSTEM = (
    "You are a helpful clinical assistant. Answer the question using the numbered context passages. "
    "Cite passages as [n]."
)
NAIVE_USER = "Context:\n{context}\n\nQuestion: {question}\n\nAnswer:"
NAIVE_PASSAGE_CHARS = 600
EXTRACTIVE_PASSAGE_CHARS = 400

DenseSearch = Callable[[str, int], Sequence[RetrievedPassage]]


class DenseStoreRetriever(BaseRetriever):
    """A minimal LangChain retriever over GuideRail's Chroma collection (dense similarity only, top-k)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search: Any  # DenseSearch; typed loosely because pydantic cannot validate a Callable signature
    k: int = 6

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        return [
            LCDocument(page_content=p.text, metadata=p.model_dump(exclude={"text"}))
            for p in self.search(query, self.k)
        ]


def _passage(doc: LCDocument) -> RetrievedPassage:
    return RetrievedPassage(text=doc.page_content, **doc.metadata)


def _citation(n: int, p: RetrievedPassage) -> Citation:
    return Citation(
        number=n,
        doc_id=p.doc_id,
        title=p.title or p.doc_id,
        organisation=p.issuing_body,
        year=p.year,
        section=p.section_path,
        chunk_id=p.chunk_id,
        passage=p.text,
        url=p.url,
        strength=p.strength,
        rec_id=p.rec_id,
        last_reviewed=p.last_reviewed,
        unverified=p.unverified,
    )


def _flatten(question: str, patient: str | None, history: Sequence[dict[str, str]] | None) -> str:
    """The naive system sees the conversation as plain text: earlier turns, then patient details, then the question."""
    parts = [f"{t['role']}: {t['content']}" for t in (history or [])]
    if patient:
        parts.append(f"Patient: {patient}")
    parts.append(question)
    return "\n".join(parts)


class NaiveRAG:
    """Dense top-k + (LLM | extractive). `ask` mirrors `Assistant.ask` so the eval runner treats both alike."""

    def __init__(self, retriever: BaseRetriever, chat_model: BaseChatModel | None, *, backend: str = "none") -> None:
        self.retriever = retriever
        self.chat_model = chat_model
        self.backend = f"naive-{backend}"
        self._chain = None
        if chat_model is not None:
            prompt = ChatPromptTemplate.from_messages([("system", NAIVE_SYSTEM), ("human", NAIVE_USER)])
            self._chain = prompt | chat_model | StrOutputParser()

    def _retrieve(self, query: str) -> tuple[list[Citation], float]:
        t0 = time.perf_counter()
        passages = [_passage(d) for d in self.retriever.invoke(query)]
        return [_citation(i, p) for i, p in enumerate(passages, start=1)], (time.perf_counter() - t0) * 1000

    @staticmethod
    def _context(citations: Sequence[Citation]) -> str:
        return "\n\n".join(f"[{c.number}] {c.passage[:NAIVE_PASSAGE_CHARS]}" for c in citations)

    def ask(
        self,
        question: str,
        *,
        patient: str | None = None,
        history: Sequence[dict[str, str]] | None = None,
        audience: str = "clinician",
        context: Any = None,
    ) -> Answer:
        return final_answer(
            self.ask_stream(question, patient=patient, history=history, audience=audience, context=context)
        )

    def ask_stream(
        self,
        question: str,
        *,
        patient: str | None = None,
        history: Sequence[dict[str, str]] | None = None,
        audience: str = "clinician",
        context: Any = None,
    ) -> Iterator[AnswerEvent]:
        """Same event protocol as the pipeline (no 'plan' event: the baseline has no rule-checked plan)."""
        query = _flatten(question, patient, history)
        t0 = time.perf_counter()
        citations, retrieve_ms = self._retrieve(query)
        pieces: list[str] = []
        if self._chain is not None and citations:
            for chunk in self._chain.stream({"context": self._context(citations), "question": query}):
                pieces.append(chunk)
                yield AnswerEvent(kind="delta", text=chunk)
        else:
            # extractive: the top passages, each cited — what a retrieval-only system would show
            text = "\n\n".join(f"{c.passage[:EXTRACTIVE_PASSAGE_CHARS].strip()} [{c.number}]" for c in citations)
            pieces.append(text)
            yield AnswerEvent(kind="delta", text=text)
        total_ms = (time.perf_counter() - t0) * 1000
        yield AnswerEvent(
            kind="final",
            answer=Answer(
                question=question,
                answer_markdown="".join(pieces) or "No relevant passages were found.",
                citations=citations,
                abstained=not citations,
                backend=self.backend,
                timings_ms={"retrieve": retrieve_ms, "generate": total_ms - retrieve_ms, "total": total_ms},
            ),
        )
