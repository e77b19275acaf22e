"""Issue 12 review fixes on the general-medicine rules: each scenario and its neighbour state, against the real corpus.

Neighbour pairs (pregnant / not, cystitis / pyelonephritis, initial / extended VTE, type 1 / type 2 diabetes) pin
that a rule scoped to one state offers nothing in the other, and that the right alternative is offered instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from assistant.knowledge import Knowledge
from assistant.models import Allergy, Finding, LabValue, PatientContext, TherapyExposure
from assistant.rules import RuleEngine

_OFFER = ("recommend", "consider")


def patient(
    knowledge: Knowledge,
    therapies: Iterable[tuple[str, str]] = (),
    labs: dict[str, float] | None = None,
    **kw: object,
) -> PatientContext:
    exposures = [
        TherapyExposure(therapy=t, classes=knowledge.lexicon.classes_of(t), status=status)  # type: ignore[arg-type]
        for t, status in therapies
    ]
    return PatientContext(
        therapies=exposures,
        labs={n: LabValue(name=n, value=v) for n, v in (labs or {}).items()},
        **kw,  # type: ignore[arg-type]
    )


def offered(findings: list[Finding]) -> set[str]:
    return {f.therapy for f in findings if f.kind in _OFFER and f.therapy}


def excluded(findings: list[Finding]) -> set[str]:
    return {f.therapy for f in findings if f.kind == "exclude" and f.therapy}


def by_rule(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule_id]


# ------------------------------------------------------------------ VTE: pregnancy, breastfeeding, phase
def test_vte_in_pregnancy_offers_lmwh_not_doacs(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, labs={"creatinine": 0.6}, diagnoses=["vte", "dvt"], sex="female", age=31,
                  weight_kg=70, pregnant=True, gestational_weeks=28)  # fmt: skip
    out = engine.evaluate(ctx)
    assert "enoxaparin" in offered(out)
    assert {"apixaban", "rivaroxaban"} <= excluded(out)
    assert not offered(out) & {"apixaban", "rivaroxaban", "edoxaban", "dabigatran", "warfarin"}
    # Neighbour: the same woman not pregnant gets the DOACs back and no LMWH pregnancy rule.
    out = engine.evaluate(ctx.model_copy(update={"pregnant": False, "gestational_weeks": None}))
    assert "apixaban" in offered(out)
    assert not by_rule(out, "GEN-VTE-LMWH-PREGNANCY")


def test_vte_while_breastfeeding_offers_lmwh_and_warfarin(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, labs={"creatinine": 0.6}, diagnoses=["pe"], sex="female", age=30, weight_kg=65,
                  pregnant=False, postpartum=True, lactating=True)  # fmt: skip
    out = engine.evaluate(ctx)
    assert {"enoxaparin", "warfarin"} <= offered(out)


def test_aps_in_pregnancy_excludes_warfarin_and_offers_lmwh(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, labs={"creatinine": 0.6}, diagnoses=["vte"], sex="female", age=29, weight_kg=60,
                  pregnant=True, comorbidities={"antiphospholipid_syndrome": "present"})  # fmt: skip
    out = engine.evaluate(ctx)
    assert "warfarin" in excluded(out) and "warfarin" not in offered(out)
    assert "enoxaparin" in offered(out)


@pytest.mark.parametrize("drug", ["apixaban", "rivaroxaban"])
def test_extended_phase_gets_reduced_dose_not_loading_dose(
    drug: str, knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(knowledge, [(drug, "ongoing")], {"creatinine": 0.9}, diagnoses=["pe"], sex="male", age=55,
                  weight_kg=85, care_phase="extended")  # fmt: skip
    out = engine.evaluate(ctx)
    offers = [f for f in out if f.therapy == drug and f.kind in _OFFER]
    assert [f.rule_id for f in offers] == [f"GEN-VTE-{drug.upper()}-EXTENDED"]
    text = offers[0].reason
    assert ("2.5 mg" if drug == "apixaban" else "10 mg once daily") in text
    assert "10 mg twice daily" not in text and "15 mg twice daily" not in " ".join(f.reason for f in offers)
    # Neighbour: the initial phase gets the loading dose and not the extended-phase rule.
    out = engine.evaluate(ctx.model_copy(update={"care_phase": "initial", "therapies": []}))
    assert by_rule(out, f"GEN-VTE-{drug.upper()}") and not by_rule(out, f"GEN-VTE-{drug.upper()}-EXTENDED")


def test_new_vte_with_unstated_phase_is_treated_as_initial(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, labs={"creatinine": 0.9}, diagnoses=["pe"], sex="male", age=45, weight_kg=80)
    out = engine.evaluate(ctx)
    assert [f.kind for f in by_rule(out, "GEN-VTE-APIXABAN")][:1] == ["recommend"]
    assert not by_rule(out, "GEN-VTE-APIXABAN-EXTENDED")


# ------------------------------------------------------------------ hypertension: per class, pregnancy
def test_hypertension_in_pregnancy_drops_ras_blockers_and_offers_pregnancy_agents(
    knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(knowledge, labs={"sbp": 150, "dbp": 95}, diagnoses=["hypertension", "diabetes"], sex="female",
                  age=32, pregnant=True, gestational_weeks=16)  # fmt: skip
    out = engine.evaluate(ctx)
    assert {"lisinopril", "losartan"} <= excluded(out)
    assert not offered(out) & {"lisinopril", "losartan", "amlodipine", "chlorthalidone"}
    assert {"labetalol", "nifedipine", "methyldopa"} <= offered(out)
    # Neighbour: not pregnant — every first-line class is offered, the pregnancy agents are not.
    out = engine.evaluate(ctx.model_copy(update={"pregnant": False, "gestational_weeks": None}))
    assert {"lisinopril", "losartan", "amlodipine", "chlorthalidone"} <= offered(out)
    assert not offered(out) & {"labetalol", "methyldopa"}


def test_ras_blocker_asks_about_pregnancy_in_a_young_woman(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, labs={"sbp": 150}, diagnoses=["hypertension"], sex="female", age=29)
    out = engine.evaluate(ctx)
    assert any(f.kind == "ask" and f.title == "pregnant" for f in out)


# ------------------------------------------------------------------ UTI: site, sex, pregnancy, kidney measures
def test_pyelonephritis_never_gets_nitrofurantoin_or_fosfomycin(
    knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(knowledge, labs={"creatinine": 0.7}, diagnoses=["uti"], sex="female", age=34, weight_kg=62,
                  pregnant=False, infection_site="pyelonephritis")  # fmt: skip
    out = engine.evaluate(ctx)
    assert {"nitrofurantoin", "fosfomycin"} <= excluded(out)
    assert not offered(out) & {"nitrofurantoin", "fosfomycin"}
    assert {"fluoroquinolone", "ceftriaxone"} <= offered(out)
    tmp = [f for f in out if f.therapy == "trimethoprim_sulfamethoxazole" and f.kind in _OFFER]
    assert [f.rule_id for f in tmp] == ["GEN-UTI-PYELO-TMP-SMX"]
    # Neighbour: cystitis — nitrofurantoin first, no pyelonephritis regimen.
    out = engine.evaluate(ctx.model_copy(update={"infection_site": "cystitis"}))
    assert "nitrofurantoin" in offered(out)
    assert not by_rule(out, "GEN-UTI-PYELO-FLUOROQUINOLONE") and "ceftriaxone" not in offered(out)


def test_uti_with_unstated_site_offers_cystitis_drugs_and_asks(
    knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(knowledge, labs={"creatinine": 0.7}, diagnoses=["uti"], sex="female", age=34, weight_kg=62,
                  pregnant=False)  # fmt: skip
    out = engine.evaluate(ctx)
    assert "nitrofurantoin" in offered(out)
    assert any(f.kind == "ask" and f.title == "infection_site" for f in out)


def test_uti_in_a_man_is_outside_the_cystitis_courses(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, labs={"creatinine": 0.9}, diagnoses=["uti"], sex="male", age=60, weight_kg=80)
    out = engine.evaluate(ctx)
    assert {"nitrofurantoin", "fosfomycin"} <= excluded(out)
    assert by_rule(out, "GEN-WARN-UTI-MALE")


@pytest.mark.parametrize(("weeks", "nitro_offered"), [(39, False), (22, True), (9, False)])
def test_cystitis_in_pregnancy_by_gestational_age(
    weeks: int, nitro_offered: bool, knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(knowledge, labs={"creatinine": 0.6}, diagnoses=["uti"], sex="female", age=30, weight_kg=70,
                  pregnant=True, gestational_weeks=weeks, infection_site="cystitis")  # fmt: skip
    out = engine.evaluate(ctx)
    assert ("nitrofurantoin" in offered(out)) is nitro_offered
    assert "cephalexin" in offered(out)
    assert not offered(out) & {"fosfomycin", "trimethoprim_sulfamethoxazole", "fluoroquinolone"}


def test_stated_egfr_alone_triggers_crcl_exclusions(knowledge: Knowledge, engine: RuleEngine) -> None:
    uti = patient(knowledge, labs={"egfr": 24}, diagnoses=["uti"], sex="female", age=80)
    assert "nitrofurantoin" in excluded(engine.evaluate(uti))
    vte = patient(knowledge, labs={"egfr": 12}, diagnoses=["dvt"], sex="male", age=70)
    assert "rivaroxaban" in excluded(engine.evaluate(vte))
    af = patient(knowledge, labs={"egfr": 25}, diagnoses=["atrial_fibrillation", "hypertension", "diabetes"],
                 sex="male", age=78)  # fmt: skip
    assert "dabigatran" in excluded(engine.evaluate(af))


# ------------------------------------------------------------------ diabetes and CKD
def test_type_1_diabetes_with_ckd_gets_no_type_2_drugs(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, labs={"egfr": 50, "uacr": 400, "potassium": 4.5, "hba1c": 8.2},
                  diagnoses=["diabetes", "ckd"], diabetes_type="type1", sex="male", age=40)  # fmt: skip
    out = engine.evaluate(ctx)
    t2_only = {"metformin", "empagliflozin", "dapagliflozin", "semaglutide", "finerenone"}
    assert not offered(out) & t2_only
    # Neighbour: type 2 — all of them come back.
    out = engine.evaluate(ctx.model_copy(update={"diabetes_type": "type2"}))
    assert t2_only <= offered(out)
    assert by_rule(out, "GEN-DKD-SEMAGLUTIDE")[0].kind == "recommend"


@pytest.mark.parametrize(
    "update",
    [
        {"comorbidities": {"polycystic_kidney_disease": "present"}},
        {"comorbidities": {"kidney_transplant": "present", "organ_transplant": "present"}},
    ],
)
def test_sglt2i_ckd_exclusions(update: dict, knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge, labs={"egfr": 40, "uacr": 300}, diagnoses=["ckd"], sex="female", age=60, **update
    )
    out = engine.evaluate(ctx)
    assert {"empagliflozin", "dapagliflozin"} <= excluded(out)
    assert not offered(out) & {"empagliflozin", "dapagliflozin"}


def test_sglt2i_excluded_on_immunosuppressant(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, [("tacrolimus", "ongoing")], {"egfr": 40, "uacr": 300}, diagnoses=["ckd"],
                  sex="male", age=50)  # fmt: skip
    assert {"empagliflozin", "dapagliflozin"} <= excluded(engine.evaluate(ctx))


def test_sglt2i_without_diabetes_needs_albuminuria_or_low_egfr(
    knowledge: Knowledge, engine: RuleEngine
) -> None:
    low_risk = patient(knowledge, labs={"egfr": 70, "uacr": 40}, diagnoses=["ckd"], sex="male", age=50)
    assert "empagliflozin" not in offered(engine.evaluate(low_risk))
    albuminuric = low_risk.model_copy(
        update={"labs": {**low_risk.labs, "uacr": LabValue(name="uacr", value=350)}}
    )
    assert "empagliflozin" in offered(engine.evaluate(albuminuric))


@pytest.mark.parametrize(("uacr", "offer"), [(20.0, False), (300.0, True)])
def test_finerenone_needs_albuminuria(
    uacr: float, offer: bool, knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(knowledge, [("lisinopril", "ongoing")], {"egfr": 45, "uacr": uacr, "potassium": 4.6},
                  diagnoses=["diabetes", "ckd"], diabetes_type="type2", sex="male", age=62)  # fmt: skip
    assert ("finerenone" in offered(engine.evaluate(ctx))) is offer


# ------------------------------------------------------------------ CAP with comorbidities
def _cap(knowledge: Knowledge, severity: str) -> PatientContext:
    return patient(
        knowledge,
        [("warfarin", "ongoing")],
        diagnoses=["pneumonia", "copd", "atrial_fibrillation"],
        sex="male",
        age=70,
        allergies=["penicillin"],
        allergy_details=[
            Allergy(substance="penicillin", classes=["penicillin"], reaction="rash", severity=severity)
        ],
    )


def test_cap_penicillin_allergy_and_warfarin_still_has_a_regimen(
    knowledge: Knowledge, engine: RuleEngine
) -> None:
    out = engine.evaluate(_cap(knowledge, "non-severe"))
    assert "amoxicillin_clavulanate" in excluded(out)
    assert {"cefpodoxime", "fluoroquinolone"} <= offered(out)
    assert "fluoroquinolone" not in excluded(out)  # warfarin means an INR check, not exclusion
    severe = engine.evaluate(_cap(knowledge, "severe"))
    assert "cefpodoxime" in excluded(severe)
    assert "fluoroquinolone" in offered(severe)


# ------------------------------------------------------------------ interactions and lipids
@pytest.mark.parametrize("arpi", ["apalutamide", "enzalutamide"])
def test_arpi_doac_warning_covers_dabigatran_and_edoxaban(
    arpi: str, knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(
        knowledge, [(arpi, "ongoing"), ("dabigatran", "planned")], diagnoses=["atrial_fibrillation"]
    )
    warn = by_rule(engine.evaluate(ctx), "GEN-WARN-DOAC-ARPI-INDUCER")
    assert warn and "P-gp" in warn[0].reason
    assert "less affected" not in warn[0].reason


def test_ezetimibe_offered_at_ldl_55_to_69_in_ascvd(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, [("atorvastatin", "ongoing")], {"ldl": 62}, diagnoses=["coronary_artery_disease"],
                  sex="male", age=64)  # fmt: skip
    out = engine.evaluate(ctx)
    assert "ezetimibe" in offered(out)
    assert "55" in by_rule(out, "GEN-LIPID-ADD-EZETIMIBE")[0].reason
