"""The deterministic composer: cited sentences only, both audiences, follow-ups from the plan."""

from __future__ import annotations

import pytest

from assistant.answer.compose import compose_answer, follow_up_questions
from assistant.answer.format import SECTIONS, section_titles
from assistant.answer.verify import inspect_answer
from assistant.models import AnswerPlan, Citation, Finding

CITES = [
    Citation(number=1, doc_id="d", title="T", chunk_id="c1", passage="Cabazitaxel prolonged survival after docetaxel. Blood counts are monitored weekly during the first cycle."),
    Citation(number=2, doc_id="d", title="T", chunk_id="c2", passage="Re-treatment with a PSMA radioligand after progression has no supporting evidence."),
    Citation(number=3, doc_id="d", title="T", chunk_id="c3", passage="Clinical trial enrolment should be offered after progression on standard therapies."),
]
PLAN = AnswerPlan(
    findings=[
        Finding(rule_id="R1", kind="recommend", therapy="cabazitaxel", reason="Cabazitaxel prolonged survival after docetaxel.", citations=[1], preference=1),
        Finding(rule_id="R5", kind="consider", therapy="olaparib", reason="Needs an HRR alteration.", citations=[1, 9], preference=2),
        Finding(rule_id="R2", kind="exclude", therapy="lu177_psma617", reason="No evidence for re-treatment after progression.", citations=[2]),
        Finding(rule_id="R2b", kind="exclude", therapy="lu177_psma617", reason="Progressed during therapy.", citations=[2]),
        Finding(rule_id="R4", kind="ask", reason="Are there visceral metastases? This decides radium-223 eligibility.", citations=[]),
    ],
    must_not_recommend=["lu177_psma617"],
)


@pytest.mark.parametrize("audience", ["clinician", "patient"])
def test_every_claim_is_cited_with_given_numbers(audience):
    out = compose_answer("What next?", PLAN, CITES, audience=audience)
    for title in section_titles(audience):
        assert f"## {title}" in out.body
    res = inspect_answer(out.body, citations=CITES, plan=PLAN)
    assert not res.violations, res.violations
    assert "[9]" not in out.body, "citation numbers that were not given are dropped"


def test_exclusions_of_the_same_therapy_are_merged():
    out = compose_answer("What next?", PLAN, CITES)
    section = out.body.split(f"## {SECTIONS[2]}")[1].split("##")[0]
    assert section.count("lu177 psma617") == 1 and "Progressed during therapy" in section


def test_monitoring_and_trials_quote_the_passages():
    out = compose_answer("What next?", PLAN, CITES)
    assert "“Blood counts are monitored weekly during the first cycle.” [1]" in out.body
    assert "Clinical trial enrolment" in out.body


def test_display_names_replace_ids():
    out = compose_answer("Q", PLAN, CITES, display_names={"lu177_psma617": "Lu-177-PSMA-617"})
    assert "Lu-177-PSMA-617" in out.body and "lu177 psma617" not in out.body


def test_follow_ups_come_from_the_plan():
    qs = follow_up_questions(PLAN, CITES)
    assert len(qs) == 3
    assert "visceral metastases" in qs[0]
    assert any("olaparib" in q for q in qs) and any("cabazitaxel" in q for q in qs)
    only_exclusion = AnswerPlan(findings=[PLAN.findings[2]])
    assert any("lu177" in q for q in follow_up_questions(only_exclusion, CITES))


def test_no_findings_quotes_the_passage_closest_to_the_question():
    out = compose_answer("When is clinical trial enrolment offered?", AnswerPlan(), CITES)
    bottom = out.body.split("## Options")[0]
    assert "Clinical trial enrolment should be offered" in bottom


def test_one_label_warning_for_several_drugs_is_one_line():
    why = "Graft rejection has been reported after checkpoint blockade; agree the plan with the transplant team."
    warns = [
        Finding(rule_id=f"SAFETY:SAFE-CLASS.transplant:{d}", kind="warn", therapy=d, severity="high",
                reason=f"{d} needs caution: {why}", citations=[2])
        for d in ("nivolumab", "ipilimumab", "durvalumab")
    ] + [Finding(rule_id="SAFETY:SAFE-OWN.transplant", kind="warn", therapy="pembrolizumab", severity="high",
                 reason="pembrolizumab needs caution: Solid-organ transplant rejection has been reported.", citations=[3])]
    plan = PLAN.model_copy(update={"findings": [*PLAN.findings, *warns]})
    out = compose_answer("What next?", plan, CITES)
    pit = out.body.split(f"## {SECTIONS[3]}")[1].split("##")[0]
    assert pit.count("Graft rejection") == 1
    assert "nivolumab, ipilimumab and durvalumab need caution" in pit
    assert "pembrolizumab needs caution: Solid-organ" in pit  # a different warning keeps its own line
    res = inspect_answer(out.body, citations=CITES, plan=plan)
    assert not res.violations, res.violations
