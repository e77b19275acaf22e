"""Clinical scores for rule conditions (`calc:` atoms), computed with open-medicine's calculators.

Each function takes a `PatientContext` and returns `(value, missing)`: the score, or `None` with the
facts that are missing (named as rule facts: `age`, `sex`, `weight`, `lab:creatinine` …) so the
engine can ask for them. Nothing here guesses a missing input; booleans that the corpus README
defines as "absent = false" (comorbidities, current drugs) are read as false when not stated.
Called through `PatientView.calc` (`view.py`, cached per evaluation) and `_Evaluator._calc` (`conditions.py`).
"""

from __future__ import annotations

from collections.abc import Callable

from assistant.models import PatientContext

Result = tuple[float | None, list[str]]


def _has(ctx: PatientContext, *ids: str) -> bool:
    return any(ctx.comorbidities.get(i) == "present" or i in ctx.diagnoses for i in ids)


def _lab(ctx: PatientContext, name: str) -> float | None:
    lab = ctx.labs.get(name)
    return lab.value if lab is not None else None


def _current_ids(ctx: PatientContext) -> set[str]:
    out = set(ctx.medications)
    out.update(t.therapy for t in ctx.therapies if t.status == "ongoing")
    return out


def _current_classes(ctx: PatientContext) -> set[str]:
    out: set[str] = set()
    for t in ctx.therapies:
        if t.status == "ongoing":
            out.update(t.classes)
    return out


def cha2ds2_vasc(ctx: PatientContext) -> Result:
    from open_medicine.mcp.calculators.chadsvasc import CHADSVAScParams, calculate_chadsvasc

    stated = _lab(ctx, "cha2ds2_vasc")
    if stated is not None:
        return stated, []  # the clinician's own score stands in for inputs we may not have
    missing = [f for f, v in (("age", ctx.age), ("sex", ctx.sex)) if v is None]
    if missing:
        return None, missing
    params = CHADSVAScParams(
        congestive_heart_failure=_has(ctx, "heart_failure"),
        hypertension=_has(ctx, "hypertension"),
        age=int(ctx.age or 0),
        diabetes=_has(ctx, "diabetes"),
        stroke_tia_thromboembolism=_has(ctx, "stroke_tia", "vte", "pe", "dvt"),
        vascular_disease=_has(ctx, "vascular_disease", "coronary_artery_disease"),
        female_sex=ctx.sex == "female",
    )
    return float(calculate_chadsvasc(params).value), []


def has_bled(ctx: PatientContext) -> Result:
    from open_medicine.mcp.calculators.hasbled import HASBLEDParams, calculate_hasbled

    stated = _lab(ctx, "has_bled")
    if stated is not None:
        return stated, []
    if ctx.age is None:
        return None, ["age"]
    sbp = _lab(ctx, "sbp")
    creat = _lab(ctx, "creatinine")
    classes = _current_classes(ctx)
    current = _current_ids(ctx)
    params = HASBLEDParams(
        # H is *uncontrolled* hypertension (SBP > 160); without a reading we count a hypertension diagnosis,
        # which can only over-state bleeding risk, never hide it.
        hypertension=(sbp > 160) if sbp is not None else _has(ctx, "hypertension"),
        abnormal_renal_function=_has(ctx, "dialysis", "organ_transplant")
        or (creat is not None and creat > 2.26),
        abnormal_liver_function=_has(ctx, "cirrhosis", "liver_disease"),
        stroke=_has(ctx, "stroke_tia"),
        bleeding=_has(ctx, "bleeding_history"),
        labile_inr=False,
        elderly=ctx.age > 65,
        drugs=bool(classes & {"antiplatelet", "NSAID"})
        or bool(current & {"aspirin", "clopidogrel", "ibuprofen"}),
        alcohol=_has(ctx, "alcohol_use"),
    )
    return float(calculate_hasbled(params).value), []


