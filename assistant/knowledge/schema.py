"""The corpus record format in code: fixed vocabularies, the condition language, rule and safety records.

First stop of the knowledge stage: every YAML record under corpus/rules, corpus/safety and corpus/lexicon is
validated against these pydantic models (by `loaders` and `lexicon`) before the rule engine sees it. The rule
schema and condition language are documented for clinicians in corpus/README.md; the models below are that
table in code (extra keys are rejected so typos fail loudly). Pure definitions: no I/O but reading the shipped
non-gene marker list when a record is validated without a context.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

# ------------------------------------------------------------------ vocabularies
# Fixed vocabularies the patient-context extractor can produce; a rule naming anything else could
# never fire, so the validator rejects it (the message lists the allowed values).
DISEASE_STATES = ("BCR", "nmHSPC", "nmCRPC", "mHSPC", "mCRPC", "localized")
SITES = ("bone", "lymph_node", "visceral", "liver", "lung", "brain", "adrenal", "soft_tissue")
VISCERAL_SITES = ("liver", "lung", "brain", "adrenal")
LAB_NAMES = (
    "psa", "psadt_months", "egfr", "crcl", "creatinine", "testosterone", "hemoglobin", "platelets", "anc",
    "wbc", "potassium", "sodium", "alt", "ast", "bilirubin", "albumin", "inr", "ldl", "hba1c", "sbp", "dbp",
    "heart_rate", "qtc", "ldh", "alp", "calcium", "vitamin_d", "bmi", "uacr", "psa_nadir",
)  # fmt: skip
DIAGNOSES = (
    "prostate_cancer", "atrial_fibrillation", "vte", "dvt", "pe", "ckd", "diabetes", "heart_failure",
    "hypertension", "hyperlipidemia", "uti", "pneumonia", "stroke_tia", "vascular_disease",
    "coronary_artery_disease", "liver_disease", "cirrhosis", "mechanical_valve", "mitral_stenosis",
    "bleeding_history", "osteoporosis", "asthma", "copd", "dialysis", "cancer", "gout", "hypothyroidism",
    "obesity", "pregnancy", "aki", "hyperkalemia", "anemia", "thrombocytopenia", "seizure_disorder",
    "interstitial_lung_disease", "hepatitis_b", "autoimmune_disease", "organ_transplant", "falls",
    "cardiovascular_disease", "qt_prolongation", "hypokalemia", "peripheral_neuropathy", "dementia",
    "alcohol_use", "antiphospholipid_syndrome", "albuminuria", "planning_pregnancy",
)  # fmt: skip
COMORBIDITIES = DIAGNOSES  # one vocabulary: `diagnosis:` and `comorbidity:` look in the same facts
GENES = (
    "BRCA1", "BRCA2", "ATM", "ATR", "FANCD2", "RAD51", "GEN1", "ERCC2", "MUTYH", "POLE", "POLD1", "BARD1", "BRIP1", "CDK12", "CHEK1", "CHEK2", "FANCA", "FANCL", "PALB2",
    "RAD51B", "RAD51C", "RAD51D", "RAD54L", "NBN", "MRE11A", "MRE11", "RAD50", "PPP2R2A", "MLH1", "MSH2",
    "MSH6", "PMS2", "EPCAM", "HOXB13", "TP53", "PTEN", "RB1", "AR", "AR-V7", "SPOP", "TMPRSS2-ERG",
    "HRR",  # a panel reported without gene names ("HRR panel negative")
)  # fmt: skip
"""Genes a biomarker condition may name. The markers that are not genes (MSI-H, PSMA-PET …) are data:
corpus/lexicon/clinical.yaml ``biomarkers.non_gene``, passed as validation context (``markers_of``)."""
RESULTS = ("pathogenic", "likely_pathogenic", "vus", "negative", "positive", "unknown")
ORIGINS = ("germline", "somatic", "unknown")
CALCULATORS = ("cha2ds2_vasc", "has_bled", "crcl", "egfr_ckd_epi_2021", "apixaban_dose_criteria")
SCALAR_FACTS = (
    "biomarker", "ecog", "age", "weight", "sex", "pregnant", "symptomatic", "state", "castration",
    "gestational_weeks", "lactating", "postpartum", "diabetes_type", "child_pugh", "infection_site", "volume",
    "presentation", "imaging", "phase", "allergy", "kidney",
)  # fmt: skip
DIABETES_TYPES = ("type1", "type2", "gestational", "other")
CHILD_PUGH = ("A", "B", "C")
INFECTION_SITES = ("cystitis", "pyelonephritis", "urosepsis")
VOLUMES = ("high", "low")
PRESENTATIONS = ("de_novo", "metachronous")
IMAGING = ("conventional", "psma_pet_only")
PHASES = ("initial", "extended")
ULN_LABS = ("bilirubin", "ast", "alt", "alp")
ALLERGY_SEVERITIES = ("severe", "non-severe", "intolerance", "unknown")
Op = Literal["<", "<=", ">", ">=", "==", "!="]

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_DOC_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_REF_RE = re.compile(r"^(?P<doc>[a-z0-9][a-z0-9-]*)#(?P<slug>[a-z0-9][a-z0-9-]*)$")


def _condition_ids(info: Any) -> tuple[str, ...]:
    """Condition ids valid for this load: corpus/lexicon/clinical.yaml's, passed as validation context."""
    ctx = getattr(info, "context", None) or {}
    return tuple(ctx.get("conditions") or DIAGNOSES)


