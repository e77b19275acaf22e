"""Phrasing tests for the deterministic patient-context extractor (one fact family per table)."""

from __future__ import annotations

import pytest

from assistant.models import PatientContext
from assistant.patient import extract_context


def ctx_of(text: str, lexicon, history=None) -> PatientContext:
    return extract_context(text, history=history, lexicon=lexicon)


def status_of(ctx: PatientContext, therapy: str) -> set[str]:
    return {t.status for t in ctx.therapies if t.therapy == therapy}


# ------------------------------------------------------------------ disease state
@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("Patient with mCRPC on ADT.", "mCRPC"),
        ("metastatic castration-resistant prostate cancer", "mCRPC"),
        ("metastatic castrate-resistant prostate cancer after orchiectomy", "mCRPC"),
        ("Castration-resistant disease with bone metastases after orchiectomy.", "mCRPC"),
        ("CRPC after bilateral orchiectomy; new bone mets on scan.", "mCRPC"),
        ("PSA rising on leuprolide with new bone lesions; castrate testosterone.", "mCRPC"),
        ("nmCRPC, PSADT 5 months.", "nmCRPC"),
        ("non-metastatic castration-resistant prostate cancer", "nmCRPC"),
        ("Newly diagnosed mHSPC, high volume.", "mHSPC"),
        ("metastatic hormone-sensitive prostate cancer", "mHSPC"),
        ("de novo metastatic prostate cancer with bone metastases", "mHSPC"),
        ("mCSPC starting ADT", "mHSPC"),
        ("Biochemical recurrence after radical prostatectomy, PSA 0.4.", "BCR"),
        ("BCR after radiotherapy", "BCR"),
        ("localized prostate cancer, Gleason 7", "localized"),
    ],
)
def test_disease_state(text, state, lexicon):
    assert ctx_of(text, lexicon).disease_state == state


def test_crpc_without_metastasis_information_stays_unknown(lexicon):
    ctx = ctx_of("Castration-resistant prostate cancer on ADT.", lexicon)
    assert ctx.disease_state is None
    assert any("metastases was not stated" in n for n in ctx.notes)


# ------------------------------------------------------------------ therapies and how they ended
@pytest.mark.parametrize(
    ("text", "therapy", "status"),
    [
        ("Progressed on enzalutamide.", "enzalutamide", "progressed"),
        ("Disease progression during abiraterone.", "abiraterone", "progressed"),
        ("Rising PSA during Pluvicto treatment.", "lu177_psma617", "progressed"),
        ("PSA rising while on Xtandi.", "enzalutamide", "progressed"),
        ("He failed Zytiga last year.", "abiraterone", "progressed"),
        ("Refractory to docetaxel.", "docetaxel", "progressed"),
        ("Olaparib stopped working after 8 months.", "olaparib", "progressed"),
        ("On enzalutamide and the PSA is rising.", "enzalutamide", "progressed"),
        ("Intolerant of enzalutamide because of fatigue.", "enzalutamide", "intolerant"),
        ("Docetaxel was stopped due to neuropathy.", "docetaxel", "intolerant"),
        ("Could not tolerate abiraterone.", "abiraterone", "intolerant"),
        ("Completed 6 cycles of docetaxel in 2022.", "docetaxel", "completed"),
        ("Currently on apalutamide.", "apalutamide", "ongoing"),
        ("He is taking warfarin.", "warfarin", "ongoing"),
        ("Still on Lupron injections.", "leuprolide", "ongoing"),
        ("Is cabazitaxel an option?", "cabazitaxel", "planned"),
        ("We are considering Pluvicto.", "lu177_psma617", "planned"),
        ("Should we start olaparib?", "olaparib", "planned"),
        ("Prior docetaxel for mHSPC.", "docetaxel", "received"),
        ("Treated with bicalutamide previously.", "bicalutamide", "received"),
    ],
)
def test_therapy_status(text, therapy, status, lexicon):
    ctx = ctx_of(text, lexicon)
    assert status in status_of(ctx, therapy), ctx.therapies


