"""Typed records between the assistant's stages: passages, patient context, findings, answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- retrieval
class RetrievedPassage(_Record):
    chunk_id: str
    doc_id: str
    text: str
    title: str = ""
    issuing_body: str = ""
    year: str = ""
    url: str = ""
    section_path: str = ""
    rec_id: str = ""
    strength: str = ""
    evidence: str = ""
    source_pack: str = ""
    kind: str = ""
    last_reviewed: str = ""
    unverified: bool = False
    score: float = Field(0.0, description="Fused relevance score (higher is better).")
    dense_rank: int | None = None
    bm25_rank: int | None = None
    # added by retrieval (optional; callers may ignore them)
    relevance: float = Field(
        0.0,
        description="Calibrated 0–1 relevance (max of dense cosine and idf-weighted query-term coverage).",
    )
    dense_score: float | None = Field(None, description="Cosine similarity of query and passage (MiniLM).")
    bm25_score: float | None = Field(None, description="BM25 score when the keyword retriever found it.")
    slug: str = ""
    population: str = ""
    flagged: str = Field(
        "", description="Why ingest flagged this passage as text addressed to the model (planted instruction); '' when clean"
    )


# ---------------------------------------------------------------- patient context
TherapyStatus = Literal["progressed", "intolerant", "completed", "ongoing", "received", "planned", "stopped"]
FactState = Literal["present", "absent", "possible"]


class TherapyExposure(_Record):
    therapy: str = Field(description="Canonical therapy id from corpus/lexicon/therapies.yaml")
    classes: list[str] = Field(default_factory=list)
    status: TherapyStatus = "received"
    setting: str | None = Field(None, description="Disease state it was given in, e.g. mHSPC")
    mention: str = Field("", description="The words it was extracted from")
    still_taking: bool = Field(
        False,
        description="Still being taken although its status says how it is going (e.g. 'progressing on X')",
    )


class Biomarker(_Record):
    name: str = Field(description="Gene or marker: BRCA2, CHEK2, MSI-H, dMMR, TMB-high, PSMA-PET …")
    result: Literal["pathogenic", "likely_pathogenic", "vus", "negative", "positive", "unknown"] = (
        "pathogenic"
    )
    origin: Literal["germline", "somatic", "unknown"] = "unknown"
    value: str | None = None
    mention: str = ""


class LabValue(_Record):
    name: str = Field(description="psa, egfr, crcl, creatinine, testosterone, hemoglobin, platelets …")
    value: float | None = None
    unit: str = ""
    series: list[float] = Field(
        default_factory=list, description="Earlier → latest values when a trend is given"
    )
    trend: Literal["rising", "falling", "stable", "unknown"] = "unknown"
    mention: str = ""
    uln_multiple: float | None = Field(
        None,
        description="Value as a multiple of the upper limit of normal when given that way ('bilirubin 2.4 x ULN')"
        " or computed from a stated ULN; hepatic label thresholds are written in these units",
    )


AllergySeverity = Literal["severe", "non-severe", "intolerance", "unknown"]


class Allergy(_Record):
    """One documented allergy: what to, how it showed, and how severe (decides cross-reactivity)."""

    substance: str = Field(description="Canonical therapy id or allergen class as stated (penicillin, sulfonamide …)")
    classes: list[str] = Field(
        default_factory=list, description="Allergen classes the substance belongs to (lexicon classes)"
    )
    reaction: str = Field("", description="anaphylaxis, angioedema, SJS/TEN, urticaria, rash, GI upset …")
    severity: AllergySeverity = Field(
        "unknown",
        description="severe: anaphylaxis, angioedema, SJS/TEN, DRESS; non-severe: rash, itch, hives; "
        "intolerance: a side effect (nausea, diarrhoea), not an allergy",
    )
    mention: str = ""


class TumourMarker(_Record):
    """One tumour biomarker result as the clinician stated it (oncology approvals are matched on these)."""

    marker: str = Field(description="Marker id from corpus/lexicon/oncology.yaml: EGFR, KRAS, HER2, PDL1, MSI …")
    alteration: str = Field(
        "",
        description="Exact variant or kind when stated: L858R, exon19_del, G12C, V600E, fusion, amplification, ITD;"
        " '' when only 'mutated/positive' was said",
    )
    status: Literal["positive", "negative", "unknown"] = Field(
        "positive", description="positive: altered/expressed; negative: wild-type/not expressed/not detected"
    )
    also: list[str] = Field(
        default_factory=list, description="Further alterations of the same gene (EGFR exon19_del with T790M)"
    )
    level: str = Field("", description="Category when stated: HER2 positive/low/ultralow/zero; MSI high; MMR deficient")
    score: dict[str, float] = Field(
        default_factory=dict, description="Numeric scores: tps, cps, ps (% positive cells), tmb (mut/Mb), ihc (0-3)"
    )
    origin: Literal["germline", "somatic", "unknown"] = "unknown"
    mention: str = ""


class TumourContext(_Record):
    """What an oncology question states about the cancer: type, setting, line and biomarkers."""

    tumour: str | None = Field(None, description="Tumour id from corpus/lexicon/oncology.yaml (nsclc, colorectal …)")
    histology: list[str] = Field(default_factory=list)
    settings: list[str] = Field(default_factory=list, description="metastatic, adjuvant, relapsed_refractory …")
    line: Literal["first", "later"] | None = Field(
        None, description="first: no systemic therapy yet in this setting; later: at least one earlier line"
    )
    markers: list[TumourMarker] = Field(default_factory=list)
    no_other_drivers: bool = Field(False, description="A broad panel found no other actionable alteration")
    prior_classes: list[str] = Field(
        default_factory=list, description="Classes of earlier treatment named by class word ('after FOLFOX', 'post-immunotherapy')"
    )


class FactChange(_Record):
    field: str
    old: str
    new: str
    turn: int


class PatientContext(_Record):
    diagnoses: list[str] = Field(
        default_factory=list, description="Canonical ids, e.g. prostate_cancer, atrial_fibrillation"
    )
    disease_state: str | None = Field(None, description="BCR, nmHSPC, nmCRPC, mHSPC, mCRPC, localized")
    castration: str | None = Field(None, description="How castration is achieved: orchiectomy, ADT")
    therapies: list[TherapyExposure] = Field(default_factory=list)
    biomarkers: list[Biomarker] = Field(default_factory=list)
    sites: dict[str, FactState] = Field(
        default_factory=dict, description="bone, lymph_node, visceral, liver, lung, brain"
    )
    labs: dict[str, LabValue] = Field(default_factory=dict)
    ecog: int | None = None
    symptomatic: bool | None = None
    symptoms: list[str] = Field(default_factory=list)
    age: int | None = None
    sex: Literal["male", "female"] | None = None
    weight_kg: float | None = None
    pregnant: bool | None = None
    gestational_weeks: float | None = Field(None, description="Weeks of gestation when pregnant and stated")
    trimester: Literal[1, 2, 3] | None = Field(None, description="Stated, or derived from gestational weeks")
    postpartum: bool | None = Field(None, description="Delivered within the last ~6 weeks")
    lactating: bool | None = Field(None, description="Breastfeeding")
    allergies: list[str] = Field(
        default_factory=list, description="Substances (therapy ids or classes) the patient is allergic to"
    )
    allergy_details: list[Allergy] = Field(
        default_factory=list, description="Each allergy with its reaction and severity (same order as allergies)"
    )
    diabetes_type: Literal["type1", "type2", "gestational", "other"] | None = None
    child_pugh: Literal["A", "B", "C"] | None = Field(None, description="Child-Pugh class of liver disease")
    infection_site: Literal["cystitis", "pyelonephritis", "urosepsis"] | None = Field(
        None, description="Urinary infection site: lower tract vs upper tract (fever, flank pain, CVA tenderness)"
    )
    disease_volume: Literal["high", "low"] | None = Field(
        None, description="Metastatic volume by CHAARTED (high: visceral, or >= 4 bone lesions with >= 1 outside the axial skeleton)"
    )
    presentation: Literal["de_novo", "metachronous"] | None = Field(
        None, description="Metastatic at diagnosis (de novo/synchronous) vs after earlier local treatment"
    )
    metastasis_imaging: Literal["conventional", "psma_pet_only"] | None = Field(
        None,
        description="What shows the metastases: conventional imaging (CT/MRI/bone scan) or PSMA PET only with negative"
        " conventional imaging (trial definitions of nmCRPC and EMBARK rest on conventional imaging)",
    )
    care_phase: Literal["initial", "extended"] | None = Field(
        None, description="Phase of treatment (VTE: initial/primary 3-6 months vs extended beyond)"
    )
    declined: list[str] = Field(
        default_factory=list, description="Therapy ids or classes the patient declines (shown as declined, never preferred)"
    )
    local_resistance: dict[str, float] = Field(
        default_factory=dict,
        description="Local resistance rates stated for the likely pathogen, % by therapy id or class (e.g. TMP-SMX 30)",
    )
    medications: list[str] = Field(
        default_factory=list, description="Current non-cancer medications (canonical ids)"
    )
    comorbidities: dict[str, FactState] = Field(default_factory=dict)
    changes: list[FactChange] = Field(
        default_factory=list, description="Facts a later turn overrode (visible in UI)"
    )
    notes: list[str] = Field(
        default_factory=list, description="Uncertain or unparsed statements worth showing"
    )
    focus: list[str] = Field(
        default_factory=list,
        description="Diagnosis ids the question is about (asked about, or named first); other findings are context",
    )
    tumour: TumourContext | None = Field(
        None, description="Oncology facts (tumour type, setting, line, biomarkers) when the question is about a cancer"
    )


# ---------------------------------------------------------------- rules → findings → plan
FindingKind = Literal["recommend", "consider", "exclude", "warn", "ask"]


class Finding(_Record):
    rule_id: str
    kind: FindingKind
    therapy: str | None = None
    title: str = ""
    reason: str = Field(description="One line in plain clinical language")
    strength: str = ""
    preference: int | None = None
    severity: str | None = None
    refs: list[str] = Field(
        default_factory=list, description="Corpus references (rec ids or doc#slug) that justify it"
    )
    citations: list[int] = Field(
        default_factory=list, description="Numbers of the answer's citations (set when rendered)"
    )
    unverified: bool = False
    domain: str | None = Field(None, description="Diagnosis id the rule belongs to (rule `domain`)")


class AnswerPlan(_Record):
    findings: list[Finding] = Field(default_factory=list)
    must_mention: list[str] = Field(default_factory=list)
    must_not_recommend: list[str] = Field(
        default_factory=list, description="Therapy ids excluded for this patient"
    )
    must_warn: list[str] = Field(default_factory=list)
    should_ask: list[str] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    also_noted: list[str] = Field(
        default_factory=list,
        description="Rule ids of offers that do not answer the question asked (shown apart, never as options)",
    )
    offered_names: dict[str, list[str]] = Field(
        default_factory=dict, description="Every name of each offered therapy (the verifier's contradiction check)"
    )
    excluded_docs: list[str] = Field(
        default_factory=list,
        description="Label documents of excluded drugs: citable as evidence, never quoted as an option",
    )


# ---------------------------------------------------------------- answer
class Citation(_Record):
    number: int
    doc_id: str
    title: str
    organisation: str = ""
    year: str = ""
    section: str = ""
    chunk_id: str
    passage: str
    url: str = ""
    strength: str = ""
    rec_id: str = ""
    last_reviewed: str = ""
    unverified: bool = False
    flagged: str = Field(
        "", description="Why the passage was flagged as addressing the model: shown, cited, never quoted; '' when clean"
    )


class VerificationReport(_Record):
    checked: list[str] = Field(default_factory=list, description="Names of the checks that ran")
    failed: list[str] = Field(default_factory=list, description="What failed, one line each")
    repaired: list[str] = Field(default_factory=list, description="What was fixed and how")
    verified: bool = False
    mode: Literal["llm", "llm-repaired", "composer", "composer-fallback", "abstain"] = "composer"
    support_scores: list[float] = Field(default_factory=list)


class Answer(_Record):
    question: str
    answer_markdown: str
    citations: list[Citation] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    patient_context: PatientContext = Field(default_factory=PatientContext)
    abstained: bool = False
    verification: VerificationReport = Field(default_factory=VerificationReport)
    follow_ups: list[str] = Field(default_factory=list)
    backend: str = "none"
    banner: str | None = Field(None, description="Shown prominently, e.g. when the fallback was used")
    timings_ms: dict[str, float] = Field(default_factory=dict)
    corpus_version: str = ""
    model: str = ""


class AnswerEvent(_Record):
    """One step of a streamed answer: the rule-checked plan and sources first, then text, then the final record."""

    kind: Literal["plan", "delta", "final", "error"]
    text: str = Field("", description="Token text for 'delta'; the message for 'error'")
    findings: list[Finding] = Field(default_factory=list, description="Set on 'plan'")
    citations: list[Citation] = Field(
        default_factory=list, description="Set on 'plan' (the numbered sources)"
    )
    patient_context: PatientContext | None = None
    answer: Answer | None = Field(None, description="Set on 'final'")


def final_answer(events: Iterable[AnswerEvent]) -> Answer:
    """Drain a streamed answer and return its 'final' record (every ask_stream ends with one)."""
    final: Answer | None = None
    for ev in events:
        if ev.kind == "final":
            final = ev.answer
    if final is None:
        raise RuntimeError("the answer stream ended without a 'final' event")
    return final
