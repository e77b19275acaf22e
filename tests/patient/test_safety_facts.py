"""Phrasing tests for the facts that change drug safety (assistant/patient_facts.py through extract_context).

Many phrasings per fact, negations, multi-turn overrides, and "no change" cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge import load_lexicon
from assistant.models import PatientContext
from assistant.patient import describe, extract_context, load_clinical_vocab, trimester_of

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def ctx_of(text: str, lexicon, history=None) -> PatientContext:
    return extract_context(text, history=history, lexicon=lexicon)


def allergy(ctx: PatientContext, substance: str):
    return next((a for a in ctx.allergy_details if a.substance == substance), None)


# ------------------------------------------------------------------ vocabulary is data
def test_condition_vocabulary_comes_from_clinical_yaml():
    vocab = load_clinical_vocab(str(CORPUS))
    ids = {cid for cid, _ in vocab.conditions}
    assert {"organ_transplant", "immunosuppression", "polycystic_kidney_disease", "active_bleeding"} <= ids
    assert "prostate_cancer" in vocab.primary and "organ_transplant" not in vocab.primary
    import assistant.patient as patient

    assert not hasattr(patient, "_CONDITIONS") and not hasattr(patient, "_PRIMARY"), (
        "no Python copy of the vocabulary"
    )


def test_a_new_condition_in_a_corpus_copy_is_extracted(tmp_path, lexicon):
    """A condition id added to clinical.yaml is recognised with no code change."""
    import shutil

    from assistant.patient import PatientExtractor

    (tmp_path / "lexicon").mkdir()
    shutil.copy(CORPUS / "lexicon" / "therapies.yaml", tmp_path / "lexicon" / "therapies.yaml")
    text = (CORPUS / "lexicon" / "clinical.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "conditions:\n", "conditions:\n  - id: porphyria\n    patterns: ['porphyri(?:a|c)']\n", 1
    )
    (tmp_path / "lexicon" / "clinical.yaml").write_text(text, encoding="utf-8")
    facts = PatientExtractor(load_lexicon(tmp_path), str(tmp_path)).extract_turn(
        "Acute intermittent porphyria, CAP."
    )
    assert facts.diagnoses.get("porphyria") == "present"


# ------------------------------------------------------------------ pregnancy
@pytest.mark.parametrize(
    ("text", "weeks", "trimester"),
    [
        ("A 28-year-old woman, 28 weeks pregnant, with a DVT.", 28, 3),
        ("G2P1 at 39 weeks with dysuria.", 39, 3),
        ("34/40 with a proximal DVT.", 34, 3),
        ("Pregnant woman at 12 weeks gestation with hypertension.", 12, 1),
        ("She is 20 weeks pregnant; UTI.", 20, 2),
        ("Gestational age 27+6 weeks, cystitis.", 27.9, 2),
        ("Pregnant, GA 14 weeks.", 14, 2),
    ],
)
def test_gestational_weeks_and_trimester(text, weeks, trimester, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.pregnant is True
    assert ctx.gestational_weeks == pytest.approx(weeks, abs=0.05)
    assert ctx.trimester == trimester


@pytest.mark.parametrize(
    ("text", "trimester"),
    [
        ("Pregnant, in her third trimester, with chronic hypertension.", 3),
        ("Second-trimester pregnancy with a PE.", 2),
        ("Term pregnancy with cystitis.", 3),
        ("At term, dysuria and frequency, pregnant.", 3),
    ],
)
def test_trimester_stated_without_weeks(text, trimester, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.pregnant is True and ctx.trimester == trimester
    assert ctx.gestational_weeks is None, "weeks are set only when stated"


def test_term_is_noted(lexicon):
    ctx = ctx_of("Term pregnancy, UTI.", lexicon)
    assert any("At term" in n for n in ctx.notes)


@pytest.mark.parametrize("weeks", [0.5 + i for i in range(2, 42)])
def test_trimester_boundaries(weeks):
    assert trimester_of(weeks) == (1 if weeks < 14 else 2 if weeks < 28 else 3)


@pytest.mark.parametrize(
    "text",
    [
        "Postpartum woman with a DVT.",
        "2 weeks after delivery, new PE.",
        "She delivered 10 days ago; DVT.",
        "Recently gave birth, now cystitis.",
    ],
)
def test_postpartum(text, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.postpartum is True
    assert ctx.pregnant is False


def test_delivery_months_ago_is_not_postpartum(lexicon):
    ctx = ctx_of("She gave birth 5 months ago and has a DVT.", lexicon)
    assert ctx.postpartum is False and ctx.pregnant is False


@pytest.mark.parametrize(
    ("text", "lactating"),
    [
        ("She is breastfeeding; UTI.", True),
        ("Breast-feeding mother with cystitis.", True),
        ("Lactating woman with a DVT.", True),
        ("Nursing her 3-month-old, has hypertension.", True),
        ("Not breastfeeding. Hypertension.", False),
        ("She stopped breastfeeding last month.", False),
        ("Formula feeding her baby; DVT.", False),
        ("Nursing home resident with UTI.", None),
    ],
)
def test_lactation(text, lactating, lexicon):
    assert ctx_of(text, lexicon).lactating is lactating


@pytest.mark.parametrize(
    "text",
    [
        "30-year-old woman, pregnancy test negative, with a PE.",
        "Not pregnant. AF.",
        "Negative urine pregnancy test, UTI.",
        "Non-pregnant woman with cystitis.",
        "Beta-hCG negative; DVT.",
    ],
)
def test_pregnancy_negations(text, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.pregnant is False
    assert ctx.gestational_weeks is None and ctx.trimester is None


def test_negation_scope_stops_at_a_closed_finding(lexicon):
    ctx = ctx_of("32-year-old woman, not breastfeeding, pregnancy test negative, PE.", lexicon)
    assert ctx.comorbidities.get("vte") == "present"
    assert ctx.lactating is False and ctx.pregnant is False


@pytest.mark.parametrize(
    "text",
    [
        "60-year-old woman with AF.",
        "Postmenopausal woman with hypertension.",
    ],
)
def test_older_or_postmenopausal_women_are_not_pregnant(text, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.pregnant is False
    assert any("Not pregnant" in n for n in ctx.notes), "the assumption is shown"


@pytest.mark.parametrize(
    "text",
    [
        "A 68-year-old man with AF; his wife is pregnant.",
        "65-year-old man with hypertension. Could he be pregnant?",
        "70M with a DVT.",
    ],
)
def test_a_man_is_never_pregnant(text, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.pregnant is not True
    assert ctx.gestational_weeks is None and ctx.trimester is None and not ctx.lactating


def test_possible_pregnancy_is_not_a_pregnancy(lexicon):
    ctx = ctx_of("28-year-old woman with hypertension, possibly pregnant.", lexicon)
    assert ctx.pregnant is None
    assert any("possible" in n.lower() for n in ctx.notes)


def test_previous_pregnancy_is_not_current(lexicon):
    ctx = ctx_of("35-year-old woman with pre-eclampsia in a previous pregnancy, now hypertension.", lexicon)
    assert ctx.pregnant is not True


def test_pregnancy_multi_turn(lexicon):
    ctx = ctx_of("32 weeks pregnant now.", lexicon, history=["28 weeks pregnant with a DVT."])
    assert ctx.gestational_weeks == 32 and ctx.trimester == 3
    assert any(c.field == "gestational_weeks" and c.old == "28.0" for c in ctx.changes)
    ctx = ctx_of("Now in her third trimester.", lexicon, history=["20 weeks pregnant, hypertension."])
    assert ctx.trimester == 3 and ctx.gestational_weeks is None, "stale weeks are dropped"
    ctx = ctx_of("She delivered yesterday.", lexicon, history=["39 weeks pregnant with a DVT."])
    assert ctx.pregnant is False and ctx.postpartum is True
    assert ctx.gestational_weeks is None and ctx.trimester is None
    assert any(c.field == "pregnant" for c in ctx.changes)


# ------------------------------------------------------------------ allergies
@pytest.mark.parametrize(
    ("text", "substance", "severity", "reaction"),
    [
        ("Outpatient CAP, penicillin allergy (anaphylaxis).", "penicillin", "severe", "anaphylaxis"),
        ("Allergic to amoxicillin — hives. CAP.", "amoxicillin", "non-severe", "urticaria"),
        ("PCN allergy: rash as a child.", "penicillin", "non-severe", "rash"),
        ("Sulfa allergy, cystitis.", "sulfonamide", "unknown", ""),
        ("Severe penicillin allergy and CAP.", "penicillin", "severe", ""),
        ("History of angioedema with lisinopril; hypertension.", "lisinopril", "severe", "angioedema"),
        ("SJS from Bactrim years ago.", "trimethoprim_sulfamethoxazole", "severe", "SJS/TEN"),
        ("Penicillin makes her nauseous.", "penicillin", "intolerance", "nausea"),
        ("Allergies: PCN (anaphylaxis), codeine (nausea).", "codeine", "intolerance", "nausea"),
        ("Allergic to cephalosporins (DRESS).", "cephalosporin", "severe", "DRESS"),
        ("Penicillin allergy with itching only.", "penicillin", "non-severe", "itch"),
        ("Allergic to penicillin: throat swelling.", "penicillin", "severe", "angioedema"),
    ],
)
def test_allergy_reaction_and_severity(text, substance, severity, reaction, lexicon):
    ctx = ctx_of(text, lexicon)
    assert substance in ctx.allergies, ctx.allergies
    a = allergy(ctx, substance)
    assert a is not None and a.severity == severity
    if reaction:
        assert reaction in a.reaction


def test_allergy_classes(lexicon):
    ctx = ctx_of("Allergic to amoxicillin (rash).", lexicon)
    assert "penicillin" in allergy(ctx, "amoxicillin").classes
    ctx = ctx_of("Penicillin allergy.", lexicon)
    a = allergy(ctx, "penicillin")
    assert a.classes[0] == "penicillin", "a class substance lists itself first"
    ctx = ctx_of("Sulfa allergy.", lexicon)
    assert "sulfonamide" in allergy(ctx, "sulfonamide").classes


def test_several_allergies_keep_their_own_reactions(lexicon):
    ctx = ctx_of("Allergies: PCN (anaphylaxis), codeine (nausea).", lexicon)
    assert allergy(ctx, "penicillin").severity == "severe"
    assert allergy(ctx, "codeine").severity == "intolerance"
    ctx = ctx_of("Allergic to cephalosporins (anaphylaxis) and shellfish.", lexicon)
    assert ctx.allergies == ["cephalosporin", "shellfish"]
    assert allergy(ctx, "shellfish").severity == "unknown"


@pytest.mark.parametrize(
    "text",
    [
        "No known drug allergies. CAP.",
        "NKDA, 70M with CAP.",
        "Denies penicillin allergy. CAP.",
        "Not allergic to penicillin; CAP.",
        "Denies any drug allergies.",
        "No allergies. Cystitis.",
    ],
)
def test_no_allergy(text, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.allergies == [] and ctx.allergy_details == []


def test_allergy_words_are_not_allergens(lexicon):
    for text in ("Sulfa allergy, cystitis.", "Severe penicillin allergy and CAP."):
        ctx = ctx_of(text, lexicon)
        assert "cystitis" not in ctx.allergies and "cap" not in ctx.allergies


def test_an_allergen_is_not_a_treatment(lexicon):
    ctx = ctx_of("History of angioedema with lisinopril. Allergic to amoxicillin. CAP.", lexicon)
    assert not any(t.therapy in ("lisinopril", "amoxicillin") for t in ctx.therapies)


def test_allergy_multi_turn(lexicon):
    ctx = ctx_of("NKDA.", lexicon, history=["Penicillin allergy. CAP."])
    assert ctx.allergies == []
    assert any(c.field == "allergy:penicillin" and c.new == "absent" for c in ctx.changes)
    ctx = ctx_of(
        "The penicillin allergy was de-labelled after a negative challenge.",
        lexicon,
        history=["Penicillin allergy."],
    )
    assert ctx.allergies == []
    ctx = ctx_of("It was anaphylaxis.", lexicon, history=["Penicillin allergy."])
    assert ctx.allergies == ["penicillin"], "a later turn without a substance keeps the allergy"
    ctx = ctx_of("Penicillin allergy: anaphylaxis.", lexicon, history=["Penicillin allergy (rash)."])
    assert allergy(ctx, "penicillin").severity == "severe"
    assert any(c.field == "allergy:penicillin" for c in ctx.changes)
    ctx = ctx_of("He has a penicillin allergy.", lexicon, history=["Penicillin allergy (anaphylaxis)."])
    assert allergy(ctx, "penicillin").reaction == "anaphylaxis", "a bare restatement keeps the reaction"


def test_uncertain_allergy_is_kept_with_a_note(lexicon):
    ctx = ctx_of("Possible penicillin allergy.", lexicon)
    assert ctx.allergies == ["penicillin"]
    assert any("uncertain" in n for n in ctx.notes)


# ------------------------------------------------------------------ diabetes type
@pytest.mark.parametrize(
    ("text", "dtype"),
    [
        ("Type 1 diabetes with CKD, eGFR 50.", "type1"),
        ("T1DM, CKD stage 3.", "type1"),
        ("Type I diabetes on an insulin pump.", "type1"),
        ("LADA on insulin.", "type1"),
        ("Type 2 diabetes, eGFR 45.", "type2"),
        ("T2DM on metformin.", "type2"),
        ("Type II diabetes mellitus.", "type2"),
        ("Non-insulin-dependent diabetes.", "type2"),
        ("Gestational diabetes at 30 weeks.", "gestational"),
        ("MODY with hypertension.", "other"),
    ],
)
def test_diabetes_type(text, dtype, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.diabetes_type == dtype
    if dtype != "gestational":
        assert ctx.comorbidities.get("diabetes") == "present", "the generic condition stays set"


def test_diabetes_type_negatives(lexicon):
    assert ctx_of("Diabetes on metformin.", lexicon).diabetes_type is None, "type not stated"
    assert ctx_of("No diabetes. Hypertension.", lexicon).diabetes_type is None
    ctx = ctx_of("History of gestational diabetes; now type 2 diabetes at 55.", lexicon)
    assert ctx.diabetes_type == "type2" and ctx.pregnant is not True


def test_gestational_diabetes_means_pregnant(lexicon):
    ctx = ctx_of("28-year-old woman with gestational diabetes.", lexicon)
    assert ctx.pregnant is True


def test_diabetes_type_multi_turn(lexicon):
    ctx = ctx_of("Sorry, it is type 1 diabetes.", lexicon, history=["Type 2 diabetes with CKD."])
    assert ctx.diabetes_type == "type1"
    assert any(c.field == "diabetes_type" for c in ctx.changes)


# ------------------------------------------------------------------ transplant, immunosuppression, new conditions
@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("Kidney transplant recipient with type 2 diabetes.", "organ_transplant"),
        ("Renal transplant in 2018; CKD.", "organ_transplant"),
        ("Post-transplant, on tacrolimus.", "organ_transplant"),
        ("Immunosuppressed patient with CAP.", "immunosuppression"),
        ("On immunosuppressants for lupus nephritis.", "immunosuppression"),
        ("ADPKD with eGFR 40.", "polycystic_kidney_disease"),
        ("Polycystic kidney disease and hypertension.", "polycystic_kidney_disease"),
        ("Active GI bleeding, AF.", "active_bleeding"),
        ("Myasthenia gravis and CAP.", "myasthenia_gravis"),
    ],
)
def test_safety_conditions(text, condition, lexicon):
    assert ctx_of(text, lexicon).comorbidities.get(condition) == "present"


def test_transplant_and_immunosuppressants(lexicon):
    ctx = ctx_of(
        "Kidney transplant recipient on tacrolimus and mycophenolate, type 2 diabetes and CKD.", lexicon
    )
    assert ctx.comorbidities.get("organ_transplant") == "present"
    assert ctx.comorbidities.get("immunosuppression") == "present"
    assert {"tacrolimus", "mycophenolate"} <= set(ctx.medications)
    assert any("mmunosuppression" in n for n in ctx.notes)


def test_transplant_alone_assumes_immunosuppression_with_a_note(lexicon):
    ctx = ctx_of("Kidney transplant recipient with CKD.", lexicon)
    assert ctx.comorbidities.get("immunosuppression") == "present"
    assert any("assumed" in n for n in ctx.notes)


def test_no_transplant(lexicon):
    ctx = ctx_of("No history of transplant; CKD.", lexicon)
    assert ctx.comorbidities.get("organ_transplant") != "present"
    assert ctx.comorbidities.get("immunosuppression") is None


# ------------------------------------------------------------------ infection site
@pytest.mark.parametrize(
    ("text", "site"),
    [
        ("Dysuria and frequency without fever.", "cystitis"),
        ("Uncomplicated cystitis in a 30-year-old woman.", "cystitis"),
        ("Lower UTI, afebrile.", "cystitis"),
        ("Dysuria and frequency; afebrile, no flank pain.", "cystitis"),
        ("Fever, flank pain and dysuria.", "pyelonephritis"),
        ("Pyelonephritis in a 40-year-old woman.", "pyelonephritis"),
        ("UTI with CVA tenderness and rigors.", "pyelonephritis"),
        ("Upper UTI.", "pyelonephritis"),
        ("UTI with a temperature of 38.6 and loin pain.", "pyelonephritis"),
        ("Urosepsis.", "urosepsis"),
        ("UTI, hypotensive and septic.", "urosepsis"),
    ],
)
def test_infection_site(text, site, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.infection_site == site
    assert ctx.comorbidities.get("uti") == "present"


@pytest.mark.parametrize(
    "text",
    [
        "Pneumonia with fever.",
        "Fever and cough, CAP.",
        "AF, no UTI symptoms.",
    ],
)
def test_fever_without_a_urinary_infection_is_not_pyelonephritis(text, lexicon):
    assert ctx_of(text, lexicon).infection_site is None


def test_cva_tenderness_is_not_a_stroke(lexicon):
    ctx = ctx_of("UTI with CVA tenderness.", lexicon)
    assert ctx.comorbidities.get("stroke_tia") is None


def test_infection_site_follow_up_upgrades(lexicon):
    ctx = ctx_of("Now she has flank pain and a fever of 38.9.", lexicon, history=["Cystitis with dysuria."])
    assert ctx.infection_site == "pyelonephritis"
    assert any(c.field == "infection_site" for c in ctx.changes)
    ctx = ctx_of("No fever.", lexicon, history=["Cystitis with dysuria."])
    assert ctx.infection_site == "cystitis"


# ------------------------------------------------------------------ liver
@pytest.mark.parametrize(
    ("text", "lab", "multiple"),
    [
        ("mCRPC with bilirubin 2.4 x ULN.", "bilirubin", 2.4),
        ("Bilirubin 2.4 × ULN.", "bilirubin", 2.4),
        ("AST 3x ULN.", "ast", 3.0),
        ("ALT 2.5 times the upper limit of normal.", "alt", 2.5),
        ("Bilirubin 2.4 mg/dL (ULN 1.2).", "bilirubin", 2.0),
        ("AST 120 U/L (ULN 40).", "ast", 3.0),
        ("Transaminases 2x ULN.", "alt", 2.0),
        ("ALP 3 times ULN.", "alp", 3.0),
    ],
)
def test_uln_multiples(text, lab, multiple, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.labs[lab].uln_multiple == pytest.approx(multiple)


def test_a_multiple_is_not_read_as_units(lexicon):
    lab = ctx_of("ALT 2.5 times the upper limit of normal.", lexicon).labs["alt"]
    assert lab.value is None, "2.5 x ULN is not 2.5 U/L"


@pytest.mark.parametrize(
    ("text", "lab", "value"),
    [("Bilirubin 2.4.", "bilirubin", 2.4), ("AST 95.", "ast", 95), ("ALP 300.", "alp", 300)],
)
def test_absolute_liver_values_have_no_multiple(text, lab, value, lexicon):
    v = ctx_of(text, lexicon).labs[lab]
    assert v.value == pytest.approx(value) and v.uln_multiple is None


@pytest.mark.parametrize(
    ("text", "cp"),
    [
        ("Cirrhosis, Child-Pugh B, AF.", "B"),
        ("Child-Pugh class C cirrhosis.", "C"),
        ("CP-A cirrhosis.", "A"),
        ("Child Pugh A.", "A"),
        ("Child-Pugh score 8.", "B"),
        ("Child-Pugh score 11, ascites.", "C"),
    ],
)
def test_child_pugh(text, cp, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.child_pugh == cp
    assert ctx.comorbidities.get("liver_disease") == "present"


def test_cirrhosis_without_class(lexicon):
    ctx = ctx_of("Cirrhosis and AF.", lexicon)
    assert ctx.child_pugh is None and ctx.comorbidities.get("cirrhosis") == "present"


# ------------------------------------------------------------------ prostate
def test_prior_local_therapy_is_received(lexicon):
    for text, tid in [
        ("Radical radiotherapy to the prostate in 2019; now mHSPC.", "radiotherapy"),
        ("Prior EBRT; now bone metastases.", "radiotherapy"),
        ("mHSPC after prostatectomy.", "radical_prostatectomy"),
        ("Post-RP, PSA rising.", "radical_prostatectomy"),
    ]:
        ctx = ctx_of(text, lexicon)
        assert any(t.therapy == tid and t.status != "planned" for t in ctx.therapies), text


@pytest.mark.parametrize(
    ("text", "volume"),
    [
        ("High-volume mHSPC.", "high"),
        ("Low volume mHSPC.", "low"),
        ("mHSPC after prostatectomy, 5 bone mets including rib and femur.", "high"),
        ("De novo mHSPC with visceral metastases.", "high"),
        ("mHSPC with liver metastases.", "high"),
        ("mHSPC with 2 bone lesions.", "low"),
        ("mHSPC, 6 bone metastases in the spine and pelvis only.", "low"),
        ("Oligometastatic hormone-sensitive prostate cancer with 3 bone metastases.", "low"),
    ],
)
def test_disease_volume(text, volume, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.disease_volume == volume


def test_volume_unknown_when_location_is_not_stated(lexicon):
    ctx = ctx_of("mHSPC with 6 bone metastases.", lexicon)
    assert ctx.disease_volume is None
    assert any("CHAARTED" in n for n in ctx.notes)


def test_volume_inference_is_noted(lexicon):
    ctx = ctx_of("mHSPC, 5 bone mets including rib and femur.", lexicon)
    assert any("CHAARTED" in n for n in ctx.notes)


def test_high_volume_centre_is_not_volume(lexicon):
    assert ctx_of("Seen at a high-volume centre; AF.", lexicon).disease_volume is None


@pytest.mark.parametrize(
    ("text", "presentation"),
    [
        ("De novo mHSPC.", "de_novo"),
        ("Synchronous metastatic hormone-sensitive prostate cancer.", "de_novo"),
        ("Metastatic at diagnosis: prostate cancer with bone metastases.", "de_novo"),
        ("Metachronous mHSPC.", "metachronous"),
        ("Relapsed after prostatectomy with bone metastases; mHSPC.", "metachronous"),
        ("Radical radiotherapy in 2019, now mHSPC with bone metastases.", "metachronous"),
    ],
)
def test_presentation(text, presentation, lexicon):
    assert ctx_of(text, lexicon).presentation == presentation


def test_psma_only_crpc_is_nmcrpc(lexicon):
    for text in (
        "CRPC on ADT: PSMA PET shows 2 nodes, CT and bone scan negative.",
        "mCRPC, PSMA-only disease. Next treatment?",
        "Castration-resistant prostate cancer; lesions only seen on PSMA PET, conventional imaging negative.",
    ):
        ctx = ctx_of(text, lexicon)
        assert ctx.metastasis_imaging == "psma_pet_only", text
        assert ctx.disease_state == "nmCRPC", text


def test_psma_only_note_explains(lexicon):
    ctx = ctx_of("mCRPC, PSMA-only disease.", lexicon)
    assert any("conventional imaging" in n or "CT/bone scan" in n for n in ctx.notes)


def test_conventional_imaging_keeps_mcrpc(lexicon):
    ctx = ctx_of("mCRPC; bone scan shows new metastases.", lexicon)
    assert ctx.metastasis_imaging == "conventional" and ctx.disease_state == "mCRPC"


def test_prostate_facts_need_prostate_cancer(lexicon):
    ctx = ctx_of("High-volume centre, de novo AF.", lexicon)
    assert ctx.disease_volume is None and ctx.presentation is None


# ------------------------------------------------------------------ care phase
@pytest.mark.parametrize(
    ("text", "phase"),
    [
        ("3 months into apixaban for an unprovoked PE, should we continue?", "extended"),
        ("Extended-phase anticoagulation after unprovoked DVT: which dose?", "extended"),
        ("After 6 months of treatment for a DVT, what now?", "extended"),
        ("Long-term anticoagulation for recurrent VTE.", "extended"),
        ("Indefinite anticoagulation after a second PE?", "extended"),
        ("Newly diagnosed DVT, starting treatment.", "initial"),
        ("Acute PE in a 50-year-old man. Which anticoagulant?", "initial"),
        ("PE 2 weeks ago, on rivaroxaban.", "initial"),
    ],
)
def test_care_phase(text, phase, lexicon):
    assert ctx_of(text, lexicon).care_phase == phase


def test_care_phase_only_for_vte(lexicon):
    ctx = ctx_of("AF, 3 months into apixaban, should we continue?", lexicon)
    assert ctx.care_phase is None
    assert any(t.therapy == "apixaban" and t.status == "ongoing" for t in ctx.therapies)


def test_care_phase_multi_turn(lexicon):
    ctx = ctx_of(
        "It is now 6 months later: should we extend?", lexicon, history=["Acute PE, starting apixaban."]
    )
    assert ctx.care_phase == "extended"
    assert any(c.field == "care_phase" for c in ctx.changes)


# ------------------------------------------------------------------ declined options
@pytest.mark.parametrize(
    ("text", "declined"),
    [
        ("mCRPC after abiraterone; declines chemotherapy. What next?", "chemotherapy"),
        ("Refuses docetaxel. mCRPC after enzalutamide.", "docetaxel"),
        ("He does not want chemo.", "chemotherapy"),
        ("She is unwilling to take warfarin. AF.", "warfarin"),
        ("Wants to avoid statins.", "statin"),
    ],
)
def test_declined(text, declined, lexicon):
    ctx = ctx_of(text, lexicon)
    assert declined in ctx.declined


def test_a_refused_drug_is_not_a_received_one(lexicon):
    ctx = ctx_of("mCRPC after enzalutamide; refuses docetaxel.", lexicon)
    assert not any(t.therapy == "docetaxel" for t in ctx.therapies)


def test_unmappable_refusals_and_preferences_are_notes(lexicon):
    ctx = ctx_of("Does not want injections; prefers oral therapy. AF.", lexicon)
    assert ctx.declined == []
    assert any("injections" in n for n in ctx.notes)
    assert any("oral" in n for n in ctx.notes)


def test_declined_multi_turn(lexicon):
    ctx = ctx_of(
        "He is now willing to have chemotherapy.", lexicon, history=["mCRPC, declines chemotherapy."]
    )
    assert "chemotherapy" not in ctx.declined
    assert any(c.field == "declined:chemotherapy" for c in ctx.changes)


# ------------------------------------------------------------------ describe
def test_describe_mentions_the_new_facts(lexicon):
    ctx = ctx_of("28 weeks pregnant, penicillin allergy (anaphylaxis), type 1 diabetes, DVT.", lexicon)
    line = describe(ctx)
    assert "pregnant(28w,T3)" in line and "penicillin(anaphylaxis)" in line and "diabetes_type=type1" in line


@pytest.mark.parametrize(
    ("text", "present", "absent"),
    [
        ("HBsAg positive, HBV DNA undetectable.", {"hepatitis_b"}, set()),
        ("Anti-HBc positive, HBsAg negative.", {"hepatitis_b"}, set()),
        ("Hepatitis B and C serology are negative.", set(), {"hepatitis_b", "liver_disease"}),
        ("Hepatitis B surface antigen negative and surface antibody positive.", set(), {"hepatitis_b", "liver_disease"}),
        ("negative hepatitis serology", set(), {"liver_disease"}),
        ("She had hepatitis B vaccination.", set(), {"liver_disease", "hepatitis_b"}),
        ("chronic hepatitis C with cirrhosis", {"liver_disease", "cirrhosis"}, set()),
        ("She has lupus on hydroxychloroquine.", {"autoimmune_disease"}, set()),
        ("He has Crohn's disease in remission.", {"autoimmune_disease"}, set()),
        ("No history of autoimmune disease.", set(), {"autoimmune_disease"}),
    ],
)
def test_hepatitis_b_liver_and_autoimmune_facts(text, present, absent):
    """Facts label checks read (rituximab/obinutuzumab HBV reactivation, checkpoint inhibitors and autoimmune
    disease, liver limits): a serology result or a vaccine is not a disease; a negated one is absent."""
    from assistant.patient import extract_context

    com = extract_context(text).comorbidities
    assert all(com.get(c) == "present" for c in present), com
    assert all(com.get(c) != "present" for c in absent), com


@pytest.mark.parametrize("kind", ["frameshift", "nonsense", "truncating", "splice-site"])
def test_a_variant_kind_is_a_pathogenic_result(kind):
    from assistant.patient import extract_context

    ctx = extract_context(f"mCRPC after enzalutamide and docetaxel. Tumour NGS shows a somatic BRCA2 {kind} variant.")
    (bm,) = [b for b in ctx.biomarkers if b.name == "BRCA2"]
    assert bm.result == "pathogenic" and bm.origin == "somatic"