@pytest.mark.parametrize(
    ("name", "therapy"),
    [
        ("Pluvicto", "lu177_psma617"),
        ("Lu-177-PSMA", "lu177_psma617"),
        ("177Lu-PSMA-617", "lu177_psma617"),
        ("Zytiga", "abiraterone"),
        ("Xtandi", "enzalutamide"),
        ("Lynparza", "olaparib"),
        ("Xofigo", "radium223"),
        ("Jevtana", "cabazitaxel"),
        ("Nubeqa", "darolutamide"),
        ("Erleada", "apalutamide"),
        ("Eliquis", "apixaban"),
        ("Provenge", "sipuleucel_t"),
    ],
)
def test_brand_names_map_to_ids(name, therapy, lexicon):
    ctx = ctx_of(f"mCRPC, progressed on {name}.", lexicon)
    assert therapy in {t.therapy for t in ctx.therapies}


def test_reference_case_reads_every_line(lexicon):
    q = (
        "What treatment options are available for a patient with metastatic castrate-resistant prostate cancer "
        "(mCRPC) and a CHEK2 mutation, who has had a rising Prostate-Specific Antigen (PSA) level during Pluvicto "
        "(Lutetium-177) treatment, after prior treatments with docetaxel chemotherapy, Zytiga (abiraterone), and "
        "orchiectomy?"
    )
    ctx = ctx_of(q, lexicon)
    assert ctx.disease_state == "mCRPC"
    assert ctx.castration == "orchiectomy"
    assert status_of(ctx, "lu177_psma617") == {"progressed"}
    # Earlier lines in CRPC with no stated outcome are read as progression, and the note says so.
    assert status_of(ctx, "abiraterone") == {"progressed"}
    assert status_of(ctx, "docetaxel") == {"progressed"}
    assert any("abiraterone" in n for n in ctx.notes)
    chek2 = [b for b in ctx.biomarkers if b.name == "CHEK2"]
    assert chek2 and chek2[0].result == "pathogenic" and chek2[0].origin == "unknown"
    assert "psa" not in ctx.labs or ctx.labs["psa"].value != 177  # "Lutetium-177" is not a PSA value


def test_progressing_on_means_still_taking(lexicon):
    ctx = ctx_of("mCRPC progressing on abiraterone; planning radium-223.", lexicon)
    abi = next(t for t in ctx.therapies if t.therapy == "abiraterone")
    assert abi.status == "progressed" and abi.still_taking


def test_allergy_is_not_an_exposure(lexicon):
    ctx = ctx_of("Woman with cystitis, allergic to penicillin.", lexicon)
    assert "penicillin" in ctx.allergies
    assert not any(t.therapy == "amoxicillin" for t in ctx.therapies)


# ------------------------------------------------------------------ biomarkers
@pytest.mark.parametrize(
    ("text", "name", "result", "origin"),
    [
        ("Germline BRCA2 pathogenic variant.", "BRCA2", "pathogenic", "germline"),
        ("somatic BRCA1 mutation on tumour NGS", "BRCA1", "pathogenic", "somatic"),
        ("ATM alteration detected on ctDNA.", "ATM", "pathogenic", "somatic"),
        ("CHEK2 VUS", "CHEK2", "vus", "unknown"),
        ("CHEK2 variant of uncertain significance (germline)", "CHEK2", "vus", "germline"),
        ("PALB2 likely pathogenic variant", "PALB2", "likely_pathogenic", "unknown"),
        ("BRCA2 negative", "BRCA2", "negative", "unknown"),
        ("no pathogenic variants in BRCA1", "BRCA1", "negative", "unknown"),
        ("CDK12 loss", "CDK12", "pathogenic", "unknown"),
        ("MSI-H on tumour testing", "MSI-H", "positive", "somatic"),
        ("microsatellite stable", "MSI-H", "negative", "unknown"),
        ("dMMR by immunohistochemistry", "dMMR", "positive", "unknown"),
        ("TMB 15 mut/Mb", "TMB-high", "positive", "unknown"),
        ("TMB 4 mut/Mb", "TMB-high", "negative", "unknown"),
        ("PSMA PET positive", "PSMA-PET", "positive", "unknown"),
        ("PSMA-avid disease on PET", "PSMA-PET", "positive", "unknown"),
        ("PSMA PET negative", "PSMA-PET", "negative", "unknown"),
    ],
)
def test_biomarkers(text, name, result, origin, lexicon):
    ctx = ctx_of(text, lexicon)
    found = {b.name: b for b in ctx.biomarkers}
    assert name in found, ctx.biomarkers
    assert found[name].result == result
    assert found[name].origin == origin


