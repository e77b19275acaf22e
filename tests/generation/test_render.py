"""Numbering of sources and the rendered Markdown."""

from __future__ import annotations

from assistant.answer.citations import cited_numbers, number_sources, passage_body, plain_text
from assistant.answer.render import render_answer
from assistant.models import Finding, RetrievedPassage


def P(i: int, **kw) -> RetrievedPassage:
    return RetrievedPassage(chunk_id=f"c{i}", doc_id="d", text=f"passage {i}", title=f"Doc {i}", **kw)


def test_findings_refs_numbered_in_reading_order_then_retrieval_deduplicated():
    by_ref = {"A": [P(1)], "B": [P(2)], "C": [P(3)]}
    findings = [
        Finding(rule_id="w", kind="warn", reason="w", refs=["C"]),
        Finding(rule_id="r", kind="recommend", reason="r", refs=["A"]),
        Finding(rule_id="x", kind="exclude", reason="x", refs=["B", "A"]),
    ]
    cites, numbered = number_sources(findings, by_ref, [P(3), P(4)])
    assert [c.chunk_id for c in cites] == ["c1", "c2", "c3", "c4"]
    assert [f.citations for f in numbered] == [[3], [1], [2, 1]]


def test_cap_keeps_one_passage_per_finding_and_some_retrieval():
    by_ref = {f"R{i}": [P(i)] for i in range(10)}
    findings = [Finding(rule_id=f"f{i}", kind="exclude", reason="x", refs=[f"R{i}"]) for i in range(10)]
    cites, numbered = number_sources(findings, by_ref, [P(100), P(101)], max_sources=6, min_retrieved=2)
    assert len(cites) == 6
    assert {"c100", "c101"} <= {c.chunk_id for c in cites}
    assert sum(1 for f in numbered if f.citations) == 4


def test_header_line_is_stripped_from_passages():
    text = "mCRPC › After docetaxel [AUA-APC-S33 · Strong Recommendation · Grade B]\nOffer cabazitaxel."
    assert passage_body(text) == "Offer cabazitaxel."
    assert passage_body("Plain one line.") == "Plain one line."
    assert plain_text("x › y\n- **Bold** item --> next\n```\ncode\n```") == "Bold item ; next code"


def test_sources_list_marks_unverified_and_metadata():
    cites, _ = number_sources([], {}, [P(1, issuing_body="AUA", year="2023", strength="Strong", last_reviewed="2026-01-01", unverified=True, section_path="A › B")])
    md = render_answer("Body [1].", cites, banner="Fallback used", mode_note="_mode_", follow_ups=["Why?"])
    assert md.startswith("> **Note:** Fallback used")
    assert "1. **Doc 1** — AUA, 2023 — § A › B — strength: Strong — last reviewed 2026-01-01 **(unverified)**" in md
    assert "- Why?" in md and md.index("## Suggested") < md.index("## Sources")


def test_cited_numbers_in_order():
    assert cited_numbers("a [2] b [1][2] c [10]") == [2, 1, 10]
