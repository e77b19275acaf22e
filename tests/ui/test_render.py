"""Unit tests of the pure renderers: citation links, escaping, highlights, markers, panels, exports."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from assistant.models import (
    Answer,
    Biomarker,
    Citation,
    FactChange,
    Finding,
    LabValue,
    PatientContext,
    TherapyExposure,
    VerificationReport,
)
from assistant.web import render as R


def cite(n: int, **kw) -> Citation:
    base = dict(number=n, doc_id=f"d{n}", title=f"Guideline {n}", organisation="AUA", year="2023",
                section="mCRPC › After docetaxel", chunk_id=f"c{n}",
                passage="Offer cabazitaxel after docetaxel. It improved survival in the CARD trial. Check counts.")
    base.update(kw)
    return Citation(**base)


def test_citation_numbers_become_links_to_their_source_card():
    md = R.answer_markdown("Cabazitaxel is preferred [1][2]. Unknown source [9].", [cite(1), cite(2)])
    assert f"(#{R.ANCHOR_PREFIX}1)" in md and f"(#{R.ANCHOR_PREFIX}2)" in md
    assert "[9]" in md and f"#{R.ANCHOR_PREFIX}9" not in md, "numbers without a source must not become links"


def test_existing_markdown_links_are_not_mistaken_for_citations():
    md = R.answer_markdown("See [3](https://example.org/x) and [1].", [cite(1), cite(3)])
    assert "[3](https://example.org/x)" in md
    assert md.count(R.ANCHOR_PREFIX) == 1


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://www.auanet.org/g", True),
        ("http://x.org", True),
        ("mailto:a@b.org", True),
        ("#guiderail-src-1", True),
        ("javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        ("java\tscript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("vbscript:x", False),
        ("", False),
    ],
)
def test_safe_url_allows_only_web_mail_and_anchor_links(url, ok):
    assert (R.safe_url(url) is not None) is ok


def test_answer_markdown_escapes_html_and_drops_unsafe_links_but_keeps_markdown():
    md = R.answer_markdown(
        "## Bottom line\n> quoted\n- item <b>bold</b> [x](javascript:alert(1)) [ok](https://a.org) ![p](https://t.org/p.png)",
        [],
    )
    assert md.startswith("## Bottom line") and "\n> quoted" in md
    assert "<b>" not in md and "&lt;b>" in md
    assert "javascript" not in md and "[ok](https://a.org)" in md
    assert "![" not in md and "t.org/p.png" not in md, "images must not be fetched"


def test_autolinks_from_the_sources_list_stay_clickable():
    md = R.answer_markdown("1. **Guide** <https://www.auanet.org/x>", [])
    assert "[https://www.auanet.org/x](https://www.auanet.org/x)" in md


def test_support_span_highlights_the_sentence_that_shares_the_claim_words():
    passage = "Radium-223 is for bone-only disease. Offer cabazitaxel after docetaxel progression. Other text."
    span = R.support_span(passage, ["Cabazitaxel is preferred after docetaxel progression"])
    assert span is not None
    assert passage[span[0]:span[1]] == "Offer cabazitaxel after docetaxel progression."
    assert R.support_span(passage, ["unrelated words entirely"]) is None
    assert R.support_span("", ["x"]) is None


def test_sources_panel_shows_metadata_markers_and_highlight():
    cites = [
        cite(1, strength="Moderate Recommendation", last_reviewed="2026-11-29", rec_id="AUA-S28",
             url="https://www.auanet.org/g"),
        cite(2, unverified=True, year="2010", url="javascript:alert(1)"),
    ]
    html = R.sources_html(cites, "Cabazitaxel improved survival in CARD [1]. Also [2].", today=date(2026, 11, 29))
    card1 = html.split(f'id="{R.ANCHOR_PREFIX}2"')[0]
    for text in ("Guideline 1", "AUA, 2023", "§ mCRPC › After docetaxel", "AUA-S28", "Moderate Recommendation",
                 "2026-11-29", 'href="https://www.auanet.org/g"'):
        assert text in card1, text
    assert "<mark>It improved survival in the CARD trial.</mark>" in card1
    card2 = html.split(f'id="{R.ANCHOR_PREFIX}2"')[1]
    assert "unverified" in card2 and "outdated edition" in card2
    assert "javascript" not in html
    assert "outdated edition" not in card1


def test_outdated_when_a_newer_edition_of_the_same_guideline_is_cited():
    old = cite(1, title="EAU prostate guideline 2020", organisation="EAU", year="2020")
    new = cite(2, title="EAU prostate guideline 2024", organisation="EAU", year="2024")
    other = cite(3, title="Something else", organisation="EAU", year="2025")
    today = date(2025, 1, 1)
    assert "newer edition (2024)" in (R.outdated_reason(old, [old, new, other], today) or "")
    assert R.outdated_reason(new, [old, new, other], today) is None
    assert R.outdated_reason(cite(4, year=""), [], today) is None
    assert R.outdated_reason(cite(5, year="2015, amended 2023"), [], today) is None, "the amendment counts"
    assert "2015" in (R.outdated_reason(cite(6, year="2015"), [], today) or "")


def test_empty_panels_say_what_will_appear():
    assert "Sources appear here" in R.sources_html([])
    assert "No rule fired" in R.findings_html([])
    assert "appear here" in R.context_html(None)
    assert R.context_json(None) == "{}"


def test_rule_panel_lists_each_kind_with_reason_and_citation_links():
    findings = [
        Finding(rule_id="R1", kind="recommend", therapy="cabazitaxel", reason="After docetaxel.", citations=[1]),
        Finding(rule_id="R2", kind="exclude", therapy="lu177_psma617", title="Lu-177", reason="PSA rose.", citations=[]),
        Finding(rule_id="R3", kind="warn", title="Ra-223 + abiraterone", reason="Fractures.", severity="high",
                citations=[2, 3], unverified=True),
        Finding(rule_id="R4", kind="ask", reason="Visceral metastases?"),
        Finding(rule_id="R5", kind="consider", therapy="olaparib", reason="HRR gene.", strength="Conditional"),
    ]
    html = R.findings_html(findings)
    kinds = re.findall(r'data-kind="(\w+)"', html)
    assert kinds == ["recommend", "consider", "exclude", "warn", "ask"], "grouped: do, consider, don't, warn, ask"
    assert "Not recommended for this patient <span class=\"gr-count\">(1)</span>" in html
    assert f'href="#{R.ANCHOR_PREFIX}2"' in html and f'href="#{R.ANCHOR_PREFIX}3"' in html
    assert "no passage cited" in html and "severity high" in html and "unverified" in html
    assert "cabazitaxel" in html and "After docetaxel." in html


def test_context_panel_lists_extracted_facts_and_corrections():
    ctx = PatientContext(
        diagnoses=["prostate_cancer"], disease_state="mCRPC", castration="orchiectomy",
        therapies=[TherapyExposure(therapy="docetaxel", status="progressed", setting="mHSPC")],
        biomarkers=[Biomarker(name="CHEK2", result="pathogenic", origin="germline")],
        sites={"bone": "present", "visceral": "absent"},
        labs={"psa": LabValue(name="psa", value=12.5, unit="ng/mL", series=[4, 8, 12.5], trend="rising")},
        ecog=1, age=71, comorbidities={"ckd": "present"},
        changes=[FactChange(field="ecog", old="2", new="1", turn=2)], notes=["PSMA uptake heterogeneous"],
    )
    html = R.context_html(ctx, ["edited biomarkers"])
    for text in ("prostate cancer", "mCRPC", "orchiectomy", "docetaxel — progressed (mHSPC)", "CHEK2: pathogenic, germline",
                 "visceral: absent", "psa 12.5 ng/mL, rising (series 4, 8, 12.5)", "ECOG", "71", "ckd: present",
                 "ecog: 2 → 1 (turn 2)", "PSMA uptake heterogeneous", "edited biomarkers"):
        assert text in html, text
    data = json.loads(R.context_json(ctx))
    assert PatientContext.model_validate(data).biomarkers[0].name == "CHEK2"
    assert "changes" not in data and "symptoms" not in data, "editable JSON holds only set, editable fields"


def _answer(**kw) -> Answer:
    base = dict(question="q", answer_markdown="Cabazitaxel [1].", citations=[cite(1)], backend="local",
                model="qwen2.5-coder-1.5b", verification=VerificationReport(mode="llm", verified=True))
    base.update(kw)
    return Answer(**base)


def test_status_shows_configured_backend_then_the_one_used_and_a_fallback_banner():
    assert "rules-only" in R.status_html("none")
    assert "local model" in R.status_html("local") and "gr-banner" not in R.status_html("local")
    ok = R.status_html("local", _answer())
    assert "local model" in ok and "qwen2.5" in ok and "verified" in ok and "gr-banner" not in ok
    fb = R.status_html("local", _answer(backend="none", banner="LLM timed out",
                                        verification=VerificationReport(mode="composer-fallback")))
    assert "gr-banner" in fb and "LLM timed out" in fb and "rules-only" in fb
    silent_fb = R.status_html("openai", _answer(verification=VerificationReport(mode="composer-fallback")))
    assert "Fallback used" in silent_fb, "fallback mode without a banner text still shows the banner"
    assert "abstained" in R.status_html("none", _answer(abstained=True))


def test_conversation_markdown_and_audit_record_carry_what_an_auditor_needs():
    a = _answer(findings=[Finding(rule_id="R1", kind="recommend", reason="x", citations=[1])], corpus_version="cv-1",
                patient_context=PatientContext(disease_state="mCRPC"))
    turns = [{"question": "What next?", "patient": "ECOG 1", "answer": a, "audience": "clinician",
              "context": PatientContext(ecog=1), "note": "", "superseded": True},
             {"question": "And then?", "answer": None}]
    md = R.conversation_markdown(turns, "2026-11-29T08:00:00+00:00")
    assert "What next?" in md and "ECOG 1" in md and "Cabazitaxel [1]." in md and "Guideline 1" in md
    assert R.DISCLAIMER in md and "_(no answer)_" in md
    rec = R.audit_record(turns, exported_at="t", app_version="0.1.0", settings_summary={"llm": "local"})
    json.dumps(rec)  # serialisable as is
    t0 = rec["turns"][0]
    assert t0["question"] == "What next?" and t0["superseded"] is True
    assert t0["patient_context"]["disease_state"] == "mCRPC" and t0["context_given"]["ecog"] == 1
    assert t0["passages"][0]["chunk_id"] == "c1" and t0["passages"][0]["edition_year"] == "2023"
    assert t0["findings"][0]["rule_id"] == "R1" and t0["verification"]["mode"] == "llm"
    assert t0["model"] == "qwen2.5-coder-1.5b" and t0["corpus_version"] == "cv-1"
    assert rec["turns"][1]["answer"] is None and rec["settings"] == {"llm": "local"}


@pytest.mark.parametrize(
    "quote",
    ["Use the __init__ dose of 2 *mg* per kg", "Doses 5~10 mg and `x` marks", r"A back\slash and a_b_c name"],
)
def test_quoted_passage_renders_exactly_as_its_source(quote):
    """Issue 14: Markdown emphasis inside a quoted passage is escaped, so the rendered quote equals the source."""
    import html as _html
    import re as _re

    from markdown_it import MarkdownIt

    md = R.answer_markdown(f"## Pitfalls\n- “{quote}.” [1]", [])
    rendered = MarkdownIt("commonmark").enable("strikethrough").render(md)
    text = _html.unescape(_re.sub(r"<[^>]+>", "", rendered))
    assert f"“{quote}.”" in text, (md, rendered)