def test_gene_list_shares_its_result(lexicon):
    ctx = ctx_of("BRCA1, BRCA2 and ATM negative; CDK12 somatic mutation.", lexicon)
    found = {b.name: b for b in ctx.biomarkers}
    assert [found[g].result for g in ("BRCA1", "BRCA2", "ATM")] == ["negative"] * 3
    assert found["CDK12"].result == "pathogenic" and found["CDK12"].origin == "somatic"


def test_heterogeneous_psma_is_not_psma_positive(lexicon):
    ctx = ctx_of("PSMA PET shows heterogeneous uptake with some PSMA-negative lesions.", lexicon)
    psma = [b for b in ctx.biomarkers if b.name == "PSMA-PET"]
    assert psma and psma[0].result == "negative"


def test_brca_without_number_is_recorded(lexicon):
    ctx = ctx_of("BRCA mutation carrier", lexicon)
    assert any(b.name == "BRCA" and b.result == "pathogenic" for b in ctx.biomarkers)


# ------------------------------------------------------------------ sites, negation, uncertainty
@pytest.mark.parametrize(
    ("text", "site", "state"),
    [
        ("bone-only disease", "bone", "present"),
        ("bone-only disease", "visceral", "absent"),
        ("no visceral disease", "visceral", "absent"),
        ("without visceral metastases", "visceral", "absent"),
        ("liver metastases", "liver", "present"),
        ("liver metastases", "visceral", "present"),
        ("? liver lesion", "liver", "possible"),
        ("possible lung metastases", "lung", "possible"),
        ("indeterminate lung nodules", "lung", "possible"),
        ("no liver mets but new lung metastases", "liver", "absent"),
        ("no liver mets but new lung metastases", "lung", "present"),
        ("retroperitoneal lymph node metastases", "lymph_node", "present"),
        ("brain metastases ruled out", "brain", "absent"),
        ("multiple sclerotic bone lesions", "bone", "present"),
    ],
)
def test_sites(text, site, state, lexicon):
    assert ctx_of(f"mCRPC with {text}.", lexicon).sites.get(site) == state


