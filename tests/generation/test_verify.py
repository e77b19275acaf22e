"""Unit tests of the verifier's checks on hand-written answers."""

from __future__ import annotations

import pytest

from assistant.answer.repair import append_required, strike
from assistant.answer.support import SupportScorer, lexical_support
from assistant.answer.verify import inspect_answer, parse_answer, therapy_mentions, verify_answer
from assistant.models import AnswerPlan, Citation, Finding


def cite(n: int, text: str) -> Citation:
    return Citation(number=n, doc_id="d", title="T", chunk_id=f"c{n}", passage=text)


CITES = [
    cite(1, "Cabazitaxel prolonged overall survival after docetaxel in metastatic castration-resistant prostate cancer."),
    cite(2, "Enzalutamide lowers warfarin exposure; the INR should be monitored more closely."),
]
PLAN = AnswerPlan(
    findings=[
        Finding(rule_id="X1", kind="exclude", therapy="lu177_psma617", reason="Progressed during Lu-177-PSMA.", citations=[1]),
        Finding(rule_id="W1", kind="warn", reason="Enzalutamide lowers warfarin exposure; monitor the INR closely.", citations=[2]),
    ],
    must_not_recommend=["lu177_psma617", "Pluvicto", "Lu-177-PSMA"],
)


def run(text: str, plan: AnswerPlan = PLAN):
    return inspect_answer(text, citations=CITES, plan=plan)


def test_unknown_numbers_are_removed_and_recorded():
    r = run("Cabazitaxel prolonged overall survival after docetaxel [1][7]. Monitor the INR closely with enzalutamide and warfarin [2].")
    assert "[7]" not in r.text and "[1]" in r.text
    assert any("[7]" in x for x in r.report.failed)


def test_uncited_claim_is_a_violation_but_notes_and_questions_are_not():
    r = run("Cabazitaxel is clearly superior to every other therapy available today.\n_This is a note about the answer itself, not a claim._\nIs there visceral disease?")
    checks = [v.check for v in r.violations]
    assert checks.count("uncited") == 1


@pytest.mark.parametrize(
    "sentence",
    [
        "Pluvicto is the best next option [1].",
        "Consider Lu-177-PSMA re-treatment now [1].",
        "Start lutetium-177 therapy again [1].",
        "We recommend 177Lu-PSMA-617 rechallenge [1].",
    ],
)
def test_recommending_an_excluded_therapy_is_caught_by_any_name(sentence):
    plan = PLAN.model_copy(update={"must_not_recommend": ["lu177_psma617", "Pluvicto", "Lu-177-PSMA", "lutetium-177", "177Lu-PSMA-617"]})
    r = run("## Options that fit this patient\n" + sentence, plan)
    assert any(v.check == "excluded-therapy" for v in r.violations), sentence


@pytest.mark.parametrize(
    "sentence",
    [
        "Do not restart Pluvicto after progression during treatment [1].",
        "Pluvicto is not recommended because the disease progressed on it [1].",
        "After progression on Pluvicto, cabazitaxel prolonged overall survival after docetaxel [1].",
        "Cabazitaxel rather than Pluvicto is preferred after docetaxel [1].",
    ],
)
def test_negated_or_historical_mentions_are_fine(sentence):
    r = run("## Options that fit this patient\n" + sentence)
    assert not any(v.check == "excluded-therapy" for v in r.violations), (sentence, r.violations)


def test_any_mention_in_the_not_recommended_section_is_fine():
    r = run("## Not recommended for this patient\n- Pluvicto: progressed during Lu-177-PSMA [1].")
    assert not any(v.check == "excluded-therapy" for v in r.violations)


def test_short_names_match_case_sensitively():
    assert therapy_mentions("the ADT was given", {"adt": ["ADT"]})
    assert not therapy_mentions("an adt-like word: gadt", {"adt": ["ADT"]})


def test_regimen_needs_all_components():
    names = {"niraparib+abiraterone": ["niraparib+abiraterone"]}
    assert not therapy_mentions("abiraterone alone", names)
    assert therapy_mentions("niraparib with abiraterone", names)


def test_invented_number_is_unsupported_even_with_high_overlap():
    scorer = SupportScorer(None)
    passage = CITES[0].passage
    assert scorer.supported("Cabazitaxel prolonged overall survival after docetaxel.", [passage])
    assert not scorer.supported("Cabazitaxel prolonged overall survival by 14 months after docetaxel.", [passage])


def test_lexical_support_expands_abbreviations():
    assert lexical_support("Cabazitaxel helps in mCRPC.", "castration-resistant prostate cancer metastatic; cabazitaxel helps") > 0.9


def test_finding_reason_counts_as_support_for_its_citations():
    r = run("## Not recommended for this patient\n- Lu-177-PSMA: progressed during Lu-177-PSMA [1].")
    assert not any(v.check == "support" for v in r.violations)


def test_missing_warning_is_reported_and_appended():
    text = "## Bottom line\nCabazitaxel prolonged overall survival after docetaxel [1]."
    r = run(text)
    assert [f.rule_id for f in r.missing_required] == ["W1"]
    fixed = append_required(r.text, r.missing_required, {1, 2})
    assert "Warnings and open questions" in fixed and "[2]" in fixed
    assert not run(fixed).missing_required


def test_strike_removes_only_offending_sentences_and_keeps_structure():
    text = "## Options that fit this patient\n1. Cabazitaxel prolonged overall survival after docetaxel [1]. Pluvicto is the best option [1].\n2. Start Pluvicto [1]."
    r = run(text)
    out, notes = strike(r)
    assert "Cabazitaxel prolonged" in out and "Pluvicto" not in out
    assert out.startswith("## Options that fit this patient\n1. Cabazitaxel")
    assert len(notes) == 2


