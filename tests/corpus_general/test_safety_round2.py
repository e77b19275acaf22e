"""Safety round 2 (eval/safety.jsonl follow-ups): pyelonephritis in pregnancy, option reasons that must not name a drug
the same patient may be forbidden, SGLT2 inhibitors with immunosuppression for glomerular disease, diabetes on
dialysis, and TMP-SMX while nursing a young infant.

Every test is a neighbour-state pair on the shipped corpus: the same patient with and without the one deciding fact,
so a check that fires for everyone (or for no one) fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.knowledge import Knowledge
from assistant.models import Finding, PatientContext
from assistant.patient import extract_context
from assistant.rules import RuleEngine
from assistant.testing.patients import patient_context

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
OFFERS = ("recommend", "consider")


# The shipped corpus and its engine come from the session fixtures in conftest.py (`knowledge`, `engine`).
_ctx = patient_context


def _offers(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        if f.kind in OFFERS and f.therapy:
            out.setdefault(f.therapy, []).append(f)
    return out


def _rule_ids(findings: list[Finding], kind: str) -> set[str]:
    return {f.rule_id for f in findings if f.kind == kind}


# ------------------------------------------------------------------ 1. pyelonephritis in pregnancy
def _pyelo(**kw) -> PatientContext:
    return _ctx("uti", sex="female", age=28, infection_site="pyelonephritis", **kw)


def test_pregnant_pyelonephritis_gets_inpatient_ceftriaxone_not_outpatient_regimens(
    engine: RuleEngine,
) -> None:
    not_pregnant = engine.evaluate(_pyelo(pregnant=False))
    pregnant = engine.evaluate(_pyelo(pregnant=True, gestational_weeks=22))
    before, after = _offers(not_pregnant), _offers(pregnant)
    # Not pregnant: the outpatient pathway (oral fluoroquinolone first, single-dose ceftriaxone bridge).
    assert "fluoroquinolone" in before and "GEN-UTI-PYELO-CEFTRIAXONE" in {
        f.rule_id for f in before["ceftriaxone"]
    }
    assert "GEN-UTI-PYELO-CEFTRIAXONE-PREGNANCY" not in {f.rule_id for fs in before.values() for f in fs}
    # Pregnant: only the inpatient ceftriaxone rule offers anything; the outpatient rules are excluded or ineligible.
    assert set(after) == {"ceftriaxone"}, sorted(after)
    assert [f.rule_id for f in after["ceftriaxone"]] == ["GEN-UTI-PYELO-CEFTRIAXONE-PREGNANCY"]
    excluded = _rule_ids(pregnant, "exclude")
    assert {"GEN-UTI-PYELO-FLUOROQUINOLONE", "GEN-UTI-PYELO-TMP-SMX"} <= excluded
    # No conflict: the bridge's pregnancy gate is an eligibility, so ceftriaxone itself is never hard-excluded.
    assert not any(f.rule_id.startswith("CONFLICT:") for f in pregnant)


def test_pregnancy_pyelonephritis_option_names_no_fluoroquinolone(engine: RuleEngine) -> None:
    out = engine.evaluate(_pyelo(pregnant=True, gestational_weeks=22))
    text = " ".join(f.reason for f in _offers(out)["ceftriaxone"]).lower()
    assert "admit" in text and "iv" in text
    for word in ("fluoroquinolone", "ciprofloxacin", "levofloxacin", "tmp-smx", "trimethoprim"):
        assert word not in text, word


def test_cystitis_in_pregnancy_is_not_sent_to_the_pyelonephritis_rule(engine: RuleEngine) -> None:
    cystitis = engine.evaluate(_ctx("uti", sex="female", age=28, infection_site="cystitis", pregnant=True,
                                    gestational_weeks=22))  # fmt: skip
    assert "GEN-UTI-PYELO-CEFTRIAXONE-PREGNANCY" not in {f.rule_id for f in cystitis}
    assert "cephalexin" in _offers(cystitis)


# ------------------------------------------------------------------ 2. option texts do not offer forbidden drugs
# (rule id, drug names its offer text must not carry unnegated — checked on the raw reason/strength text)
_MUST_NOT_NAME = [
    ("GEN-AF-WARFARIN-ESKD", ("DOAC", "apixaban", "dabigatran", "edoxaban", "rivaroxaban")),
    ("GEN-UTI-PYELO-CEFTRIAXONE", ("fluoroquinolone", "TMP-SMX")),
    ("GEN-UTI-PYELO-CEFTRIAXONE-PREGNANCY", ("fluoroquinolone",)),
    ("GEN-AF-OAC-INTERMEDIATE", ("DOAC",)),
    ("GEN-HF-SGLT2I", ("dapagliflozin",)),
]


@pytest.mark.parametrize(("rule_id", "names"), _MUST_NOT_NAME)
def test_offer_texts_do_not_name_alternatives(
    knowledge: Knowledge, rule_id: str, names: tuple[str, ...]
) -> None:
    rule = next(r for r in knowledge.rules if r.id == rule_id)
    text = f"{rule.reason} {rule.strength} {rule.title}"
    for name in names:
        assert not re.search(rf"\b{re.escape(name)}\b", text, re.I), (rule_id, name)


def test_named_alternatives_are_stated_as_negated_or_restricted(knowledge: Knowledge) -> None:
    therapy = [r for r in knowledge.rules if r.type == "therapy"]
    rules = {r.id: " ".join(r.reason.split()) for r in therapy}
    strengths = {r.id: r.strength for r in therapy}
    assert "are not usable" in rules["GEN-VTE-WARFARIN-ESKD"]
    assert "no usable VTE dose" not in rules["GEN-VTE-WARFARIN-ESKD"]
    for rid in ("GEN-VTE-LMWH-INDUCER", "GEN-VTE-WARFARIN-INDUCER"):
        assert "DOACs are avoided with these inducers" in strengths[rid]
    for rid in ("GEN-UTI-PYELO-FLUOROQUINOLONE", "GEN-UTI-PYELO-TMP-SMX"):
        # ceftriaxone appears only in a sentence that restricts it to patients who can take a cephalosporin
        sentence = next(s for s in rules[rid].split(". ") if "ceftriaxone" in s)
        assert "without a cephalosporin allergy" in sentence, rid
    assert "DOACs are avoided while breastfeeding because" in rules["GEN-VTE-LMWH-BREASTFEEDING"]
    assert "DOACs are avoided here because" in rules["GEN-WARFARIN-APS"]
    for rid, text in rules.items():
        if rid.startswith("GEN-"):
            assert not re.search(r"(?:^|\. )On warfarin\b", text), rid  # bare "on" reads as advice


# ------------------------------------------------------------------ 3. SGLT2 inhibitors and glomerular disease
def test_glomerular_disease_is_read_from_the_question(knowledge: Knowledge) -> None:
    lupus = extract_context(
        "Lupus nephritis class IV on mycophenolate; eGFR 50, UACR 900 mg/g.", lexicon=knowledge.lexicon
    )
    assert lupus.comorbidities.get("glomerular_disease") == "present"
    iga = extract_context("IgA nephropathy with eGFR 40 and UACR 600 mg/g.", lexicon=knowledge.lexicon)
    assert iga.comorbidities.get("glomerular_disease") == "present"
    plain = extract_context("Diabetic kidney disease with eGFR 40 and UACR 600 mg/g.", lexicon=knowledge.lexicon)
    assert "glomerular_disease" not in plain.comorbidities


def _gn(**kw) -> PatientContext:
    return _ctx("ckd", sex="female", age=30, pregnant=False, labs={"egfr": 50, "uacr": 900}, **kw)


def test_sglt2i_profile_withdraws_for_glomerular_disease_on_immunosuppression(engine: RuleEngine) -> None:
    drugs = ["sglt2i_unspecified", "empagliflozin", "dapagliflozin"]
    check = "SAFE-SGLT2I.immunosuppression-for-glomerular-disease"

    def hits(ctx: PatientContext) -> set[str]:
        return {
            f.therapy for f in engine.screen(ctx, drugs, []) if f.kind == "exclude" and check in f.rule_id
        }

    assert hits(_gn(comorb=["glomerular_disease"], current=["mycophenolate"])) == set(drugs)
    assert not hits(_gn(comorb=["glomerular_disease"]))  # glomerular disease alone: no immunosuppression
    assert not hits(_gn(current=["mycophenolate"]))  # immunosuppressed, reason unknown: caution only
    # A type 2 diabetes or heart-failure indication is not the label's CKD limitation: caution, not withdrawal.
    hf = _ctx(["ckd", "heart_failure"], sex="female", age=30, pregnant=False, labs={"egfr": 50, "uacr": 900},
              comorb=["glomerular_disease"], current=["mycophenolate"])  # fmt: skip
    assert not hits(hf)


def test_ckd_rules_offer_sglt2i_in_glomerular_disease_only_without_immunosuppression(
    engine: RuleEngine,
) -> None:
    without = _offers(engine.evaluate(_gn(comorb=["glomerular_disease"])))
    assert {"empagliflozin", "dapagliflozin"} <= set(without)
    with_is = engine.evaluate(_gn(comorb=["glomerular_disease"], current=["mycophenolate"]))
    assert not {"empagliflozin", "dapagliflozin"} & set(_offers(with_is))
    assert {"GEN-CKD-EMPAGLIFLOZIN", "GEN-CKD-DAPAGLIFLOZIN"} <= _rule_ids(with_is, "exclude")


# ------------------------------------------------------------------ 4. diabetes on dialysis
def _t2d(**kw) -> PatientContext:
    return _ctx(["diabetes", "ckd"], sex="male", age=60, diabetes_type="type2", **kw)


def test_dialysis_offers_insulin_and_no_metformin_or_sglt2i(engine: RuleEngine) -> None:
    stage3 = _offers(engine.evaluate(_t2d(labs={"hba1c": 8.9, "egfr": 50})))
    assert "insulin" not in stage3 and {"empagliflozin", "dapagliflozin"} & set(stage3)
    dialysis = engine.evaluate(_t2d(labs={"hba1c": 8.9}, comorb=["dialysis"]))
    offered = _offers(dialysis)
    assert [f.rule_id for f in offered.get("insulin", [])] == ["GEN-DM-INSULIN-KIDNEY-FAILURE"]
    assert not {"metformin", "empagliflozin", "dapagliflozin", "canagliflozin"} & set(offered)
    # eGFR below 15 without dialysis is kidney failure too
    g5 = _offers(engine.evaluate(_t2d(labs={"hba1c": 8.9, "egfr": 12})))
    assert "insulin" in g5


def test_dialysis_insulin_text_names_no_other_drug(knowledge: Knowledge) -> None:
    rule = next(r for r in knowledge.rules if r.id == "GEN-DM-INSULIN-KIDNEY-FAILURE")
    for word in ("metformin", "SGLT2", "gliflozin", "GLP-1", "semaglutide", "gliptin"):
        assert word.lower() not in rule.reason.lower(), word


# ------------------------------------------------------------------ 5. TMP-SMX while nursing a young infant
def test_tmp_smx_withdrawn_only_while_nursing_an_infant_under_2_months(
    knowledge: Knowledge, engine: RuleEngine
) -> None:
    def tmp_offered(question: str) -> bool:
        ctx = extract_context(question, lexicon=knowledge.lexicon)
        return "trimethoprim_sulfamethoxazole" in _offers(engine.evaluate(ctx))

    young = "Breastfeeding mother, baby 3 weeks old and healthy, with uncomplicated cystitis (no fever). No allergies."
    older = "Breastfeeding mother, baby 7 months old and healthy, with uncomplicated cystitis (no fever). No allergies."
    assert not tmp_offered(young)
    assert tmp_offered(older)
    ctx = extract_context(young, lexicon=knowledge.lexicon)
    hits = [f.rule_id for f in engine.evaluate(ctx) if f.kind == "exclude"]
    assert "SAFETY:SAFE-TMP-SMX.lactation-young-infant" in hits
    # The same infant-age words without breastfeeding change nothing for the mother.
    not_nursing = _ctx("uti", sex="female", age=30, pregnant=False, lactating=False, infection_site="cystitis",
                       comorb=["infant_under_2_months"], labs={"crcl": 90})  # fmt: skip
    assert "trimethoprim_sulfamethoxazole" in _offers(engine.evaluate(not_nursing))