# ------------------------------------------------------------------ labs and units
@pytest.mark.parametrize(
    ("text", "lab", "value"),
    [
        ("PSA 12.5 ng/mL", "psa", 12.5),
        ("PSA rose from 2.1 to 4.3 to 9.8", "psa", 9.8),
        ("PSA doubling time 5 months", "psadt_months", 5.0),
        ("PSADT of 8 weeks", "psadt_months", 1.841),
        ("eGFR 28", "egfr", 28.0),
        ("eGFR of 45 mL/min/1.73m2", "egfr", 45.0),
        ("CrCl 25 mL/min", "crcl", 25.0),
        ("creatinine clearance of 40", "crcl", 40.0),
        ("creatinine 1.8 mg/dL", "creatinine", 1.8),
        ("creatinine 160 umol/L", "creatinine", 1.81),
        ("creatinine 160 µmol/L", "creatinine", 1.81),
        ("testosterone 15 ng/dL", "testosterone", 15.0),
        ("testosterone 0.5 nmol/L", "testosterone", 14.425),
        ("Hb 9.8 g/dL", "hemoglobin", 9.8),
        ("haemoglobin 98 g/L", "hemoglobin", 9.8),
        ("platelets 85", "platelets", 85.0),
        ("ANC 1.2", "anc", 1.2),
        ("ANC 1200 per mm3", "anc", 1.2),
        ("platelets 85000", "platelets", 85.0),
        ("potassium 5.8", "potassium", 5.8),
        ("INR 2.6", "inr", 2.6),
        ("HbA1c 8.2%", "hba1c", 8.2),
        ("BP 150/95", "sbp", 150.0),
    ],
)
def test_labs(text, lab, value, lexicon):
    ctx = ctx_of(f"Patient labs: {text}.", lexicon)
    assert lab in ctx.labs, ctx.labs
    assert ctx.labs[lab].value == pytest.approx(value, rel=0.01)


def test_psa_series_gives_trend_and_doubling_time(lexicon):
    ctx = ctx_of("PSA rose from 2 to 4 to 8 over 6 months.", lexicon)
    psa = ctx.labs["psa"]
    assert psa.series == [2.0, 4.0, 8.0] and psa.trend == "rising"
    assert ctx.labs["psadt_months"].value == pytest.approx(3.0, rel=0.01)


def test_rising_psa_without_number_sets_trend(lexicon):
    assert ctx_of("rising PSA on enzalutamide", lexicon).labs["psa"].trend == "rising"


# ------------------------------------------------------------------ demographics, performance, symptoms
@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("72-year-old man", "age", 72),
        ("72 yo male", "age", 72),
        ("aged 81", "age", 81),
        ("68F with AF", "sex", "female"),
        ("68F with AF", "age", 68),
        ("a 70 year old woman", "sex", "female"),
        ("he has mCRPC", "sex", "male"),
        ("weight 58 kg", "weight_kg", 58.0),
        ("weighs 154 lb", "weight_kg", 69.9),
        ("ECOG 1", "ecog", 1),
        ("ECOG PS 2", "ecog", 2),
        ("performance status 0-1", "ecog", 1),
        ("KPS 70", "ecog", 2),
        ("she is 12 weeks pregnant", "pregnant", True),
        ("not pregnant", "pregnant", False),
        ("symptomatic bone metastases", "symptomatic", True),
        ("asymptomatic", "symptomatic", False),
        ("bone pain needing opioids", "symptomatic", True),
        ("no pain", "symptomatic", False),
    ],
)
def test_demographics_and_status(text, field, value, lexicon):
    got = getattr(ctx_of(text, lexicon), field)
    assert got == (pytest.approx(value, rel=0.01) if isinstance(value, float) else value)


# ------------------------------------------------------------------ comorbidities and medications
@pytest.mark.parametrize(
    ("text", "cond", "state"),
    [
        ("atrial fibrillation", "atrial_fibrillation", "present"),
        ("paroxysmal AF", "atrial_fibrillation", "present"),
        ("history of DVT", "vte", "present"),
        ("pulmonary embolism last year", "vte", "present"),
        ("mechanical mitral valve", "mechanical_valve", "present"),
        ("moderate mitral stenosis", "mitral_stenosis", "present"),
        ("CKD stage 4", "ckd", "present"),
        ("type 2 diabetes", "diabetes", "present"),
        ("HFrEF", "heart_failure", "present"),
        ("prior TIA", "stroke_tia", "present"),
        ("no history of bleeding", "bleeding_history", "absent"),
        ("previous GI bleed", "bleeding_history", "present"),
        ("no heart failure", "heart_failure", "absent"),
        ("possible cirrhosis", "cirrhosis", "possible"),
        ("hypertension", "hypertension", "present"),
        ("uncomplicated cystitis", "uti", "present"),
    ],
)
def test_conditions(text, cond, state, lexicon):
    assert ctx_of(f"Patient with {text}.", lexicon).comorbidities.get(cond) == state