def test_flagging_marks_instead_of_removing():
    r = run("Cabazitaxel is clearly superior to every other therapy available today.")
    out, _ = strike(r, flag_only=("uncited",))
    assert "superior" in out and "unverified" in out


def test_verified_only_when_every_check_passes():
    good = "Cabazitaxel prolonged overall survival after docetaxel [1]. Enzalutamide lowers warfarin exposure, so monitor the INR closely [2]."
    assert verify_answer(good, citations=CITES, plan=PLAN).verified
    bad = good + " Pluvicto is a good option now [1]."
    rep = verify_answer(bad, citations=CITES, plan=PLAN)
    assert not rep.verified and rep.failed


def test_citations_after_the_full_stop_stay_with_their_sentence():
    _, _, sents = parse_answer("First claim about cabazitaxel survival. [1] Second claim on warfarin and INR.[2]")
    assert [s.citations for s in sents] == [[1], [2]]


@pytest.mark.parametrize("text", ["Lu-177 PSMA-617 is an option", "Lu177-PSMA-617 is an option", "lu177 psma617 is an option"])
def test_therapy_id_matches_its_written_variants(text):
    assert therapy_mentions(text, {"lu177_psma617": ["lu177_psma617"]})


def test_uncited_but_supported_claim_gets_its_citation_attached():
    from assistant.answer.repair import attach_citations

    text = "Cabazitaxel prolonged overall survival after docetaxel in castration-resistant disease. Zebras migrate in winter."
    out, notes = attach_citations(text, citations=CITES, plan=PLAN, scorer=SupportScorer(None))
    assert "docetaxel in castration-resistant disease [1]." in out
    assert "Zebras migrate in winter." in out and "winter [" not in out
    assert len(notes) == 1


def test_patient_facts_from_the_question_may_accompany_a_cited_claim():
    s = "For this man with a CHEK2 variant and rising PSA, cabazitaxel prolonged overall survival after docetaxel [1]."
    without = inspect_answer(s, citations=CITES, plan=PLAN)
    with_ctx = inspect_answer(s, citations=CITES, plan=PLAN, context_text="mCRPC, CHEK2 variant, PSA rising on Pluvicto")
    assert any(v.check == "support" for v in without.violations)
    assert not any(v.check == "support" for v in with_ctx.violations)


def test_a_dose_that_contradicts_a_rule_warning_is_caught():
    from assistant.answer.verify import dose_conflicts, inspect_answer
    from assistant.models import AnswerPlan, Citation, Finding

    warn = Finding(rule_id="GEN-WARN-APIXABAN-REDUCE", kind="warn", therapy="apixaban", citations=[1],
                   reason="Two of age ≥ 80, weight ≤ 60 kg and creatinine ≥ 1.5 mg/dL are met: the AF dose is 2.5 mg twice daily.")
    names = {"apixaban": ["apixaban", "Eliquis"]}
    assert dose_conflicts("Give apixaban 5 mg twice daily [1].", [warn], names)
    assert dose_conflicts("Eliquis 5 mg BID is right [1].", [warn], names), "brand names count"
    assert not dose_conflicts("Apixaban 2.5 mg twice daily [1].", [warn], names)
    assert not dose_conflicts("Apixaban 5 mg twice daily; 2.5 mg with two criteria [1].", [warn], names)
    assert not dose_conflicts("Rivaroxaban 20 mg daily [1].", [warn], names), "another drug's dose is not this warning's"
    cites = [Citation(number=1, doc_id="d", title="t", chunk_id="c", passage="Apixaban 5 mg twice daily in AF.")]
    result = inspect_answer("## Bottom line\nThe dose is apixaban 5 mg twice daily [1].", citations=cites,
                            plan=AnswerPlan(findings=[warn]), therapy_names=names, check_required=False)
    assert any(v.check == "dose" for v in result.violations), result.violations


def test_dose_check_ignores_lab_values_and_other_drugs_doses():
    from assistant.answer.verify import dose_conflicts, doses_in
    from assistant.models import Finding

    assert doses_in("creatinine 1.5 mg/dL, cabazitaxel 20 mg/m², 7.4 GBq") == {"20 mg", "7.4 gbq"}
    warn = Finding(rule_id="W", kind="warn", therapy="apixaban", reason="The AF dose is 2.5 mg twice daily.")
    names = {"apixaban": ["apixaban"], "dabigatran": ["dabigatran"]}
    assert not dose_conflicts("Dabigatran 75 mg twice daily is modelled only; choose apixaban or warfarin [1].", [warn], names)
    assert dose_conflicts("Choose apixaban at 5 mg twice daily, not dabigatran [1].", [warn], names)


@pytest.mark.parametrize(
    ("sentence", "meta"),
    [
        ("The second sentence explains that cabazitaxel is preferred after docetaxel [1].", True),
        ("According to the provided passages, cabazitaxel is preferred [1].", True),
        ("As an AI language model I suggest cabazitaxel [1].", True),
        ("Cabazitaxel is preferred after docetaxel and an ARPI (CARD) [1].", False),
        ("Discuss the treatment plan with the patient and family [1].", False),
    ],
)
def test_sentences_about_the_prompt_are_caught(sentence, meta):
    from assistant.answer.verify import inspect_answer
    from assistant.models import AnswerPlan, Citation

    cites = [Citation(number=1, doc_id="d", title="t", chunk_id="c", passage="Cabazitaxel after docetaxel (CARD).")]
    result = inspect_answer(f"## Bottom line\n{sentence}", citations=cites, plan=AnswerPlan(), check_support=False,
                            check_required=False)
    assert any(v.check == "meta" for v in result.violations) is meta, result.violations
