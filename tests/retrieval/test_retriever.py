"""HybridRetriever over a small fake-embedded store: names found, filters, refs, relevance signal."""

from __future__ import annotations

import pytest

from assistant.retrieval import HybridRetriever


@pytest.mark.parametrize(
    ("query", "doc"),
    [
        ("olaparib", "parp-digest"),
        ("CHEK2", "parp-digest"),
        ("Lu-177-PSMA-617", "parp-digest"),
        ("Lu177-PSMA-617", "parp-digest"),
        ("apixaban dose", "af-digest"),
    ],
)
def test_names_are_found(indexed, query: str, doc: str) -> None:
    settings, store = indexed
    top = HybridRetriever(store, settings).retrieve(query, k=3)
    assert top and top[0].doc_id == doc, [(x.doc_id, x.section_path) for x in top]
    assert top[0].bm25_rank == 1 and top[0].bm25_score and top[0].dense_score is not None


def test_passage_metadata_and_ranks(indexed) -> None:
    settings, store = indexed
    top = HybridRetriever(store, settings).retrieve("olaparib CHEK2", k=2)
    p = top[0]
    assert p.rec_id == "T-PARP-1" and p.strength == "Moderate Recommendation" and p.evidence == "Grade C"
    assert p.issuing_body == "AUA" and p.year == "2023" and p.url == "https://example.org/parp"
    assert p.section_path == "mCRPC › PARP inhibitors" and p.slug == "parp-inhibitors"
    assert p.score > 0 and 0.0 <= p.relevance <= 1.0
    assert [x.score for x in top] == sorted((x.score for x in top), reverse=True)


def test_filters_restrict_results(indexed) -> None:
    settings, store = indexed
    r = HybridRetriever(store, settings)
    assert {x.doc_id for x in r.retrieve("rate control", k=5, filters={"issuing_body": "ACC"})} == {
        "af-digest"
    }
    assert {x.doc_id for x in r.retrieve("olaparib", k=5, filters={"topic": "fibrillation"})} == {"af-digest"}
    with pytest.raises(ValueError, match="unknown retrieval filter"):
        r.retrieve("x", filters={"bogus": 1})


def test_duplicates_removed(indexed) -> None:
    settings, store = indexed
    top = HybridRetriever(store, settings).retrieve("beta blockers diltiazem ventricular rate", k=5)
    texts = [x.text.split("\n", 1)[1] for x in top]
    assert texts.count("Beta blockers or diltiazem control the ventricular rate.") == 1


def test_relevance_separates_on_and_off_topic(indexed) -> None:
    settings, store = indexed
    r = HybridRetriever(store, settings)
    on = r.retrieve("olaparib CHEK2 alterations", k=1)[0].relevance
    off = r.retrieve("zebra migration patterns", k=1)
    assert on >= settings.min_relevance
    assert not off or off[0].relevance < on


def test_passages_for_refs(indexed) -> None:
    settings, store = indexed
    got = HybridRetriever(store, settings).passages_for_refs(
        ["T-PARP-1", "parp-digest#lu-177-psma-617", "parp-digest#radioligand", "af-digest#nope", "NOPE-1"]
    )
    assert [p.rec_id for p in got["T-PARP-1"]] == ["T-PARP-1"]
    assert "PSMA-positive" in got["parp-digest#lu-177-psma-617"][0].text
    assert got["parp-digest#radioligand"], "a parent heading resolves to its children's passages"
    assert got["af-digest#nope"] == [] and got["NOPE-1"] == []


def test_empty_query_and_empty_store(tmp_path, fake_embedder) -> None:
    from assistant.settings import load_settings
    from ingest.store import open_store

    s = load_settings(store_dir=tmp_path / "i")
    r = HybridRetriever(open_store(s, fake_embedder), s)
    assert r.retrieve("") == [] and r.retrieve("olaparib") == []