def test_lowercase_abbreviation_words_do_not_count(lexicon):
    ctx = ctx_of("We will re-check after the pe teacher visit; af the end of the day.", lexicon)
    assert "atrial_fibrillation" not in ctx.comorbidities and "vte" not in ctx.comorbidities


def test_current_medications_are_listed(lexicon):
    ctx = ctx_of("65 yo man with DVT on rivaroxaban; also takes carbamazepine.", lexicon)
    assert {"rivaroxaban", "carbamazepine"} <= set(ctx.medications)


# ------------------------------------------------------------------ turns
def test_later_turn_overrides_and_records_the_change(lexicon):
    history = [{"role": "user", "content": "mCRPC, no visceral disease, symptomatic bone metastases."}]
    ctx = extract_context("Actually he has liver metastases.", history=history, lexicon=lexicon)
    assert ctx.sites["liver"] == "present" and ctx.sites["visceral"] == "present"
    assert any(c.field == "site:visceral" and c.old == "absent" and c.new == "present" for c in ctx.changes)


def test_assistant_turns_are_ignored(lexicon):
    history = [
        {"role": "user", "content": "mCRPC after abiraterone."},
        {"role": "assistant", "content": "Consider olaparib if BRCA2 is mutated; liver metastases matter."},
    ]
    ctx = extract_context("What next?", history=history, lexicon=lexicon)
    assert not ctx.biomarkers and "liver" not in ctx.sites


def test_status_update_across_turns(lexicon):
    history = ["mCRPC, currently on enzalutamide."]
    ctx = extract_context("Now the PSA is rising on enzalutamide.", history=history, lexicon=lexicon)
    assert status_of(ctx, "enzalutamide") == {"progressed"}
    assert any(c.field == "therapy:enzalutamide" for c in ctx.changes)


def test_bare_later_mention_keeps_how_it_ended(lexicon):
    ctx = extract_context(
        "He had enzalutamide before.", history=["Progressed on enzalutamide."], lexicon=lexicon
    )
    assert status_of(ctx, "enzalutamide") == {"progressed"}


def test_origin_refined_in_later_turn(lexicon):
    ctx = extract_context(
        "The CHEK2 variant is germline.", history=["mCRPC with a CHEK2 mutation."], lexicon=lexicon
    )
    chek2 = next(b for b in ctx.biomarkers if b.name == "CHEK2")
    assert chek2.origin == "germline" and chek2.result == "pathogenic"


def test_prior_context_is_the_starting_point(lexicon):
    prior = extract_context("72-year-old with mCRPC.", lexicon=lexicon)
    ctx = extract_context("ECOG 2.", prior=prior, lexicon=lexicon)
    assert ctx.age == 72 and ctx.ecog == 2 and ctx.disease_state == "mCRPC"


# ------------------------------------------------------------------ LLM hook
def test_llm_extractor_adds_but_never_overrides(lexicon):
    def fake_llm(_text):
        return {"ecog": 3, "age": 50, "sites": {"brain": "present"}}

    ctx = extract_context("72-year-old man with mCRPC.", lexicon=lexicon, llm_extractor=fake_llm)
    assert ctx.age == 72  # the pattern's value stands
    assert ctx.ecog == 3  # filled where the patterns found nothing
    assert ctx.sites["brain"] == "present"
    assert any("kept 72" in n for n in ctx.notes)


def test_llm_extractor_garbage_is_ignored(lexicon):
    ctx = extract_context("mCRPC.", lexicon=lexicon, llm_extractor=lambda _t: {"ecog": "not a number"})
    assert ctx.ecog is None and ctx.disease_state == "mCRPC"


