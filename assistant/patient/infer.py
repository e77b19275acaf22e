"""Cross-fact inference: what the merged facts imply together, each conclusion left as a note for the clinician.

Fourth step of the patient stage (after `merge`; before `focus`). The derivations are declared here once:
the prostate cancer disease state (`_disease_state`), castration (`castration_of`, also used by the rule engine's
`castration` atom), chronic kidney disease from kidney values (`ckd_from_labs`), and the safety facts' consequences
(pregnancy only for a woman who can be pregnant, diabetes from its type, immunosuppression from its drugs,
CHAARTED volume and presentation, the VTE phase only with VTE).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.knowledge import Lexicon
from assistant.models import PatientContext
from assistant.patient.facts import SafetyFacts, TurnFacts, trimester_of
from assistant.patient.therapies import SENSITIVE_SETTINGS
from assistant.patient.vocab import ClinicalVocab

# Castration-resistant states: defined on castrate testosterone, so castration is maintained in them.
CRPC_STATES = frozenset({"mCRPC", "nmCRPC"})
# Local treatments of the prostate after which a rising PSA is biochemical recurrence.
_LOCAL_TREATMENTS = ("radical_prostatectomy", "salvage_radiotherapy", "radiotherapy")


def castration_of(ctx: PatientContext, lexicon: Lexicon) -> str | None:
    """How castration is maintained, as far as the context says; None when unknown.

    As stated (`ctx.castration`: ADT, orchiectomy, castrate testosterone); else an orchiectomy had; else, in a
    castration-resistant state, ADT (CRPC is defined on castrate testosterone). The extractor records the first
    from the text; the rule engine asks this for its `castration` atom.
    """
    if ctx.castration is not None:
        return ctx.castration
    if any(
        t.status in ("ongoing", "completed", "received") and lexicon.matches(t.therapy, "orchiectomy")
        for t in ctx.therapies
    ):
        return "orchiectomy"
    return implied_castration(ctx.disease_state)


def implied_castration(disease_state: str | None) -> str | None:
    """ADT for a castration-resistant state (CRPC is defined on castrate testosterone), else None."""
    return "ADT" if disease_state in CRPC_STATES else None


def ckd_from_labs(ctx: PatientContext) -> bool:
    """KDIGO: eGFR < 60 or albuminuria (UACR >= 30 mg/g) marks CKD; a clinician quoting either means it."""
    egfr = ctx.labs.get("egfr")
    uacr = ctx.labs.get("uacr")
    return (
        (egfr is not None and egfr.value is not None and egfr.value < 60)
        or (uacr is not None and uacr.value is not None and uacr.value >= 30)
        or ctx.comorbidities.get("albuminuria") == "present"
        or ctx.comorbidities.get("dialysis") == "present"
    )


def infer(
    ctx: PatientContext, facts_all: list[TurnFacts], lexicon: Lexicon, vocab: ClinicalVocab
) -> PatientContext:
    """Cross-fact inferences, each recorded in notes so the clinician sees what was assumed."""
    data = ctx.model_copy(deep=True)
    notes = list(data.notes)
    prostate_drugs = any(
        set(t.classes) & {"ADT", "ARPI", "first_gen_antiandrogen", "PSMA_radioligand"}
        or t.therapy in ("radical_prostatectomy", "salvage_radiotherapy")
        for t in data.therapies
    )
    if (
        (data.disease_state or prostate_drugs)
        and "prostate_cancer" not in data.diagnoses
        and data.comorbidities.get("prostate_cancer") != "absent"
    ):
        data.diagnoses.insert(0, "prostate_cancer")
        data.comorbidities["prostate_cancer"] = "present"
    if "prostate_cancer" in data.diagnoses and data.sex is None:
        data.sex = "male"
    _disease_state(data, facts_all, notes)
    if data.castration is None and implied_castration(data.disease_state) is not None:
        data.castration = implied_castration(data.disease_state)
        notes.append("Castration assumed to be maintained (CRPC is defined on castrate testosterone).")
    if data.disease_state in CRPC_STATES:
        therapies = []
        for t in data.therapies:
            # A line given in the hormone-sensitive setting ("docetaxel for mHSPC") did not fail in CRPC.
            if (
                t.status == "received"
                and set(t.classes) & vocab.line_classes
                and t.setting not in SENSITIVE_SETTINGS
            ):
                notes.append(
                    f"{t.therapy}: outcome not stated; read as progression (a previous line in castration-resistant disease)."
                )
                t = t.model_copy(update={"status": "progressed"})
            therapies.append(t)
        data.therapies = therapies
    if data.comorbidities.get("ckd") is None and ckd_from_labs(data):
        data.comorbidities["ckd"] = "present"
        if "ckd" not in data.diagnoses:
            data.diagnoses.append("ckd")
        notes.append("Chronic kidney disease read from the kidney values given (eGFR < 60 or albuminuria).")
    if (
        any("Planning a pregnancy" in n for n in notes)
        and data.comorbidities.get("planning_pregnancy") is None
    ):
        data.comorbidities["planning_pregnancy"] = "present"
    # "Albuminuria despite lisinopril" means still on it, not a treatment that failed and must not be repeated:
    # progression is a cancer concept.
    fixed = []
    for t in data.therapies:
        if t.status == "progressed" and not (set(t.classes) & vocab.anticancer_classes):
            t = t.model_copy(update={"status": "ongoing"})
        fixed.append(t)
    data.therapies = fixed
    # Medications: what is taken now and is not anticancer treatment.
    meds = []
    for t in data.therapies:
        if (
            t.status == "ongoing"
            and not (set(t.classes) & vocab.anticancer_classes)
            and t.therapy not in meds
        ):
            meds.append(t.therapy)
    data.medications = list(dict.fromkeys(list(ctx.medications) + meds))
    _infer_safety(data, facts_all, lexicon, notes)
    for site, state in data.sites.items():
        if state == "possible":
            notes.append(f"{site.replace('_', ' ')} involvement is uncertain (possible, not confirmed).")
    for b in data.biomarkers:
        if b.result == "vus":
            notes.append(
                f"{b.name}: variant of uncertain significance — not actionable for label indications."
            )
    data.notes = list(dict.fromkeys(notes))
    return data


def _disease_state(data: PatientContext, facts_all: Sequence[TurnFacts], notes: list[str]) -> None:
    """The prostate cancer disease state when no turn named it: castration-resistant or sensitive, metastatic or
    not, or biochemical recurrence (rising PSA after local treatment)."""
    if data.disease_state is not None or "prostate_cancer" not in data.diagnoses:
        return
    castrated = data.castration is not None
    crpc = any(f.castration_resistant for f in facts_all)
    metastatic = next((f.metastatic for f in reversed(facts_all) if f.metastatic is not None), None)
    any_site = any(v == "present" for v in data.sites.values())
    psa = data.labs.get("psa")
    rising = psa is not None and psa.trend == "rising"
    progressing_on_castration = castrated and (
        rising or any(t.status == "progressed" and "ADT" in t.classes for t in data.therapies)
    )
    if crpc or progressing_on_castration:
        if any_site or metastatic:
            data.disease_state = "mCRPC"
            notes.append("Disease state read as mCRPC (castration-resistant with metastases).")
        elif metastatic is False:
            data.disease_state = "nmCRPC"
            notes.append("Disease state read as nmCRPC (castration-resistant, no metastases stated).")
        else:
            notes.append("Castration-resistant, but whether there are metastases was not stated.")
    elif any_site or metastatic:
        data.disease_state = "mHSPC"
        notes.append("Disease state read as mHSPC (metastatic, not stated to be castration-resistant).")
    elif (
        rising
        and not castrated
        and any(t.therapy in _LOCAL_TREATMENTS and t.status != "planned" for t in data.therapies)
    ):
        data.disease_state = "BCR"
        notes.append(
            "Disease state read as biochemical recurrence (rising PSA after local treatment, no metastases stated)."
        )


_IMMUNOSUPPRESSANT = re.compile(r"immunosuppress|calcineurin|antimetabolite_immuno|mTOR_inhibitor", re.I)


def _infer_safety(
    data: PatientContext, facts_all: Sequence[SafetyFacts], lexicon: Lexicon, notes: list[str]
) -> None:
    """Cross-fact inferences for the safety facts; each one leaves a note so the clinician sees it."""
    comorb = data.comorbidities

    def add_condition(cid: str, why: str) -> None:
        if comorb.get(cid) is None:
            comorb[cid] = "present"
            notes.append(why)

    # Pregnancy can only be about a woman of child-bearing age.
    if data.sex == "male":
        if (
            data.pregnant
            or data.lactating
            or data.postpartum
            or any(n.startswith("Pregnancy is possible") for n in notes)
        ):
            notes.append("Pregnancy/lactation statements ignored: the patient is male.")
        notes[:] = [n for n in notes if not n.startswith(("Pregnancy is possible", "Breastfeeding status"))]
        data.pregnant = False if data.pregnant else data.pregnant
        data.gestational_weeks = data.trimester = None
        data.lactating = None if data.lactating else data.lactating
        data.postpartum = None if data.postpartum else data.postpartum
    elif data.pregnant is None and data.sex == "female" and data.age is not None and data.age >= 55:
        data.pregnant = False
        notes.append(f"Not pregnant assumed (age {data.age}).")
    elif data.pregnant is None and comorb.get("menopause") == "present":
        data.pregnant = False
        notes.append("Not pregnant (postmenopausal).")
    if data.pregnant is None and data.diabetes_type == "gestational" and data.sex != "male":
        data.pregnant = True
        notes.append("Pregnant assumed from current gestational diabetes.")
    if data.pregnant and data.gestational_weeks is not None and data.trimester is None:
        data.trimester = trimester_of(data.gestational_weeks)  # type: ignore[assignment]
    if data.pregnant and data.trimester is None:
        notes.append("Pregnant; gestational age not stated.")
    # Diabetes: every stated type is still diabetes.
    if data.diabetes_type in ("type1", "type2", "other"):
        add_condition("diabetes", "Diabetes recorded from the stated type.")
        if "diabetes" not in data.diagnoses and comorb.get("diabetes") == "present":
            data.diagnoses.append("diabetes")
    # Liver: a Child-Pugh class means chronic liver disease, usually cirrhosis.
    if data.child_pugh is not None:
        add_condition("liver_disease", f"Liver disease recorded from Child-Pugh class {data.child_pugh}.")
    # Transplant / immunosuppressive drugs → immunosuppression (an SGLT2i, live-vaccine … label matter).
    on_immuno = [
        t.therapy for t in data.therapies
        if t.status in ("ongoing", "received") and any(_IMMUNOSUPPRESSANT.search(c) for c in t.classes)
    ]  # fmt: skip
    if on_immuno and comorb.get("immunosuppression") is None:
        comorb["immunosuppression"] = "present"
        notes.append("Immunosuppression recorded from current medication (" + ", ".join(on_immuno) + ").")
    if comorb.get("organ_transplant") == "present" and comorb.get("immunosuppression") is None:
        comorb["immunosuppression"] = "present"
        notes.append("Organ transplant recipient: maintenance immunosuppression assumed — please confirm.")
    # Prostate cancer facts only mean something for prostate cancer.
    if "prostate_cancer" in data.diagnoses:
        _infer_prostate(data, facts_all, notes)
    else:
        data.disease_volume = data.presentation = data.metastasis_imaging = None
    # Urinary infection site only for a urinary infection.
    if data.infection_site is not None and comorb.get("uti") not in ("present", "possible"):
        comorb["uti"] = "present"
        if "uti" not in data.diagnoses:
            data.diagnoses.append("uti")
    # VTE phase only for VTE.
    if not ({"vte", "dvt", "pe"} & {c for c, v in comorb.items() if v in ("present", "possible")}):
        data.care_phase = None
        # "30 years ago", "25 years on insulin": a duration read as a VTE phase means nothing without VTE.
        notes[:] = [n for n in notes if not n.startswith("Treatment phase read as")]


def _infer_prostate(data: PatientContext, facts_all: Sequence[SafetyFacts], notes: list[str]) -> None:
    local = any(f.prior_local_therapy for f in facts_all) or any(
        t.therapy in _LOCAL_TREATMENTS and t.status != "planned" for t in data.therapies
    )
    metastatic = data.disease_state in ("mHSPC", "mCRPC") or any(v == "present" for v in data.sites.values())
    # Imaging: trial and label definitions of M0 / M1 rest on conventional imaging (CT, bone scan).
    if data.metastasis_imaging == "psma_pet_only":
        if data.disease_state == "mCRPC":
            data.disease_state = "nmCRPC"
            notes[:] = [n for n in notes if not n.startswith("Disease state read as mCRPC")]
            notes.append(
                "Metastases seen on PSMA PET only with negative conventional imaging: read as nmCRPC "
                "(trials and labels define metastatic disease on CT/bone scan)."
            )
        elif (
            data.disease_state is None
            and data.castration is not None
            and any(t.status == "progressed" for t in data.therapies)
        ):
            data.disease_state = "nmCRPC"
            notes.append(
                "Castration-resistant with PSMA-PET-only lesions: read as nmCRPC (conventional imaging negative)."
            )
        elif data.disease_state == "mHSPC":
            notes.append(
                "Metastases seen on PSMA PET only: trials defining mHSPC used conventional imaging — "
                "the evidence for metastatic treatment may not apply."
            )
    if data.disease_state not in ("mHSPC", "mCRPC") and not metastatic:
        return
    # Volume by CHAARTED: visceral metastases, or >= 4 bone lesions with >= 1 beyond the spine and pelvis.
    if data.disease_volume is None and data.disease_state in ("mHSPC", "mCRPC"):
        count = next((f.bone_lesions for f in reversed(facts_all) if f.bone_lesions is not None), None)
        beyond = next(
            (f.bone_beyond_axial for f in reversed(facts_all) if f.bone_beyond_axial is not None), None
        )
        if data.sites.get("visceral") == "present":
            data.disease_volume = "high"
            notes.append("High volume by CHAARTED (visceral metastases).")
        elif count is not None and count >= 4 and beyond:
            data.disease_volume = "high"
            notes.append(
                f"High volume by CHAARTED ({count} bone lesions, at least one beyond the spine/pelvis)."
            )
        elif count is not None and count >= 4 and beyond is False:
            data.disease_volume = "low"
            notes.append(
                f"Low volume by CHAARTED ({count} bone lesions, all in the spine/pelvis; no visceral disease stated)."
            )
        elif count is not None and count >= 4:
            notes.append(
                f"{count} bone lesions: whether one lies beyond the spine/pelvis decides CHAARTED volume — not stated."
            )
        elif count is not None and data.sites.get("visceral") != "possible":
            data.disease_volume = "low"
            notes.append(f"Low volume by CHAARTED ({count} bone lesion(s), no visceral metastases stated).")
    # Presentation: metastases after earlier radical local treatment are metachronous.
    if data.presentation is None and data.disease_state in ("mHSPC", "mCRPC") and local:
        data.presentation = "metachronous"
        notes.append(
            "Metachronous presentation assumed (metastases after earlier local treatment of the prostate)."
        )
