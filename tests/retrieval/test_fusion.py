"""Pure parts of retrieval: fusion, de-duplication, BM25 tokenisation, filter checks."""

from __future__ import annotations

import pytest

from assistant.models import RetrievedPassage
from assistant.retrieval import (
    check_filters,
    deduplicate,
    reciprocal_rank_fusion,
    term_coverage,
    weighted_fusion,
)
from ingest.store import chroma_where, matches
from ingest.text import bm25_tokens


def test_rrf_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["d", "b", "e"]], k=60)
    ids = [cid for cid, _ in fused]
    assert ids[0] == "b"  # rank 2 in both beats rank 1 in one
    assert set(ids) == {"a", "b", "c", "d", "e"}
    assert fused[0][1] == pytest.approx(2 / 62)


def test_rrf_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match="k"):
        reciprocal_rank_fusion([["a"]], k=0)


def test_weighted_fusion_normalises_each_retriever() -> None:
    fused = weighted_fusion([("a", 0.9), ("b", 0.8), ("x", 0.1)], [("b", 30.0), ("c", 10.0)], alpha=0.5)
    assert next(c for c, _ in fused) == "b"
    assert dict(fused)["a"] == pytest.approx(0.5) and dict(fused)["c"] == pytest.approx(0.0)
    assert dict(fused)["b"] == pytest.approx(0.5 * 0.875 + 0.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lu-177-PSMA-617", {"lu-177-psma-617", "lu177psma617", "lu", "177", "psma", "617"}),
        ("CHEK2 and BRCA1/2", {"chek2", "brca1/2", "brca12", "brca1", "2"}),
        ("olaparib 300 mg", {"olaparib", "300", "mg"}),
        ("eGFR 5.2", {"egfr", "5.2"}),
    ],
)
def test_bm25_tokens_keep_names_and_numbers(text: str, expected: set[str]) -> None:
    assert expected <= set(bm25_tokens(text)), bm25_tokens(text)


def test_hyphen_free_spelling_matches() -> None:
    assert set(bm25_tokens("Lu177-PSMA-617")) & set(bm25_tokens("Lu-177-PSMA-617")) >= {
        "lu177psma617",
        "psma",
    }


def p(cid: str, text: str, doc: str = "d", path: str = "A") -> RetrievedPassage:
    return RetrievedPassage(chunk_id=cid, doc_id=doc, text=text, section_path=path)


def test_deduplicate_identical_anywhere_and_near_within_section() -> None:
    out = deduplicate(
        [
            p("1", "T › A\nBeta blockers control the rate in most patients."),
            p("2", "Other › X\nBeta blockers control the rate in most patients.", doc="e", path="X"),
            p("3", "T › A\nBeta blockers control the rate in most patients today.", path="A"),
            p("4", "T › B\nBeta blockers control the rate in most patients today.", path="B"),
        ]
    )
    assert [x.chunk_id for x in out] == ["1", "4"]


def test_filters_checked_and_matched() -> None:
    with pytest.raises(ValueError, match="colour"):
        check_filters({"colour": "red"})
    meta = {
        "source_pack": "corpus",
        "issuing_body": "AUA/ASTRO/SUO",
        "topics": "prostate cancer, mCRPC",
        "year": "2023",
    }
    assert matches(meta, {"source_pack": "corpus", "issuing_body": "astro", "topic": "mcrpc"})
    assert not matches(meta, {"source_pack": ["nci", "user"]})
    assert chroma_where({"source_pack": "corpus", "topic": "x"}) == {"source_pack": {"$eq": "corpus"}}
    assert chroma_where({"source_pack": "a", "year": ["2023", "2024"]}) == {
        "$and": [{"source_pack": {"$eq": "a"}}, {"year": {"$in": ["2023", "2024"]}}]
    }


def test_term_coverage() -> None:
    assert term_coverage("olaparib CHEK2", "Olaparib for CHEK2 carriers") == 1.0
    assert term_coverage("olaparib CHEK2", "unrelated text") == 0.0
