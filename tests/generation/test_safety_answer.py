"""The answer layer keeps the safety plan: forbidden drugs are never quoted as options, off-question offers are
shown apart, declined options are shown as declined, and text that speaks against an offered drug is caught."""

from __future__ import annotations

import pytest

from assistant.answer.compose import compose_answer
from assistant.answer.format import ALSO_NOTED_SECTION, SECTIONS
from assistant.answer.verify import inspect_answer
from assistant.models import AnswerPlan, Citation, Finding, PatientContext
from assistant.population import population_mismatch

CITES = [
    Citation(number=1, doc_id="d", title="T", chunk_id="c1",
             passage="Apixaban or rivaroxaban are preferred for most patients with venous thromboembolism."),
    Citation(number=2, doc_id="d", title="T", chunk_id="c2",
             passage="Low-molecular-weight heparin is the anticoagulant of choice during pregnancy."),
    Citation(number=3, doc_id="d", title="T", chunk_id="c3",
             passage="Empagliflozin lowers the risk of kidney failure in chronic kidney disease."),
]  # fmt: skip


def _section(body: str, title: str) -> str:
    return body.split(f"## {title}")[1].split("\n## ")[0]


def test_passages_naming_a_forbidden_drug_are_not_listed_as_options() -> None:
    plan = AnswerPlan(
        findings=[Finding(rule_id="SAFETY:X.pregnancy", kind="exclude", therapy="apixaban",
                          reason="Not recommended in pregnancy.", citations=[1], severity="label")],
        must_not_recommend=["apixaban", "Eliquis", "rivaroxaban"],
    )  # fmt: skip
    body = compose_answer("DVT at 28 weeks — which anticoagulant?", plan, CITES).body
    options = _section(body, SECTIONS[1]) + _section(body, SECTIONS[0])
    assert "Apixaban or rivaroxaban" not in options
    assert "heparin" in options.lower(), options


def test_offers_for_another_condition_go_to_also_noted() -> None:
    plan = AnswerPlan(
        findings=[
            Finding(rule_id="GOUT-1", kind="recommend", therapy="colchicine", domain="gout",
                    reason="Low-dose colchicine treats a gout flare.", citations=[2], preference=1),
            Finding(rule_id="CKD-SGLT2", kind="recommend", therapy="empagliflozin", domain="ckd",
                    reason="Empagliflozin lowers the risk of kidney failure.", citations=[3], preference=1),
        ],
        also_noted=["CKD-SGLT2"],
    )  # fmt: skip
    body = compose_answer("Gout flare in CKD — what to give?", plan, CITES).body
    assert "empagliflozin" not in (_section(body, SECTIONS[0]) + _section(body, SECTIONS[1])).lower()
    assert "empagliflozin" in _section(body, ALSO_NOTED_SECTION).lower()


def test_declined_option_is_labelled_declined() -> None:
    plan = AnswerPlan(
        findings=[Finding(rule_id="DECLINED:T-DOC", kind="exclude", therapy="docetaxel", severity="declined",
                          reason="The patient declines this option.", citations=[])],
        must_not_recommend=["docetaxel"],
    )  # fmt: skip
    body = compose_answer("What now?", plan, CITES).body
    assert "**docetaxel** — declined by the patient" in _section(body, SECTIONS[2])


@pytest.mark.parametrize(
    ("sentence", "bad"),
    [
        ("Cabazitaxel is the preferred option [1] and is not recommended for switching [1].", True),
        ("Cabazitaxel should be avoided in this patient [1].", True),
        ("Cabazitaxel is the preferred option [1].", False),
        ("Avoid cabazitaxel if neutrophils are below 1,500 [1].", False),
        ("Cabazitaxel is the preferred option because it is not contraindicated here [1].", False),
        ("Cabazitaxel is the preferred option because it improves imaging PFS (8.0 [1]) and is not recommended for switching [1].", True),
    ],
)
def test_text_that_speaks_against_an_offered_drug_is_a_violation(sentence: str, bad: bool) -> None:
    cites = [Citation(number=1, doc_id="d", title="T", chunk_id="c", passage="Cabazitaxel prolongs survival after docetaxel; avoid cabazitaxel if neutrophils are below 1,500 and it is not recommended for switching.")]
    plan = AnswerPlan(
        findings=[Finding(rule_id="R1", kind="recommend", therapy="cabazitaxel", reason="After docetaxel.", citations=[1])],
        must_mention=["cabazitaxel"],
        offered_names={"cabazitaxel": ["cabazitaxel", "Jevtana"]},
    )  # fmt: skip
    res = inspect_answer(f"## {SECTIONS[0]}\n{sentence}", citations=cites, plan=plan, check_required=False)
    assert any(v.check == "contradiction" for v in res.violations) is bad, res.violations