def non_gene_markers_of(info: Any) -> tuple[str, ...]:
    """Markers that are not genes, valid for this load: clinical.yaml's ``biomarkers.non_gene``, passed as
    validation context; without a context (a record validated on its own) the shipped corpus's list."""
    ctx = getattr(info, "context", None) or {}
    got = ctx.get("non_gene_markers")
    return tuple(got) if got is not None else shipped_non_gene_markers()


@functools.lru_cache(maxsize=1)
def shipped_non_gene_markers() -> tuple[str, ...]:
    """``biomarkers.non_gene`` of the shipped corpus/lexicon/clinical.yaml (read once; the only I/O here)."""
    path = Path(__file__).resolve().parents[2] / "corpus" / "lexicon" / "clinical.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    return tuple(str(m) for m in ((data or {}).get("biomarkers") or {}).get("non_gene") or ())


def markers_of(info: Any) -> tuple[str, ...]:
    """Every biomarker name a condition or fact may name: the genes and the non-gene markers."""
    return (*GENES, *non_gene_markers_of(info))


def _one_of(value: str, allowed: Iterable[str], what: str) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")
    return value


def _listify(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# ------------------------------------------------------------------ condition language
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Compare(_Strict):
    op: Op
    value: float


class LabCond(Compare):
    name: str

    @field_validator("name")
    @classmethod
    def _known_lab(cls, v: str) -> str:
        return _one_of(v, LAB_NAMES, "lab")


class CalcCond(Compare):
    name: str

    @field_validator("name")
    @classmethod
    def _known_calc(cls, v: str) -> str:
        return _one_of(v, CALCULATORS, "calculator")


class BiomarkerCond(_Strict):
    genes: list[str] = Field(min_length=1)
    results: list[str] = Field(default_factory=lambda: ["pathogenic", "likely_pathogenic"])
    origins: list[str] = Field(default_factory=list, description="Empty = any origin")

    @field_validator("genes")
    @classmethod
    def _known_genes(cls, v: list[str], info: ValidationInfo) -> list[str]:
        return [_one_of(g, markers_of(info), "gene/marker") for g in v]

    @field_validator("results")
    @classmethod
    def _known_results(cls, v: list[str]) -> list[str]:
        return [_one_of(r, RESULTS, "biomarker result") for r in v]

    @field_validator("origins")
    @classmethod
    def _known_origins(cls, v: list[str]) -> list[str]:
        return [_one_of(o, ORIGINS, "biomarker origin") for o in v]


class UlnCond(Compare):
    """A liver test as a multiple of its upper limit of normal (label thresholds are written this way)."""

    name: str

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _one_of(v, ULN_LABS, "ULN lab")


class ResistanceCond(Compare):
    """The stated local resistance rate (%) to a therapy or class (IDSA thresholds: TMP-SMX 20 %, fluoroquinolone 10 %)."""

    to: str


class AllergyCond(_Strict):
    """An allergy to one of `to` (therapy ids or classes), optionally narrowed by severity or reaction words."""

    to: list[str] = Field(min_length=1)
    severity: list[str] = Field(default_factory=list, description="Empty = any severity except intolerance")
    reaction: list[str] = Field(default_factory=list, description="Words of the reaction (anaphylaxis, SJS …)")

    @field_validator("to", "severity", "reaction", mode="before")
    @classmethod
    def _as_list(cls, v: Any) -> Any:
        return _listify(v)

    @field_validator("severity")
    @classmethod
    def _known_sev(cls, v: list[str]) -> list[str]:
        return [_one_of(x, ALLERGY_SEVERITIES, "allergy severity") for x in v]


# Atoms whose values come from a fixed vocabulary: atom → (allowed values, name used in the error message).
_ENUM_ATOMS: dict[str, tuple[tuple[str, ...], str]] = {
    "diabetes_type": (DIABETES_TYPES, "diabetes type"),
    "child_pugh": (CHILD_PUGH, "Child-Pugh class"),
    "infection_site": (INFECTION_SITES, "infection site"),
    "volume": (VOLUMES, "volume"),
    "presentation": (PRESENTATIONS, "presentation"),
    "imaging": (IMAGING, "imaging"),
    "phase": (PHASES, "phase"),
}

_ATOMS = (
    "state", "diagnosis", "received", "progressed_on", "current", "planned", "intolerant_to", "biomarker",
    "tested_negative", "site", "lab", "age", "weight", "ecog", "sex", "pregnant", "symptomatic",
    "comorbidity", "allergy", "calc", "castration", "trimester", "gestational_weeks", "lactating", "postpartum",
    "diabetes_type", "uln", "child_pugh", "infection_site", "volume", "presentation", "imaging", "phase", "declined",
    "resistance",
)  # fmt: skip
_THERAPY_ATOMS = ("received", "progressed_on", "current", "planned", "intolerant_to", "declined")


class Condition(_Strict):
    """One mapping of the condition language; several atoms in one mapping are read as `all`."""

    _atoms: tuple[tuple[str, Any], ...] = PrivateAttr(default=())
    all_: list[Condition] | None = Field(None, alias="all")
    any_: list[Condition] | None = Field(None, alias="any")
    not_: Condition | None = Field(None, alias="not")
    state: list[str] | None = None
    diagnosis: list[str] | None = None
    received: list[str] | None = None
    progressed_on: list[str] | None = None
    current: list[str] | None = None
    planned: list[str] | None = None
    intolerant_to: list[str] | None = None
    biomarker: BiomarkerCond | None = None
    tested_negative: list[str] | None = None
    site: list[str] | None = None
    lab: LabCond | None = None
    age: Compare | None = None
    weight: Compare | None = None
    ecog: Compare | None = None
    sex: Literal["male", "female"] | None = None
    pregnant: bool | None = None
    symptomatic: bool | None = None
    comorbidity: list[str] | None = None
    allergy: AllergyCond | None = None
    calc: CalcCond | None = None
    castration: bool | None = None
    trimester: list[int] | None = None
    gestational_weeks: Compare | None = None
    lactating: bool | None = None
    postpartum: bool | None = None
    diabetes_type: list[str] | None = None
    uln: UlnCond | None = None
    child_pugh: list[str] | None = None
    infection_site: list[str] | None = None
    volume: list[str] | None = None
    presentation: list[str] | None = None
    imaging: list[str] | None = None
    phase: list[str] | None = None
    declined: list[str] | None = None
    resistance: ResistanceCond | None = None

    @field_validator(
        "state", "diagnosis", "received", "progressed_on", "current", "planned", "intolerant_to",
        "tested_negative", "site", "comorbidity", "diabetes_type", "child_pugh", "infection_site", "volume",
        "presentation", "imaging", "phase", "declined", mode="before",
    )  # fmt: skip
    @classmethod
    def _as_list(cls, v: Any) -> Any:
        return _listify(v) if v is not None else None

    @field_validator("allergy", mode="before")
    @classmethod
    def _allergy_short(cls, v: Any) -> Any:
        # `allergy: penicillin` / `allergy: [a, b]` is shorthand for `allergy: {to: [...]}`.
        if v is None or isinstance(v, dict):
            return v
        return {"to": _listify(v)}

    @field_validator("trimester", mode="before")
    @classmethod
    def _trimesters(cls, v: Any) -> Any:
        if v is None:
            return v
        out = [int(x) for x in (v if isinstance(v, list) else [v])]
        for x in out:
            if x not in (1, 2, 3):
                raise ValueError(f"unknown trimester {x!r}; allowed: 1, 2, 3")
        return out

    @field_validator("diabetes_type", "child_pugh", "infection_site", "volume", "presentation", "imaging", "phase")
    @classmethod
    def _known_value(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        allowed, what = _ENUM_ATOMS[info.field_name]
        return [_one_of(x, allowed, what) for x in v] if v else v

    @field_validator("state")
    @classmethod
    def _known_state(cls, v: list[str] | None) -> list[str] | None:
        return [_one_of(s, DISEASE_STATES, "disease state") for s in v] if v else v

    @field_validator("diagnosis", "comorbidity")
    @classmethod
    def _known_dx(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return [_one_of(s, _condition_ids(info), "diagnosis/comorbidity id") for s in v] if v else v

    @field_validator("site")
    @classmethod
    def _known_site(cls, v: list[str] | None) -> list[str] | None:
        return [_one_of(s, SITES, "site") for s in v] if v else v

    @field_validator("tested_negative")
    @classmethod
    def _known_neg(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return [_one_of(s, markers_of(info), "gene/marker") for s in v] if v else v

    @field_validator("all_", "any_")
    @classmethod
    def _non_empty(cls, v: list[Condition] | None) -> list[Condition] | None:
        if v is not None and not v:
            raise ValueError("'all'/'any' needs at least one condition")
        return v

    @model_validator(mode="after")
    def _at_least_one(self) -> Condition:
        if not self.atoms():
            raise ValueError(f"empty condition; use one of: all, any, not, {', '.join(_ATOMS)}")
        return self

    def model_post_init(self, __context: Any) -> None:
        # Computed once: the engine walks these for every patient, so the lookup must be cheap.
        out = []
        for key in ("all_", "any_", "not_", *_ATOMS):
            value = getattr(self, key)
            if value is not None:
                out.append((key.rstrip("_"), value))
        object.__setattr__(self, "_atoms", tuple(out))

    def atoms(self) -> tuple[tuple[str, Any], ...]:
        """The (key, value) pairs set in this mapping, in declaration order (`all`/`any`/`not` included)."""
        return self._atoms

    def walk(self) -> Iterator[Condition]:
        yield self
        for child in (self.all_ or []) + (self.any_ or []) + ([self.not_] if self.not_ else []):
            yield from child.walk()


Condition.model_rebuild()


# ------------------------------------------------------------------ rule records
def _check_fact(v: str, info: Any) -> str:
    head, _, tail = v.partition(":")
    if head in SCALAR_FACTS and not tail:
        return v
    if head == "site" and tail:
        _one_of(tail, SITES, "site")
        return v
    if head == "lab" and tail:
        _one_of(tail, LAB_NAMES, "lab")
        return v
    if head == "origin" and tail:
        _one_of(tail, markers_of(info), "gene")
        return v
    if head == "tested" and tail:  # tested:<gene>: asked while no result for that gene is known
        _one_of(tail, markers_of(info), "gene")
        return v
    raise ValueError(
        f"unknown fact {v!r}; use one of {', '.join(SCALAR_FACTS)}, site:<site>, lab:<lab>, origin:<gene>, tested:<gene>"
    )


class AskItem(_Strict):
    fact: str
    question: str = Field(min_length=5)

    @field_validator("fact")
    @classmethod
    def _fact(cls, v: str, info: ValidationInfo) -> str:
        return _check_fact(v, info)


class Exclusion(_Strict):
    id: str
    when: Condition
    reason: str = Field(min_length=3)
    cite: list[str] = Field(default_factory=list)
    scope: bool = Field(
        False,
        description="True when the exclusion says the patient is outside the guideline's population (a child under "
        "an adult guideline), not that the drug is harmful: the corpus then does not answer for this patient",
    )


class _RuleBase(_Strict):
    id: str
    title: str = ""
    domain: str
    cite: list[str] = Field(min_length=1)
    last_reviewed: _dt.date
    verified_from: str = ""
    unverified: bool = False
    notes: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"rule id {v!r} must be letters, digits, '.', '_', '-' (no spaces)")
        return v

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str, info: ValidationInfo) -> str:
        return _one_of(v, (*_condition_ids(info), "general"), "domain")


class TherapyRule(_RuleBase):
    type: Literal["therapy"]
    therapy: str
    drugs: list[str] = Field(default_factory=list)
    applies_when: Condition | None = None
    population: Condition | None = Field(
        None,
        description="Who the source guideline was written for (e.g. adults); false → a scope exclusion: the corpus "
        "does not answer for this patient. Unknown (age not stated) does not exclude.",
    )
    population_reason: str = ""
    eligible_when: Condition | None = None
    ineligible_reason: str = ""
    exclusions: list[Exclusion] = Field(default_factory=list)
    finding: Literal["recommend", "consider"]
    preference: int | None = None
    strength: str = ""
    reason: str = Field(min_length=3)
    ask_if_unknown: list[AskItem] = Field(default_factory=list)
    # Default on: a therapy the disease already progressed on is not offered again. A rule that
    # deliberately continues through progression (ADT in CRPC) sets this to true.
    repeat_after_progression: bool = False

    @model_validator(mode="after")
    def _reason_when_gated(self) -> TherapyRule:
        if self.eligible_when is not None and not self.ineligible_reason.strip():
            raise ValueError("a rule with eligible_when needs ineligible_reason (said when it is not met)")
        return self


class WarningRule(_RuleBase):
    type: Literal["warning"]
    when: Condition
    severity: Literal["high", "moderate", "info"]
    message: str = Field(min_length=3)
    therapy: str | None = Field(None, description="The therapy the warning is about, when there is one")
    ask_if_unknown: list[AskItem] = Field(default_factory=list)


class QuestionRule(_RuleBase):
    type: Literal["question"]
    when: Condition | None = None
    missing: str
    question: str = Field(min_length=5)

    @field_validator("missing")
    @classmethod
    def _fact(cls, v: str, info: ValidationInfo) -> str:
        return _check_fact(v, info)


Rule = TherapyRule | WarningRule | QuestionRule


def offered_drugs(rule: TherapyRule) -> list[str]:
    """The drugs a therapy rule can put in front of a patient: its therapy's `+` components and its `drugs`."""
    return list(dict.fromkeys([*rule.therapy.split("+"), *rule.drugs]))


# ------------------------------------------------------------------ drug safety profiles
class SafetyCheck(_Strict):
    """One machine-checkable label condition: when it holds for the patient, the drug is excluded or flagged."""

    id: str
    when: Condition
    reason: str = Field(min_length=10, description="One or two sentences, our own words")
    section: str = Field(min_length=1, description="Label section the fact comes from")
    severity: Literal["high", "moderate"] = "high"
    ask: str = Field("", description="Question asked when the condition cannot be decided (a deciding fact is missing)")
    prefer_alternative: bool = Field(
        False,
        description="Caution only: when a same-class alternative without this warning is offered, this drug gives way",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9-]*$", v):
            raise ValueError(f"check id {v!r} must be lowercase letters, digits and '-'")
        return v


class SafetyProfile(_Strict):
    """A drug's (or a class's) label safety facts: contraindications, cautions, monitoring (corpus/safety/*.yaml)."""

    id: str
    applies_to: list[str] = Field(min_length=1, description="Therapy ids or lexicon classes it covers")
    label: str = Field(min_length=3)
    revised: str = ""
    url: str = ""
    last_reviewed: _dt.date
    verified_from: str = ""
    unverified: bool = False
    allergen_classes: list[str] = Field(default_factory=list)
    contraindicated: list[SafetyCheck] = Field(default_factory=list)
    caution: list[SafetyCheck] = Field(default_factory=list)
    monitor: list[str] = Field(default_factory=list)
    cite: list[str] = Field(default_factory=list)
    notes: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"profile id {v!r} must be letters, digits, '.', '_', '-' (no spaces)")
        return v

    @model_validator(mode="after")
    def _unique_checks(self) -> SafetyProfile:
        ids = [c.id for c in [*self.contraindicated, *self.caution]]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"check ids repeat within the profile: {', '.join(dup)}")
        return self

    def ref(self, check: SafetyCheck) -> str:
        """The citable block id of a check in the rendered label-safety digest."""
        return f"{self.id}.{check.id}"
_RULE_TYPES: dict[str, type[BaseModel]] = {


    "therapy": TherapyRule,
    "warning": WarningRule,
    "question": QuestionRule,
}


# ------------------------------------------------------------------ lexicon entries (indexed by lexicon.Lexicon)
class LexiconEntry(_Strict):
    id: str
    classes: list[str] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9_+]*$", v):
            raise ValueError(f"therapy id {v!r} must be lowercase letters, digits, '_' or '+'")
        return v
