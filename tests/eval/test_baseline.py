"""The naive RAG baseline: a LangChain retriever over a dense search, extractive or with a (fake) chat model."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant.evaluation.baseline import DenseStoreRetriever, NaiveRAG
from assistant.models import RetrievedPassage

PASSAGES = [
    RetrievedPassage(chunk_id=f"c{i}", doc_id=f"doc-{i}", text=f"passage {i} about cabazitaxel", rec_id=f"R{i}",
                     section_path="A › B")
    for i in range(5)
]


def search(query: str, k: int) -> list[RetrievedPassage]:
    search.queries.append((query, k))
    return PASSAGES[:k]


search.queries = []  # type: ignore[attr-defined]


def test_extractive_baseline_cites_top_k():
    search.queries.clear()
    rag = NaiveRAG(DenseStoreRetriever(search=search, k=3), None, backend="none")
    ans = rag.ask("next line?", patient="mCRPC after docetaxel", history=[{"role": "user", "content": "hi"}])
    assert [c.number for c in ans.citations] == [1, 2, 3]
    assert ans.citations[0].rec_id == "R0"
    assert "[1]" in ans.answer_markdown and "[3]" in ans.answer_markdown and "[4]" not in ans.answer_markdown
    assert ans.backend == "naive-none" and not ans.abstained
    assert search.queries == [("user: hi\nPatient: mCRPC after docetaxel\nnext line?", 3)]
    assert set(ans.timings_ms) == {"retrieve", "generate", "total"}
    assert ans.findings == [] and ans.verification.checked == []  # no rules, no verification


def test_llm_baseline_uses_the_chat_model_and_streams():
    model = FakeListChatModel(responses=["Offer cabazitaxel [1]."])
    rag = NaiveRAG(DenseStoreRetriever(search=search, k=2), model, backend="local")
    events = list(rag.ask_stream("q"))
    assert events[-1].kind == "final"
    assert events[-1].answer.answer_markdown == "Offer cabazitaxel [1]."
    assert any(e.kind == "delta" for e in events)
    assert rag.backend == "naive-local"


def test_no_passages_means_abstain():
    rag = NaiveRAG(DenseStoreRetriever(search=lambda q, k: [], k=3), None)
    assert rag.ask("q").abstained