# ------------------------------------------------------------------ phrasings found in the dev question set
@pytest.mark.parametrize(
    ("text", "therapy", "status"),
    [
        ("progressed on docetaxel and then on abiraterone", "abiraterone", "progressed"),
        ("progressed on enzalutamide and later on docetaxel", "docetaxel", "progressed"),
        (
            "progressed on abiraterone and then on olaparib (radiographic progression)",
            "olaparib",
            "progressed",
        ),
        ("just started abiraterone and prednisone", "abiraterone", "ongoing"),
        ("Started enzalutamide for mCRPC 8 weeks ago.", "enzalutamide", "ongoing"),
        ("now needs rifampin-based treatment", "rifampin", "planned"),
        ("The family asks about radium-223.", "radium223", "planned"),
        ("Apixaban for AF in an 82-year-old man. Which dose?", "apixaban", "planned"),
        ("albuminuria despite lisinopril", "lisinopril", "ongoing"),
        (
            "Docetaxel given for mHSPC two years ago; now mCRPC after abiraterone. What next?",
            "docetaxel",
            "received",
        ),
        ("Apixaban given in 2023 for a DVT. Which anticoagulant now?", "apixaban", "received"),
    ],
)
def test_status_phrasings(text, therapy, status, lexicon):
    assert status in status_of(ctx_of(text, lexicon), therapy)


@pytest.mark.parametrize(
    ("text", "therapy"),
    [
        ("mCRPC after leuprolide alone (no prior ARPI or docetaxel).", "docetaxel"),
        ("mCRPC progressing on abiraterone; no docetaxel yet.", "docetaxel"),
        ("Docetaxel-naive mCRPC.", "docetaxel"),
        ("never received enzalutamide", "enzalutamide"),
    ],
)
def test_negated_therapy_is_not_an_exposure(text, therapy, lexicon):
    assert therapy not in {t.therapy for t in ctx_of(text, lexicon).therapies}


@pytest.mark.parametrize(
    ("text", "state"),
    [
        (
            "67-year-old after radical prostatectomy, never irradiated. PSA went 0.05 → 0.18 → 0.31 ng/mL.",
            "BCR",
        ),
        (
            "On leuprolide for 3 years, PSA has risen from 2.1 to 6.8 ng/mL. CT and bone scan negative.",
            "nmCRPC",
        ),
        (
            "Five years after radical prostatectomy, PSA 4.2 and a bone scan shows pelvic lesions. Starting ADT.",
            "mHSPC",
        ),
        ("Non-metastatic castration-resistant prostate cancer on degarelix.", "nmCRPC"),
    ],
)
def test_state_inferred_from_history(text, state, lexicon):
    ctx = ctx_of(text, lexicon)
    assert ctx.disease_state == state
    assert "prostate_cancer" in ctx.diagnoses


def test_psma_negative_visceral_lesions_are_not_psma_positive(lexicon):
    ctx = ctx_of(
        "PSMA PET is positive in bone, but two liver metastases show no PSMA uptake and are FDG-avid.",
        lexicon,
    )
    assert next(b for b in ctx.biomarkers if b.name == "PSMA-PET").result == "negative"


def test_no_psma_negative_lesions_keeps_positive(lexicon):
    ctx = ctx_of("PSMA PET shows avid bone and nodal disease with no PSMA-negative lesions.", lexicon)
    assert next(b for b in ctx.biomarkers if b.name == "PSMA-PET").result == "positive"
    assert ctx.sites.get("lymph_node") == "present"


def test_negated_panel(lexicon):
    ctx = ctx_of("mCRPC; no HRR alterations on tumour sequencing, MSS.", lexicon)
    found = {b.name: b.result for b in ctx.biomarkers}
    assert found.get("HRR") == "negative" and found.get("MSI-H") == "negative"


