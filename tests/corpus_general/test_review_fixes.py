"""Reviewer findings on the general-medicine rules, each pinned by a scenario against the shipped corpus."""

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
    return PatientContext(
        therapies=exposures,
        labs={n: LabValue(name=n, value=v) for n, v in (labs or {}).items()},
        **kw,  # type: ignore[arg-type]
    )


def kinds(findings: list[Finding], therapy: str) -> set[str]:
    return {
        f.kind for f in findings if f.therapy == therapy and f.kind in ("recommend", "consider", "exclude")
    }


def fired(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule_id]


# ------------------------------------------------------------------ 3. cystitis in pregnancy
def test_uti_in_pregnancy_excludes_tmp_smx_and_fluoroquinolone(
    knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(
        knowledge,
        labs={"creatinine": 0.7},
        diagnoses=["uti"],
        sex="female",
        age=28,
        weight_kg=65,
        pregnant=True,
    )
    out = engine.evaluate(ctx)
    assert kinds(out, "trimethoprim_sulfamethoxazole") == {"exclude"}
    assert kinds(out, "fluoroquinolone") == {"exclude"}
    warn = fired(out, "GEN-WARN-NITROFURANTOIN-PREGNANCY")
    assert warn and "first trimester" in warn[0].reason and "term" in warn[0].reason


def test_uti_not_pregnant_keeps_the_usual_options(knowledge: Knowledge, engine: RuleEngine) -> None:
    # The 3-day TMP-SMX and fluoroquinolone cystitis courses need the site known (pyelonephritis has its own regimens).
    ctx = patient(
        knowledge,
        labs={"creatinine": 0.7},
        diagnoses=["uti"],
        sex="female",
        age=28,
        weight_kg=65,
        pregnant=False,
        infection_site="cystitis",
    )
    out = engine.evaluate(ctx)
    assert kinds(out, "trimethoprim_sulfamethoxazole") == {"consider"}
    assert kinds(out, "fluoroquinolone") == {"consider"}
    assert not fired(out, "GEN-WARN-NITROFURANTOIN-PREGNANCY")


def test_cap_fluoroquinolone_excluded_in_pregnancy(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(knowledge, diagnoses=["pneumonia", "asthma"], sex="female", age=30, pregnant=True)
    assert kinds(engine.evaluate(ctx), "fluoroquinolone") == {"exclude"}


# ------------------------------------------------------------------ 4. RAS blockade when planning a pregnancy
def test_ras_pregnancy_warning_covers_planned_pregnancy(knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge,
        [("lisinopril", "ongoing")],
        diagnoses=["hypertension"],
        sex="female",
        age=31,
        pregnant=False,
        comorbidities={"planning_pregnancy": "present"},
    )
    warn = fired(engine.evaluate(ctx), "GEN-WARN-RAS-PREGNANCY")
    assert warn and warn[0].severity == "high"
    ctx = ctx.model_copy(update={"comorbidities": {}})
    assert not fired(engine.evaluate(ctx), "GEN-WARN-RAS-PREGNANCY")


# ------------------------------------------------------------------ 5. antiphospholipid syndrome
@pytest.mark.parametrize("indication", ["vte", "atrial_fibrillation"])
def test_aps_prefers_warfarin_over_doacs(indication: str, knowledge: Knowledge, engine: RuleEngine) -> None:
    ctx = patient(
        knowledge,
        [("rivaroxaban", "planned")],
        {"creatinine": 0.9},
        diagnoses=[indication, "hypertension"],
        comorbidities={"antiphospholipid_syndrome": "present"},
        sex="female",
        age=70,
        weight_kg=70,
    )
    out = engine.evaluate(ctx)
    for doac in ("apixaban", "rivaroxaban"):
        assert kinds(out, doac) == {"exclude"}, doac
    assert kinds(out, "warfarin") == {"recommend"}
    assert fired(out, "GEN-WARN-DOAC-APS")
    without = engine.evaluate(ctx.model_copy(update={"comorbidities": {}}))
    assert "recommend" in kinds(without, "apixaban")
    assert not fired(without, "GEN-WARN-DOAC-APS") and not fired(without, "GEN-WARFARIN-APS")


# ------------------------------------------------------------------ 6. the AF weight question is for AF
@pytest.mark.parametrize("diagnosis,asked", [("vte", False), ("atrial_fibrillation", True)])
def test_af_weight_question_scoped_to_af(
    diagnosis: str, asked: bool, knowledge: Knowledge, engine: RuleEngine
) -> None:
    # CrCl stated, so no other rule needs the weight for Cockcroft-Gault: any weight question is this one.
    ctx = patient(
        knowledge, [("apixaban", "planned")], {"crcl": 80}, diagnoses=[diagnosis], sex="male", age=70
    )
    weight_asks = [f for f in engine.evaluate(ctx) if f.kind == "ask" and f.title == "weight"]
    assert bool(weight_asks) is asked
    if asked:
        assert "apixaban" in weight_asks[0].reason.lower()


# ------------------------------------------------------------------ 8. renamed lexicon classes keep rules working
def test_fluoroquinolone_id_still_matches_after_lexicon_cleanup(
    knowledge: Knowledge, engine: RuleEngine
) -> None:
    assert "fluoroquinolone" not in knowledge.lexicon.classes and "insulin" not in knowledge.lexicon.classes
    ctx = patient(knowledge, [("warfarin", "ongoing"), ("fluoroquinolone", "planned")], diagnoses=["uti"])
    assert fired(engine.evaluate(ctx), "GEN-WARN-WARFARIN-TMP-SMX")


def test_ras_blocker_not_recommended_when_planning_pregnancy(
    knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(
        knowledge,
        diagnoses=["diabetes", "hypertension", "ckd"],
        sex="female",
        age=33,
        pregnant=False,
        comorbidities={"planning_pregnancy": "present"},
    )
    assert kinds(engine.evaluate(ctx), "lisinopril") == {"exclude"}


@pytest.mark.parametrize(("crcl", "fires"), [(40.0, True), (50.0, True), (14.0, False), (70.0, False)])
def test_rivaroxaban_af_dose_follows_creatinine_clearance(
    crcl: float, fires: bool, knowledge: Knowledge, engine: RuleEngine
) -> None:
    ctx = patient(
        knowledge, [("rivaroxaban", "planned")], labs={"crcl": crcl}, diagnoses=["atrial_fibrillation"]
    )
    hits = fired(engine.evaluate(ctx), "GEN-WARN-RIVAROXABAN-AF-RENAL-DOSE")
    assert bool(hits) is fires, f"CrCl {crcl}: expected the 15 mg warning {'' if fires else 'not '}to fire"
    if fires:
        assert "15 mg once daily" in hits[0].reason