@pytest.mark.parametrize(
    ("population", "ctx", "fits"),
    [
        ("Stepwise Pharmacotherapy for Adults and Adolescents › ICS Dose Categories (>=12 years)", PatientContext(age=6), False),
        ("Adults and adolescents", PatientContext(age=15), True),
        ("Adults With Comorbidities", PatientContext(age=9), False),
        ("Adults With Comorbidities", PatientContext(age=64), True),
        ("Children and Adolescents", PatientContext(age=40), False),
        ("Older Adults (Age 60+)", PatientContext(age=45), False),
        ("Non-pregnant adult women with acute uncomplicated cystitis", PatientContext(age=30, sex="female", pregnant=True), False),
        ("Non-pregnant adult women with acute uncomplicated cystitis", PatientContext(age=30, sex="female"), True),
        ("Non-pregnant adult women with acute uncomplicated cystitis", PatientContext(age=50, sex="male"), False),
        ("Men with mCRPC after docetaxel", PatientContext(age=70, sex="male"), True),
        ("Child-Pugh Classification", PatientContext(age=50), True),
        ("", PatientContext(age=3), True),
    ],
)
def test_population_scope(population: str, ctx: PatientContext, fits: bool) -> None:
    assert (population_mismatch(population, ctx) is None) is fits, population_mismatch(population, ctx)


def test_a_passage_about_an_excluded_drug_is_not_mined_for_options() -> None:
    cites = [
        Citation(number=1, doc_id="kdigo", title="CKD", section="SGLT2 inhibitors", chunk_id="c1",
                 passage="Treat CKD with an SGLT2 inhibitor. Once started, continue below eGFR 20 until dialysis."),
        Citation(number=2, doc_id="ada", title="Diabetes", section="Insulin", chunk_id="c2",
                 passage="Insulin is the treatment of type 1 diabetes; match the dose to carbohydrate intake."),
    ]  # fmt: skip
    plan = AnswerPlan(
        findings=[Finding(rule_id="X", kind="exclude", therapy="empagliflozin", reason="Type 1 diabetes.", citations=[1])],
        must_not_recommend=["empagliflozin", "SGLT2 inhibitor"],
    )
    body = compose_answer("Type 1 diabetes with CKD: start an SGLT2 inhibitor?", plan, cites).body
    head = _section(body, SECTIONS[0]) + _section(body, SECTIONS[1])
    assert "continue below eGFR 20" not in head
    assert "Insulin is the treatment" in head


def test_when_every_option_is_ruled_out_the_bottom_line_says_so() -> None:
    plan = AnswerPlan(
        findings=[Finding(rule_id="X", kind="exclude", therapy="empagliflozin", reason="Type 1 diabetes.", citations=[])],
        must_not_recommend=["empagliflozin"],
    )
    body = compose_answer("Start empagliflozin?", plan, []).body
    assert "None of the options the rule checks know" in _section(body, SECTIONS[0])


def test_a_negative_about_a_forbidden_drug_is_not_a_contradiction_of_the_offer() -> None:
    cites = [Citation(number=1, doc_id="d", title="T", chunk_id="c", passage="Enoxaparin is preferred in pregnancy; DOACs should be avoided.")]
    plan = AnswerPlan(
        findings=[Finding(rule_id="R1", kind="recommend", therapy="enoxaparin", reason="Pregnancy.", citations=[1])],
        must_mention=["enoxaparin"], must_not_recommend=["apixaban", "DOACs"],
        offered_names={"enoxaparin": ["enoxaparin", "Lovenox"]},
    )  # fmt: skip
    text = f"## {SECTIONS[0]}\nEnoxaparin is the preferred option, and DOACs should be avoided in pregnancy [1]."
    res = inspect_answer(text, citations=cites, plan=plan, check_required=False)
    assert not any(v.check == "contradiction" for v in res.violations), res.violations