@pytest.mark.parametrize(
    ("text", "cond", "state"),
    [
        ("How should stroke prevention be handled in AF?", "stroke_tia", None),
        ("magnesium for seizure prophylaxis in pre-eclampsia", "seizure_disorder", None),
        ("triple-positive antiphospholipid syndrome", "antiphospholipid_syndrome", "present"),
        ("man on maintenance haemodialysis", "dialysis", "present"),
        ("type 2 diabetes, eGFR 45", "ckd", "present"),
        ("type 2 diabetes, UACR 250 mg/g", "ckd", "present"),
        ("healthy woman with dysuria and frequency", "uti", "present"),
    ],
)
def test_condition_phrasings(text, cond, state, lexicon):
    assert ctx_of(text, lexicon).comorbidities.get(cond) == state


def test_stated_scores_are_kept(lexicon):
    ctx = ctx_of("Atrial fibrillation, CHA2DS2-VASc 4, HAS-BLED 2.", lexicon)
    assert ctx.labs["cha2ds2_vasc"].value == 4 and ctx.labs["has_bled"].value == 2


def test_planning_pregnancy_is_not_pregnancy(lexicon):
    ctx = ctx_of("31-year-old woman on lisinopril is planning a pregnancy.", lexicon)
    assert ctx.pregnant is False and ctx.comorbidities.get("planning_pregnancy") == "present"


@pytest.mark.parametrize(
    ("text", "focus"),
    [
        (
            "65 year old with community-acquired pneumonia, COPD and diabetes. Which antibiotic?",
            ["pneumonia"],
        ),
        (
            "Man with metastatic prostate cancer on docetaxel develops a DVT. Which anticoagulant?",
            ["prostate_cancer", "vte"],
        ),
        (
            "Mechanical mitral valve and atrial fibrillation on warfarin. Can we switch to apixaban?",
            ["atrial_fibrillation"],
        ),
        (
            "58-year-old after a myocardial infarction, LDL-C 96 mg/dL. What next for lipids?",
            ["vascular_disease", "hyperlipidemia"],
        ),
    ],
)
def test_focus_of_the_question(text, focus, lexicon):
    assert ctx_of(text, lexicon).focus == focus


def test_prior_context_is_not_overwritten_by_replaying_older_history(lexicon):
    history = [{"role": "user", "content": "mCRPC, PSA 5."}, {"role": "assistant", "content": "..."}]
    first = extract_context("PSA now 9.", history=history, lexicon=lexicon)
    assert first.labs["psa"].value == 9.0
    later = extract_context("ECOG 1.", history=[*history, {"role": "user", "content": "PSA now 9."}], prior=first, lexicon=lexicon)
    assert later.labs["psa"].value == 9.0, "the older PSA 5 from history must not come back over the newer 9"
    assert later.ecog == 1
    assert not any(c.field.startswith("labs") and c.new == "5.0" for c in later.changes), later.changes


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("BRCA2 pathogenic variant; BRCA2 testing negative.", "BRCA2"),
        ("He has mCRPC. He also has castration-sensitive metastatic disease.", "disease state"),
        ("ECOG 1. ECOG 3. mCRPC.", "ECOG"),
        ("67-year-old man, age 81.", "age"),
        ("No bone metastases, bone metastases present on scan.", "bone"),
    ],
)
def test_two_values_of_one_fact_in_one_message_are_flagged(text, key, lexicon):
    notes = [n for n in ctx_of(text, lexicon).notes if n.startswith("Conflicting")]
    assert notes and key in notes[0], notes


@pytest.mark.parametrize(
    "text",
    [
        "mHSPC treated with ADT and docetaxel, now mCRPC.",
        "Docetaxel for mHSPC two years ago; now mCRPC.",
        "ECOG 0-1, 70-year-old man.",
        "No visceral disease, bone metastases present.",
        "BRCA2 pathogenic variant, ATM negative.",
    ],
)
def test_ordinary_histories_are_not_flagged_as_conflicts(text, lexicon):
    assert not [n for n in ctx_of(text, lexicon).notes if n.startswith("Conflicting")]