def _creatinine_inputs(ctx: PatientContext, need_weight: bool) -> list[str]:
    missing = []
    if ctx.age is None:
        missing.append("age")
    if ctx.sex is None:
        missing.append("sex")
    if need_weight and ctx.weight_kg is None:
        missing.append("weight")
    if _lab(ctx, "creatinine") is None:
        missing.append("lab:creatinine")
    return missing


# On dialysis the formulae mean nothing and the kidneys' own clearance is below every dosing threshold.
ESKD_CLEARANCE = 10.0


def crcl(ctx: PatientContext) -> Result:
    """Cockcroft-Gault creatinine clearance (mL/min); a stated CrCl wins over the calculation."""
    stated = _lab(ctx, "crcl")
    if stated is not None:
        return stated, []
    if _has(ctx, "dialysis"):
        return ESKD_CLEARANCE, []
    missing = _creatinine_inputs(ctx, need_weight=True)
    if missing:
        return None, missing
    from open_medicine.mcp.calculators.cockcroft_gault import CockcroftGaultParams, calculate_cockcroft_gault

    params = CockcroftGaultParams(
        age=int(ctx.age or 0),
        weight=float(ctx.weight_kg or 0),
        is_female=ctx.sex == "female",
        serum_creatinine=float(_lab(ctx, "creatinine") or 0),
    )
    return float(calculate_cockcroft_gault(params).value), []


def egfr_ckd_epi_2021(ctx: PatientContext) -> Result:
    """CKD-EPI 2021 (race-free) eGFR; a stated eGFR wins over the calculation."""
    stated = _lab(ctx, "egfr")
    if stated is not None:
        return stated, []
    if _has(ctx, "dialysis"):
        return ESKD_CLEARANCE, []
    missing = _creatinine_inputs(ctx, need_weight=False)
    if missing:
        return None, missing
    from open_medicine.mcp.calculators.ckd_epi import CKDEPIParams, calculate_ckd_epi

    params = CKDEPIParams(
        age=int(ctx.age or 0),
        is_female=ctx.sex == "female",
        serum_creatinine=float(_lab(ctx, "creatinine") or 0),
    )
    return float(calculate_ckd_epi(params).value), []


def apixaban_dose_criteria(ctx: PatientContext) -> Result:
    """How many of the label's three dose-reduction criteria are met (age ≥ 80, weight ≤ 60 kg, SCr ≥ 1.5 mg/dL).

    With an input missing the count is only known when the missing criteria cannot change a
    comparison — the engine handles that through `apixaban_dose_bounds`.
    """
    missing = [
        f
        for f, v in (("age", ctx.age), ("weight", ctx.weight_kg), ("lab:creatinine", _lab(ctx, "creatinine")))
        if v is None
    ]
    if missing:
        return None, missing
    from open_medicine.mcp.calculators.apixaban_dosing import ApixabanDosingParams, calculate_apixaban_dosing

    params = ApixabanDosingParams(
        age=int(ctx.age or 0),
        weight_kg=float(ctx.weight_kg or 0),
        serum_creatinine=float(_lab(ctx, "creatinine") or 0),
    )
    return float(calculate_apixaban_dosing(params).value), []


def apixaban_dose_bounds(ctx: PatientContext) -> tuple[int, int]:
    """(criteria surely met, criteria possibly met): lets `>= 2` be decided with one input missing."""
    creat = _lab(ctx, "creatinine")
    checks = [
        None if ctx.age is None else ctx.age >= 80,
        None if ctx.weight_kg is None else ctx.weight_kg <= 60,
        None if creat is None else creat >= 1.5,
    ]
    return sum(1 for c in checks if c), sum(1 for c in checks if c is not False)


CALCULATORS: dict[str, Callable[[PatientContext], Result]] = {
    "cha2ds2_vasc": cha2ds2_vasc,
    "has_bled": has_bled,
    "crcl": crcl,
    "egfr_ckd_epi_2021": egfr_ckd_epi_2021,
    "apixaban_dose_criteria": apixaban_dose_criteria,
}
