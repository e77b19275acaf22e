"""General-medicine rules against the real corpus: the traps the issue names must fire."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from assistant.knowledge import Knowledge
from assistant.models import Finding, LabValue, PatientContext, TherapyExposure
from assistant.rules import RuleEngine


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
    lab_values = {n: LabValue(name=n, value=v) for n, v in (labs or {}).items()}
    return PatientContext(therapies=exposures, labs=lab_values, **kw)  # type: ignore[arg-type]


def kinds(findings: list[Finding], therapy: str) -> set[str]:
    return {f.kind for f in findings if f.therapy == therapy}


def fired(findings: list[Finding], rule_id: str) -> bool:
    return any(f.rule_id == rule_id for f in findings)


def test_general_rule_count(knowledge: Knowledge) -> None:
    general = [r for r in knowledge.rules if r.id.startswith("GEN-")]
    assert len(general) >= 30, len(general)


def test_doac_excluded_with_mechanical_valve(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge,
        [("apixaban", "planned")],
        {"creatinine": 1.0},
        diagnoses=["atrial_fibrillation", "hypertension"],
        age=72,
        sex="male",
        weight_kg=80,
        comorbidities={"mechanical_valve": "present"},
    )
    out = engine.evaluate(ctx)
    for doac in ("apixaban", "rivaroxaban", "edoxaban", "dabigatran"):
        assert "recommend" not in kinds(out, doac), doac
    assert "exclude" in kinds(out, "apixaban")
    assert "recommend" in kinds(out, "warfarin")
    assert fired(out, "GEN-WARN-DOAC-MECHANICAL-VALVE")


def test_dabigatran_excluded_below_crcl_30(knowledge: Knowledge, engine: RuleEngine) -> None:
    # 85-year-old woman, 55 kg, creatinine 1.8 → Cockcroft–Gault well under 30 mL/min
    ctx = patient(
        knowledge,
        [("dabigatran", "planned")],
        {"creatinine": 1.8},
        diagnoses=["atrial_fibrillation", "hypertension"],
        age=85,
        sex="female",
        weight_kg=55,
    )
    out = engine.evaluate(ctx)
    assert "exclude" in kinds(out, "dabigatran")
    assert fired(out, "GEN-WARN-DABIGATRAN-CRCL30")
    assert "recommend" in kinds(out, "apixaban")


@pytest.mark.parametrize(
    ("age", "weight", "creat", "reduce"),
    [(82, 58, 1.1, True), (82, 75, 1.1, False), (70, 58, 1.6, True), (70, 80, 1.6, False)],
)
def test_apixaban_dose_reduction_needs_two_of_three(
    knowledge: Knowledge, engine: RuleEngine, age: int, weight: float, creat: float, reduce: bool
) -> None:
    ctx = patient(
        knowledge,
        [("apixaban", "ongoing")],
        {"creatinine": creat},
        diagnoses=["atrial_fibrillation", "hypertension"],
        age=age,
        sex="male",
        weight_kg=weight,
    )
    out = engine.evaluate(ctx)
    assert fired(out, "GEN-WARN-APIXABAN-REDUCE") is reduce
    assert fired(out, "GEN-WARN-APIXABAN-FULL-DOSE") is (not reduce)


def test_edoxaban_excluded_when_crcl_above_95(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge,
        [("edoxaban", "planned")],
        {"creatinine": 0.7},
        diagnoses=["atrial_fibrillation", "hypertension", "diabetes"],
        age=66,
        sex="male",
        weight_kg=95,
    )
    out = engine.evaluate(ctx)
    assert "exclude" in kinds(out, "edoxaban")
    assert fired(out, "GEN-WARN-EDOXABAN-HIGH-CRCL")


def test_strong_inducer_with_doac_warns(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge,
        [("rivaroxaban", "ongoing"), ("rifampin", "ongoing")],
        {"creatinine": 1.0},
        diagnoses=["atrial_fibrillation"],
        age=70,
        sex="male",
        weight_kg=80,
    )
    assert fired(engine.evaluate(ctx), "GEN-WARN-DOAC-STRONG-INDUCER")


def test_metformin_at_egfr_25_is_excluded(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge, [("metformin", "ongoing")], {"egfr": 25}, diagnoses=["diabetes", "ckd"], age=70, sex="male"
    )
    out = engine.evaluate(ctx)
    assert "exclude" in kinds(out, "metformin")
    assert fired(out, "GEN-WARN-METFORMIN-EGFR30")
    assert "recommend" in kinds(out, "empagliflozin")


def test_metformin_not_started_at_egfr_40(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge, [("metformin", "planned")], {"egfr": 40}, diagnoses=["diabetes"], age=60, sex="female"
    )
    out = engine.evaluate(ctx)
    assert "exclude" in kinds(out, "metformin")
    assert fired(out, "GEN-WARN-METFORMIN-EGFR45")


def test_nitrofurantoin_excluded_with_low_crcl(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge,
        [("nitrofurantoin", "planned")],
        {"creatinine": 1.6},
        diagnoses=["uti"],
        age=88,
        sex="female",
        weight_kg=50,
        pregnant=False,
    )
    out = engine.evaluate(ctx)
    assert "exclude" in kinds(out, "nitrofurantoin")
    assert fired(out, "GEN-WARN-NITROFURANTOIN-LOW-CRCL")
    assert "recommend" in kinds(out, "fosfomycin")


def test_nitrofurantoin_recommended_with_normal_crcl(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge,
        labs={"creatinine": 0.8},
        diagnoses=["uti"],
        age=30,
        sex="female",
        weight_kg=65,
        pregnant=False,
    )
    assert "recommend" in kinds(engine.evaluate(ctx), "nitrofurantoin")


def test_cap_healthy_vs_comorbid(knowledge: Knowledge, engine: RuleEngine) -> None:
    healthy = engine.evaluate(patient(knowledge, diagnoses=["pneumonia"], age=40, sex="male"))
    assert "recommend" in kinds(healthy, "amoxicillin")
    assert not fired(healthy, "GEN-CAP-COMORBID-COMBINATION")
    comorbid = engine.evaluate(patient(knowledge, diagnoses=["pneumonia", "copd"], age=70, sex="male"))
    assert fired(comorbid, "GEN-CAP-COMORBID-COMBINATION")
    assert not fired(comorbid, "GEN-CAP-MACROLIDE")


def test_af_with_unknown_age_asks(knowledge: Knowledge, engine: RuleEngine) -> None:
    out = engine.evaluate(patient(knowledge, diagnoses=["atrial_fibrillation"], sex="male"))
    assert any(f.kind == "ask" and f.title == "age" for f in out)
    assert "recommend" not in kinds(out, "apixaban")
