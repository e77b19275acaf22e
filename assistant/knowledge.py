"""Load and validate the shipped corpus: digests, labels, rule records and the therapy lexicon.

`load_knowledge(corpus_dir)` returns a `Knowledge` (rules as typed records, the lexicon, every
recommendation block and section by reference) or raises `CorpusValidationError` naming the file
and line of the first problem (all problems are attached as `.errors`). `validate_corpus` returns
the full report without raising; `python -m assistant.knowledge [corpus_dir]` prints it and exits
non-zero on errors — the corpus writers run it after every edit.

The rule schema and condition language are documented for clinicians in corpus/README.md; the
pydantic models below are that table in code (extra keys are rejected so typos fail loudly).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from assistant.errors import CorpusValidationError
from assistant.oncology.records import Approval
from assistant.oncology.vocab import OncologyVocab, load_vocab

log = logging.getLogger(__name__)

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
    "MSI-H", "dMMR", "TMB-high", "HRD", "PSMA-PET", "FDG-PET", "PD-L1",
    "HRR",  # a panel reported without gene names ("HRR panel negative")
)  # fmt: skip
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
    def _known_genes(cls, v: list[str]) -> list[str]:
        return [_one_of(g, GENES, "gene/marker") for g in v]

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
    def _known_neg(cls, v: list[str] | None) -> list[str] | None:
        return [_one_of(s, GENES, "gene/marker") for s in v] if v else v

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
def _check_fact(v: str) -> str:
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
        _one_of(tail, GENES, "gene")
        return v
    if head == "tested" and tail:  # tested:<gene>: asked while no result for that gene is known
        _one_of(tail, GENES, "gene")
        return v
    raise ValueError(
        f"unknown fact {v!r}; use one of {', '.join(SCALAR_FACTS)}, site:<site>, lab:<lab>, origin:<gene>, tested:<gene>"
    )


class AskItem(_Strict):
    fact: str
    question: str = Field(min_length=5)

    @field_validator("fact")
    @classmethod
    def _fact(cls, v: str) -> str:
        return _check_fact(v)


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
    def _fact(cls, v: str) -> str:
        return _check_fact(v)


Rule = TherapyRule | WarningRule | QuestionRule


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


# ------------------------------------------------------------------ lexicon
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


@dataclass
class Lexicon:
    """Therapy ids, their classes and every name clinicians use for them."""

    entries: dict[str, LexiconEntry] = field(default_factory=dict)
    by_name: dict[str, str] = field(default_factory=dict)  # lowercased name → id
    class_members: dict[str, set[str]] = field(default_factory=dict)
    _match_cache: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_entries(cls, entries: Iterable[LexiconEntry]) -> Lexicon:
        lex = cls()
        for e in entries:
            lex.entries[e.id] = e
            for c in e.classes:
                lex.class_members.setdefault(c, set()).add(e.id)
            for n in [e.id, *e.names]:
                lex.by_name.setdefault(n.lower(), e.id)
        return lex

    @property
    def classes(self) -> set[str]:
        return set(self.class_members)

    def is_known(self, token: str) -> bool:
        """A therapy id, a class, or a `+` regimen of known ids."""
        if token in self.entries or token in self.class_members:
            return True
        parts = token.split("+")
        return len(parts) > 1 and all(p in self.entries for p in parts)

    def classes_of(self, therapy_id: str) -> list[str]:
        if therapy_id in self.entries:
            return list(self.entries[therapy_id].classes)
        out: list[str] = []
        for part in therapy_id.split("+"):
            if part in self.entries:
                out.extend(c for c in self.entries[part].classes if c not in out)
        return out

    def matches(self, therapy_id: str, token: str) -> bool:
        """Does `therapy_id` (possibly a `+` regimen) count as `token` (an id or a class)?"""
        if therapy_id == token:
            return True
        tokens = self._match_cache.get(therapy_id)
        if tokens is None:
            parts = therapy_id.split("+")
            tokens = frozenset(
                [*parts, *self.classes_of(therapy_id), *(c for p in parts for c in self.classes_of(p))]
            )
            self._match_cache[therapy_id] = tokens
        return token in tokens

    def names_of(self, therapy_id: str) -> list[str]:
        """Every name (generic, brand, abbreviation) of a therapy or of the components of a regimen."""
        if therapy_id in self.entries:
            return list(dict.fromkeys([therapy_id, *self.entries[therapy_id].names]))
        out: list[str] = [therapy_id]
        for part in therapy_id.split("+"):
            if part in self.entries:
                out.extend(self.entries[part].names)
        return list(dict.fromkeys(out))


# ------------------------------------------------------------------ corpus text by reference
@dataclass(frozen=True)
class CorpusRef:
    """A citable unit: a recommendation block (ref = its id) or a section (ref = `<doc>#<slug>`)."""

    ref: str
    doc_id: str
    doc_title: str
    kind: str  # guideline | label | review
    heading_path: tuple[str, ...]
    text: str
    path: str
    line: int
    rec_id: str = ""
    strength: str = ""
    evidence: str = ""
    population: str = ""
    source: str = ""
    url: str = ""
    unverified: bool = False
    last_reviewed: str = ""


@dataclass(frozen=True)
class Digest:
    doc_id: str
    kind: str
    title: str
    path: str
    meta: dict[str, Any]
    slugs: tuple[str, ...]
    rec_ids: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}" if self.line else f"{self.path}: {self.reason}"


@dataclass
class ValidationReport:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Knowledge:
    """Everything the rule engine and the citation renderer need from the corpus."""

    corpus_dir: Path
    rules: list[Rule]
    lexicon: Lexicon
    digests: dict[str, Digest]
    sections_by_ref: dict[str, CorpusRef]
    version: str
    report: ValidationReport
    safety_profiles: list[SafetyProfile] = field(default_factory=list)
    conditions: tuple[str, ...] = DIAGNOSES
    reference_uln: dict[str, float] = field(default_factory=dict)
    approvals: list[Approval] = field(default_factory=list)
    oncology: OncologyVocab | None = None
    _profile_cache: dict[str, list[SafetyProfile]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rules_by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}

    def profiles_for(self, drug: str) -> list[SafetyProfile]:
        """Every safety profile covering a therapy id (by id or by one of its classes); [] when none."""
        hit = self._profile_cache.get(drug)
        if hit is None:
            hit = [
                p for p in self.safety_profiles if any(self.lexicon.matches(drug, tok) for tok in p.applies_to)
            ]
            self._profile_cache[drug] = hit
        return hit

    def text_for(self, ref: str) -> str:
        """The statement or section text a reference points to ('' when unknown)."""
        hit = self.sections_by_ref.get(ref)
        return hit.text if hit else ""

    def resolve(self, ref: str) -> CorpusRef | None:
        return self.sections_by_ref.get(ref)

    def is_unverified(self, refs: Iterable[str]) -> bool:
        return any(self.sections_by_ref[r].unverified for r in refs if r in self.sections_by_ref)


# ------------------------------------------------------------------ YAML with line numbers
class _LineDict(dict):
    line: int = 0
    key_lines: dict[str, int]


class _LineList(list):
    line: int = 0


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present: 5x faster
    """SafeLoader that remembers the 1-based line of every mapping, list and key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
# Dates stay strings so a bad one ("2026-13-01") becomes a located pydantic error, not a crash.
_LineLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", yaml.constructor.SafeConstructor.construct_yaml_str
)


def _yaml_load(text: str, path: str) -> Any:
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 — a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CorpusValidationError(
            path, mark.line + 1 if mark else None, f"invalid YAML: {problem}"
        ) from exc


def _line_at(data: Any, loc: tuple[Any, ...], default: int) -> int:
    """Best line for a pydantic error location: the deepest node along `loc` that knows its line."""
    line = getattr(data, "line", default) or default
    node = data
    for key in loc:
        if isinstance(node, dict):
            k = {"all_": "all", "any_": "any", "not_": "not"}.get(key, key) if isinstance(key, str) else key
            if k in node:
                line = getattr(node, "key_lines", {}).get(str(k), line)
                node = node[k]
                line = getattr(node, "line", line) or line
                continue
            break
        if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
            line = getattr(node, "line", line) or line
            continue
        if isinstance(key, str) and not isinstance(node, dict):
            continue  # pydantic adds model/union tags to locations; skip them
        break
    return line


def _atom_line(node: Any, atom: str, token: str) -> int | None:
    """Line of the `atom: token` entry inside a raw condition tree (so a typo points at its own line)."""
    if isinstance(node, dict):
        value = node.get(atom)
        if value == token or (isinstance(value, list) and token in value):
            return getattr(node, "key_lines", {}).get(atom) or getattr(node, "line", None)
        children = list(node.values())
    elif isinstance(node, list):
        children = list(node)
    else:
        return None
    for child in children:
        hit = _atom_line(child, atom, token)
        if hit:
            return hit
    return None


def _pydantic_problems(exc: ValidationError, data: Any, path: str, what: str) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        shown = ".".join(str(p) for p in loc if not (isinstance(p, str) and p[:1].isupper()))
        shown = shown.replace("all_", "all").replace("any_", "any").replace("not_", "not")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the format; see corpus/README.md)"
        out.append(Problem(path, _line_at(data, loc, getattr(data, "line", 0)), f"{what}: {shown}: {msg}"))
    return out


# ------------------------------------------------------------------ loading
_FRONT_REQUIRED = ("id", "kind", "title", "last_reviewed")
_FRONT_KNOWN = {
    "id", "kind", "title", "issuing_bodies", "sources", "specialty", "topics", "strength_scheme",
    "last_reviewed", "verified_from", "unverified", "drug", "brand_names",
}  # fmt: skip
_REC_REQUIRED = ("id", "strength", "evidence", "population", "source")
_REC_KNOWN = {*_REC_REQUIRED, "url", "unverified", "last_reviewed", "verified_from", "notes"}


def _as_date(value: Any) -> str | None:
    if isinstance(value, _dt.date):
        return value.isoformat()
    try:
        return _dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        return None


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _load_lexicon(corpus_dir: Path, report: ValidationReport) -> Lexicon:
    path = corpus_dir / "lexicon" / "therapies.yaml"
    rel = _rel(path, corpus_dir)
    if not path.exists():
        report.errors.append(Problem(rel, None, "lexicon file is missing"))
        return Lexicon()
    try:
        data = _yaml_load(path.read_text(encoding="utf-8"), rel)
    except CorpusValidationError as exc:
        report.errors.append(Problem(exc.path, exc.line, exc.reason))
        return Lexicon()
    items = data.get("therapies") if isinstance(data, dict) else None
    if not isinstance(items, list):
        report.errors.append(Problem(rel, 1, "lexicon must have a top-level 'therapies:' list"))
        return Lexicon()
    entries: dict[str, LexiconEntry] = {}
    seen_names: dict[str, tuple[str, str]] = {}

    def add(raw: Any, rel: str, merge: bool) -> None:
        line = getattr(raw, "line", 0)
        try:
            entry = LexiconEntry.model_validate(raw)
        except ValidationError as exc:
            report.errors.extend(_pydantic_problems(exc, raw, rel, "lexicon entry"))
            return
        if entry.id in entries:
            if not merge:
                report.errors.append(Problem(rel, line, f"duplicate therapy id {entry.id!r}"))
                return
            # An oncology pack file may re-list a known drug to add names or classes: union, never replace.
            old = entries[entry.id]
            entry = LexiconEntry(
                id=entry.id,
                classes=list(dict.fromkeys([*old.classes, *entry.classes])),
                names=list(dict.fromkeys([*old.names, *entry.names])),
            )
        for name in [entry.id, *entry.names]:
            prev = seen_names.get(name.lower())
            if prev and prev[0] != entry.id:
                report.errors.append(
                    Problem(rel, line, f"name {name!r} of {entry.id!r} already maps to {prev[0]!r} ({prev[1]})")
                )
            seen_names.setdefault(name.lower(), (entry.id, f"{rel}:{line}"))
        entries[entry.id] = entry

    for raw in items:
        add(raw, rel, merge=False)
    # Drugs introduced by the oncology approval pack (corpus/oncology/*.yaml `drugs:`), merged by id.
    from ingest.approval_docs import approval_files

    for path in approval_files(corpus_dir):
        orel = _rel(path, corpus_dir)
        try:
            odata = _yaml_load(path.read_text(encoding="utf-8"), orel)
        except CorpusValidationError as exc:
            report.errors.append(Problem(exc.path, exc.line, exc.reason))
            continue
        drugs = odata.get("drugs") if isinstance(odata, dict) else None
        if drugs is None:
            continue
        if not isinstance(drugs, list):
            report.errors.append(Problem(orel, 1, "'drugs:' must be a list of lexicon entries"))
            continue
        for raw in drugs:
            add(raw, orel, merge=True)
    lex = Lexicon.from_entries(entries.values())
    clash = set(lex.entries) & lex.classes
    for c in sorted(clash):
        # Harmless for matching (a token matches an id or a class), but worth a reviewer's look.
        report.warnings.append(Problem(rel, None, f"{c!r} is both a therapy id and a class"))
    report.counts["therapies"] = len(entries)
    report.counts["therapy_classes"] = len(lex.classes)
    return lex


def load_lexicon(corpus_dir: Path | str) -> Lexicon:
    """Just the therapy lexicon (for the patient-context extractor); raises on an invalid file."""
    report = ValidationReport()
    lex = _load_lexicon(Path(corpus_dir), report)
    if report.errors:
        first = report.errors[0]
        raise CorpusValidationError(first.path, first.line, first.reason)
    return lex


def _load_digest(
    path: Path,
    corpus_dir: Path,
    report: ValidationReport,
    refs: dict[str, CorpusRef],
    digests: dict[str, Digest],
    lexicon: Lexicon,
    *,
    text: str | None = None,
    rel: str | None = None,
) -> None:
    from ingest.markdown import list_headings, parse_front_matter, split_sections

    rel = rel or _rel(path, corpus_dir)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            report.errors.append(Problem(rel, None, f"cannot read: {exc}"))
            return
    try:
        meta, body, first = parse_front_matter(text, source=rel)
    except CorpusValidationError as exc:
        report.errors.append(Problem(exc.path, exc.line, exc.reason))
        return
    except ValueError as exc:  # PyYAML raises ValueError for impossible dates
        report.errors.append(Problem(rel, 1, f"front matter: {exc}"))
        return
    if not meta:
        report.errors.append(Problem(rel, 1, "no YAML front matter (the file must start with '---')"))
        return
    fm_lines = {}
    for i, ln in enumerate(text.split("\n")[:first], start=1):
        m = re.match(r"^([A-Za-z_][\w-]*)\s*:", ln)
        if m:
            fm_lines.setdefault(m.group(1), i)
    for key in _FRONT_REQUIRED:
        if key not in meta or meta[key] in (None, ""):
            report.errors.append(Problem(rel, 1, f"front matter lacks required key {key!r}"))
    for key in sorted(set(meta) - _FRONT_KNOWN):
        report.warnings.append(
            Problem(rel, fm_lines.get(key, 1), f"front matter key {key!r} is not in the format")
        )
    doc_id = str(meta.get("id", "")).strip()
    if doc_id and not _DOC_ID_RE.match(doc_id):
        report.errors.append(
            Problem(rel, fm_lines.get("id", 1), f"document id {doc_id!r} must match [a-z0-9-]")
        )
    if doc_id in digests:
        report.errors.append(
            Problem(
                rel, fm_lines.get("id", 1), f"document id {doc_id!r} already used by {digests[doc_id].path}"
            )
        )
        return
    kind = str(meta.get("kind", "")).strip()
    if kind and kind not in ("guideline", "label", "review"):
        report.errors.append(
            Problem(rel, fm_lines.get("kind", 1), f"kind {kind!r} must be guideline, label or review")
        )
    if "last_reviewed" in meta and _as_date(meta["last_reviewed"]) is None:
        report.errors.append(
            Problem(
                rel,
                fm_lines.get("last_reviewed", 1),
                f"last_reviewed {meta['last_reviewed']!r} is not an ISO date",
            )
        )
    if kind == "label":
        drug = str(meta.get("drug", "")).strip()
        if not drug:
            report.errors.append(Problem(rel, 1, "a label digest needs 'drug:' (canonical therapy id)"))
        elif lexicon.entries and not lexicon.is_known(drug):
            report.errors.append(
                Problem(rel, fm_lines.get("drug", 1), f"drug {drug!r} is not a therapy id in the lexicon")
            )
    if not isinstance(meta.get("sources", []), list) or not meta.get("sources"):
        report.errors.append(
            Problem(rel, fm_lines.get("sources", 1), "front matter needs a non-empty 'sources:' list")
        )
    if not doc_id:
        return
    title = str(meta.get("title", ""))
    last_reviewed = _as_date(meta.get("last_reviewed")) or ""
    doc_unverified = bool(meta.get("unverified", False))

    slugs: dict[str, int] = {}
    for h in list_headings(body, first):
        if h.slug in slugs:
            report.errors.append(
                Problem(
                    rel,
                    h.line,
                    f"heading slug {h.slug!r} repeats line {slugs[h.slug]} (slugs must be unique in a document)",
                )
            )
        else:
            slugs[h.slug] = h.line
    try:
        sections = split_sections(doc_id, body, first, source=rel)
    except CorpusValidationError as exc:
        report.errors.append(Problem(exc.path, exc.line, exc.reason))
        return
    rec_ids: list[str] = []
    by_slug: dict[str, list[str]] = {}
    slug_paths: dict[str, tuple[str, ...]] = {}
    for s in sections:
        line = getattr(s, "line", 0) or None
        if s.slug:
            slug_paths.setdefault(s.slug, s.heading_path)
            if s.text and not s.rec_id:
                by_slug.setdefault(s.slug, []).append(s.text)
        header = dict(getattr(s, "rec_header", ()) or ())
        is_rec = bool(header) or bool(s.rec_id)
        if not is_rec:
            continue
        for key in _REC_REQUIRED:
            if not header.get(key, getattr(s, {"id": "rec_id", "source": "rec_source"}.get(key, key), "")):
                report.errors.append(Problem(rel, line, f"recommendation block lacks {key!r}"))
        for key in sorted(set(header) - _REC_KNOWN):
            report.warnings.append(
                Problem(rel, line, f"recommendation header key {key!r} is not in the format")
            )
        if "last_reviewed" in header and _as_date(header["last_reviewed"]) is None:
            report.errors.append(
                Problem(rel, line, f"last_reviewed {header['last_reviewed']!r} is not an ISO date")
            )
        if not s.text.strip():
            report.errors.append(
                Problem(rel, line, f"recommendation {s.rec_id or '?'} has no statement text")
            )
        if not s.rec_id:
            continue
        if not _ID_RE.match(s.rec_id):
            report.errors.append(
                Problem(rel, line, f"recommendation id {s.rec_id!r} must have no spaces or '#'")
            )
        if s.rec_id in refs:
            prev = refs[s.rec_id]
            report.errors.append(
                Problem(rel, line, f"recommendation id {s.rec_id!r} already used at {prev.path}:{prev.line}")
            )
            continue
        rec_ids.append(s.rec_id)
        if s.slug:
            by_slug.setdefault(s.slug, []).append(s.text)
        refs[s.rec_id] = CorpusRef(
            ref=s.rec_id,
            doc_id=doc_id,
            doc_title=title,
            kind=kind,
            heading_path=s.heading_path,
            text=s.text,
            path=rel,
            line=line or 0,
            rec_id=s.rec_id,
            strength=s.strength,
            evidence=s.evidence,
            population=s.population,
            source=s.rec_source,
            url=getattr(s, "rec_url", "") or _first_url(meta),
            unverified=s.unverified or doc_unverified,
            last_reviewed=last_reviewed,
        )
    for slug, line in slugs.items():
        ref = f"{doc_id}#{slug}"
        refs[ref] = CorpusRef(
            ref=ref,
            doc_id=doc_id,
            doc_title=title,
            kind=kind,
            heading_path=slug_paths.get(slug, ()),
            text="\n\n".join(by_slug.get(slug, [])),
            path=rel,
            line=line,
            url=_first_url(meta),
            unverified=doc_unverified,
            last_reviewed=last_reviewed,
        )
    digests[doc_id] = Digest(doc_id, kind, title, rel, dict(meta), tuple(slugs), tuple(rec_ids))
    report.counts["labels" if kind == "label" else "digests"] = (
        report.counts.get("labels" if kind == "label" else "digests", 0) + 1
    )
    report.counts["recommendations"] = report.counts.get("recommendations", 0) + len(rec_ids)


def _first_url(meta: dict[str, Any]) -> str:
    for src in meta.get("sources") or []:
        if isinstance(src, dict) and src.get("url"):
            return str(src["url"])
    return ""


def _load_rule_file(
    path: Path, corpus_dir: Path, report: ValidationReport, context: dict[str, Any] | None = None
) -> list[tuple[Rule, Any, str]]:
    rel = _rel(path, corpus_dir)
    try:
        data = _yaml_load(path.read_text(encoding="utf-8"), rel)
    except CorpusValidationError as exc:
        report.errors.append(Problem(exc.path, exc.line, exc.reason))
        return []
    if data is None:
        report.warnings.append(Problem(rel, None, "empty rule file"))
        return []
    if not isinstance(data, dict) or set(data) != {"rules"} or not isinstance(data["rules"], list):
        report.errors.append(
            Problem(rel, 1, "a rule file is one top-level key 'rules:' holding a list of records")
        )
        return []
    out = []
    for raw in data["rules"]:
        line = getattr(raw, "line", 0) or None
        if not isinstance(raw, dict):
            report.errors.append(Problem(rel, line, "each rule record must be a mapping"))
            continue
        model = _RULE_TYPES.get(str(raw.get("type")))
        if model is None:
            report.errors.append(
                Problem(
                    rel,
                    line,
                    f"rule {raw.get('id', '?')}: type must be therapy, warning or question, got {raw.get('type')!r}",
                )
            )
            continue
        try:
            rule = model.model_validate(raw, context=context)
        except ValidationError as exc:
            report.errors.extend(_pydantic_problems(exc, raw, rel, f"rule {raw.get('id', '?')}"))
            continue
        out.append((rule, raw, rel))
    return out


def _load_clinical(corpus_dir: Path, report: ValidationReport) -> tuple[tuple[str, ...], dict[str, float]]:
    """Condition ids and reference ULNs from lexicon/clinical.yaml (built-in ids when the file is absent)."""
    path = corpus_dir / "lexicon" / "clinical.yaml"
    if not path.exists():
        return DIAGNOSES, {}
    rel = _rel(path, corpus_dir)
    try:
        data = _yaml_load(path.read_text(encoding="utf-8"), rel)
    except CorpusValidationError as exc:
        report.errors.append(Problem(exc.path, exc.line, exc.reason))
        return DIAGNOSES, {}
    ids: list[str] = []
    for item in (data or {}).get("conditions") or []:
        line = getattr(item, "line", None)
        cid = str(item.get("id", "")) if isinstance(item, dict) else ""
        if not re.match(r"^[a-z0-9][a-z0-9_]*$", cid):
            report.errors.append(Problem(rel, line, f"condition id {cid!r} must be lowercase letters, digits, '_'"))
            continue
        if cid in ids:
            report.errors.append(Problem(rel, line, f"condition id {cid!r} repeats"))
            continue
        for pat in item.get("patterns") or []:
            try:
                re.compile(str(pat))
            except re.error as exc:
                report.errors.append(Problem(rel, line, f"condition {cid}: bad pattern ({exc})"))
        ids.append(cid)
    uln: dict[str, float] = {}
    for name, spec in ((data or {}).get("reference_uln") or {}).items():
        value = spec.get("value") if isinstance(spec, dict) else spec
        try:
            uln[str(name)] = float(value)
        except (TypeError, ValueError):
            report.errors.append(Problem(rel, None, f"reference_uln {name}: value must be a number"))
    report.counts["conditions"] = len(ids)
    return tuple(ids) or DIAGNOSES, uln


# Procedures need no drug label; every other therapy a rule can offer must have a safety profile.
_PROCEDURE_CLASSES = frozenset({"radiation_therapy", "surgery", "surgical_castration", "procedure"})


def _load_safety(
    corpus_dir: Path,
    report: ValidationReport,
    lexicon: Lexicon,
    refs: dict[str, CorpusRef],
    digests: dict[str, Digest],
    context: dict[str, Any],
) -> list[SafetyProfile]:
    from ingest.safety_docs import render_profile, safety_files

    names = {tid: e.names[0] for tid, e in lexicon.entries.items() if e.names}
    profiles: list[SafetyProfile] = []
    seen: dict[str, str] = {}
    for path in safety_files(corpus_dir):
        rel = _rel(path, corpus_dir)
        try:
            data = _yaml_load(path.read_text(encoding="utf-8"), rel)
        except CorpusValidationError as exc:
            report.errors.append(Problem(exc.path, exc.line, exc.reason))
            continue
        if not isinstance(data, dict) or set(data) != {"profiles"} or not isinstance(data["profiles"], list):
            report.errors.append(Problem(rel, 1, "a safety file is one top-level key 'profiles:' holding a list"))
            continue
        for raw in data["profiles"]:
            line = getattr(raw, "line", 0) or None
            try:
                prof = SafetyProfile.model_validate(raw, context=context)
            except ValidationError as exc:
                pid = raw.get("id", "?") if isinstance(raw, dict) else "?"
                report.errors.extend(_pydantic_problems(exc, raw, rel, f"profile {pid}"))
                continue
            if prof.id in seen:
                report.errors.append(Problem(rel, line, f"profile id {prof.id!r} already used in {seen[prof.id]}"))
                continue
            seen[prof.id] = f"{rel}:{line}"
            if lexicon.entries:
                for tok in [*prof.applies_to]:
                    if not lexicon.is_known(tok):
                        report.errors.append(
                            Problem(rel, line, f"profile {prof.id}: applies_to {tok!r} is not a therapy id or class")
                        )
                for chk in [*prof.contraindicated, *prof.caution]:
                    for node in chk.when.walk():
                        for atom in _THERAPY_ATOMS:
                            for tok in getattr(node, atom) or []:
                                if not lexicon.is_known(tok):
                                    report.errors.append(
                                        Problem(
                                            rel,
                                            _atom_line(raw, atom, tok) or line,
                                            f"profile {prof.id} check {chk.id}: {atom} {tok!r} is not a therapy id or class",
                                        )
                                    )
            # The rendered label-safety digest: its blocks become citable refs (and are what ingest indexes).
            _load_digest(path, corpus_dir, report, refs, digests, lexicon, text=render_profile(raw, names), rel=f"{rel}#{prof.id}")
            for c in prof.cite:
                if c not in refs:
                    report.errors.append(Problem(rel, line, f"profile {prof.id}: cite {c!r} resolves to nothing"))
            profiles.append(prof)
    report.counts["safety_profiles"] = len(profiles)
    report.counts["safety_checks"] = sum(len(p.contraindicated) + len(p.caution) for p in profiles)
    return profiles


def _load_approvals(
    corpus_dir: Path,
    report: ValidationReport,
    lexicon: Lexicon,
    refs: dict[str, CorpusRef],
    digests: dict[str, Digest],
) -> tuple[list[Approval], OncologyVocab | None]:
    """FDA biomarker-directed approval records (corpus/oncology/*.yaml): validated against the oncology vocabulary
    and the therapy lexicon, rendered as citable digest blocks (the same text ingest indexes)."""
    from ingest.approval_docs import approval_files, render_approvals

    files = approval_files(corpus_dir)
    try:
        vocab = load_vocab(corpus_dir)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        report.errors.append(Problem("lexicon/oncology.yaml", None, f"oncology vocabulary unreadable: {exc}"))
        return [], None
    if files and vocab is None:
        report.errors.append(Problem("lexicon/oncology.yaml", None, "oncology/ records need lexicon/oncology.yaml"))
        return [], None
    if vocab is None:
        return [], None
    context = {
        "tumours": set(vocab.tumours),
        "histologies": set(vocab.histologies),
        "markers": set(vocab.markers),
        "settings": set(vocab.settings),
    }
    names = {tid: e.names[0] for tid, e in lexicon.entries.items() if e.names}
    out: list[Approval] = []
    seen: dict[str, str] = {}
    for path in files:
        rel = _rel(path, corpus_dir)
        try:
            data = _yaml_load(path.read_text(encoding="utf-8"), rel)
        except CorpusValidationError as exc:
            report.errors.append(Problem(exc.path, exc.line, exc.reason))
            continue
        if not isinstance(data, dict) or not set(data) <= {"drugs", "approvals"}:
            report.errors.append(Problem(rel, 1, "an oncology file has the top-level keys 'drugs:' and 'approvals:' only"))
            continue
        raws = data.get("approvals") or []
        if not isinstance(raws, list):
            report.errors.append(Problem(rel, 1, "'approvals:' must be a list"))
            continue
        good_raw: list[Any] = []
        for raw in raws:
            line = getattr(raw, "line", 0) or None
            try:
                rec = Approval.model_validate(raw, context=context)
            except ValidationError as exc:
                aid = raw.get("id", "?") if isinstance(raw, dict) else "?"
                report.errors.extend(_pydantic_problems(exc, raw, rel, f"approval {aid}"))
                continue
            if rec.id in seen:
                report.errors.append(Problem(rel, line, f"approval id {rec.id!r} already used in {seen[rec.id]}"))
                continue
            seen[rec.id] = f"{rel}:{line}"
            bad = [t for t in [*rec.regimen, *rec.after, *rec.not_after] if not lexicon.is_known(t)]
            if bad and lexicon.entries:
                report.errors.append(
                    Problem(rel, line, f"approval {rec.id}: {bad} not a therapy id or class (add it under 'drugs:')")
                )
                continue
            out.append(rec)
            good_raw.append(raw)
        if good_raw:
            text = render_approvals(path, good_raw, names)
            _load_digest(path, corpus_dir, report, refs, digests, lexicon, text=text, rel=f"{rel}#approvals")
    report.counts["oncology_approvals"] = len(out)
    return out, vocab


def offered_drugs(rule: TherapyRule) -> list[str]:
    """The drugs a therapy rule can put in front of a patient: its therapy's `+` components and its `drugs`."""
    return list(dict.fromkeys([*rule.therapy.split("+"), *rule.drugs]))


def _check_safety_coverage(
    rules: list[Rule],
    profiles: list[SafetyProfile],
    lexicon: Lexicon,
    report: ValidationReport,
    approvals: Iterable[Approval] = (),
) -> None:
    """Every drug a therapy rule or an approval record can offer is covered by a safety profile (procedures excepted)."""
    if not profiles or not lexicon.entries:
        return
    missing: dict[str, list[str]] = {}
    offers: list[tuple[str, list[str]]] = [(r.id, offered_drugs(r)) for r in rules if isinstance(r, TherapyRule)]
    offers += [(a.id, list(a.regimen)) for a in approvals]
    for rid, drugs in offers:
        for drug in drugs:
            if set(lexicon.classes_of(drug)) & _PROCEDURE_CLASSES:
                continue
            if not any(lexicon.matches(drug, tok) for p in profiles for tok in p.applies_to):
                missing.setdefault(drug, []).append(rid)
    for drug, rule_ids in sorted(missing.items()):
        report.errors.append(
            Problem(
                "corpus/safety",
                None,
                f"no safety profile covers {drug!r} (offered by {', '.join(rule_ids[:3])}"
                f"{' …' if len(rule_ids) > 3 else ''}); add one to corpus/safety/",
            )
        )


def _check_rule_refs(
    rule: Rule, raw: Any, rel: str, refs: dict[str, CorpusRef], lexicon: Lexicon, report: ValidationReport
) -> None:
    def where(*keys: Any) -> int:
        return _line_at(raw, keys, getattr(raw, "line", 0))

    def check_cites(cites: list[str], *keys: Any) -> None:
        for c in cites:
            if c in refs:
                continue
            m = _REF_RE.match(c)
            hint = ""
            if m and any(r.doc_id == m["doc"] for r in refs.values()):
                hint = f" (document {m['doc']!r} exists; no heading with slug {m['slug']!r})"
            elif m:
                hint = f" (no document with id {m['doc']!r})"
            report.errors.append(
                Problem(rel, where(*keys), f"rule {rule.id}: cite {c!r} resolves to nothing{hint}")
            )

    check_cites(rule.cite, "cite")
    lex_ready = bool(lexicon.entries)

    def check_token(token: str, what: str, *keys: Any) -> None:
        if lex_ready and not lexicon.is_known(token):
            subtree = raw
            for k in keys:
                subtree = (
                    subtree[k]
                    if isinstance(subtree, (dict, list))
                    and (
                        (isinstance(subtree, dict) and k in subtree)
                        or (isinstance(subtree, list) and isinstance(k, int))
                    )
                    else subtree
                )
            report.errors.append(
                Problem(
                    rel,
                    _atom_line(subtree, what, token) or where(*keys),
                    f"rule {rule.id}: {what} {token!r} is not a therapy id or class in the lexicon",
                )
            )

    def check_condition(cond: Condition | None, *keys: Any) -> None:
        if cond is None:
            return
        for node in cond.walk():
            for atom in _THERAPY_ATOMS:
                for token in getattr(node, atom) or []:
                    check_token(token, atom, *keys)

    if isinstance(rule, TherapyRule):
        check_token(rule.therapy, "therapy", "therapy")
        if lex_ready and rule.therapy not in lexicon.entries and "+" in rule.therapy:
            report.warnings.append(
                Problem(
                    rel,
                    where("therapy"),
                    f"rule {rule.id}: regimen {rule.therapy!r} is not in the lexicon (components are)",
                )
            )
        for i, d in enumerate(rule.drugs):
            check_token(d, "drug", "drugs", i)
        check_condition(rule.applies_when, "applies_when")
        check_condition(rule.population, "population")
        check_condition(rule.eligible_when, "eligible_when")
        for i, ex in enumerate(rule.exclusions):
            check_condition(ex.when, "exclusions", i, "when")
            check_cites(ex.cite, "exclusions", i, "cite")
    elif isinstance(rule, WarningRule):
        check_condition(rule.when, "when")
        if rule.therapy:
            check_token(rule.therapy, "therapy", "therapy")
    else:
        check_condition(rule.when, "when")


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every file that makes up the corpus version (Markdown, YAML), sorted."""
    return sorted(
        p
        for p in corpus_dir.rglob("*")
        if p.is_file() and p.suffix in (".md", ".yaml", ".yml") and p.name != "README.md"
    )


def corpus_version(corpus_dir: Path) -> str:
    """Short hash over every corpus file's path and bytes: changes when any rule or digest changes."""
    h = hashlib.sha256()
    for p in corpus_files(corpus_dir):
        h.update(str(p.relative_to(corpus_dir)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _build(corpus_dir: Path) -> tuple[Knowledge, ValidationReport]:
    corpus_dir = Path(corpus_dir).resolve()
    report = ValidationReport()
    if not corpus_dir.is_dir():
        report.errors.append(Problem(str(corpus_dir), None, "corpus folder does not exist"))
        return Knowledge(corpus_dir, [], Lexicon(), {}, {}, "", report), report
    lexicon = _load_lexicon(corpus_dir, report)
    conditions, reference_uln = _load_clinical(corpus_dir, report)
    context = {"conditions": conditions}
    refs: dict[str, CorpusRef] = {}
    digests: dict[str, Digest] = {}
    md_files = sorted((corpus_dir / "guidelines").rglob("*.md")) + sorted(
        (corpus_dir / "labels").rglob("*.md")
    )
    for path in md_files:
        _load_digest(path, corpus_dir, report, refs, digests, lexicon)
    profiles = _load_safety(corpus_dir, report, lexicon, refs, digests, context)
    approvals, onc_vocab = _load_approvals(corpus_dir, report, lexicon, refs, digests)
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    loaded = []
    for path in sorted((corpus_dir / "rules").rglob("*.y*ml")):
        loaded.extend(_load_rule_file(path, corpus_dir, report, context))
    for rule, raw, rel in loaded:
        line = getattr(raw, "line", 0) or None
        if rule.id in seen:
            report.errors.append(Problem(rel, line, f"rule id {rule.id!r} already used in {seen[rule.id]}"))
            continue
        seen[rule.id] = f"{rel}:{line}"
        _check_rule_refs(rule, raw, rel, refs, lexicon, report)
        if isinstance(rule, TherapyRule):
            ex_ids = [e.id for e in rule.exclusions]
            for dup in {e for e in ex_ids if ex_ids.count(e) > 1}:
                report.errors.append(Problem(rel, line, f"rule {rule.id}: exclusion id {dup!r} repeats"))
        rules.append(rule)
    for t in ("therapy", "warning", "question"):
        report.counts[f"rules_{t}"] = sum(1 for r in rules if r.type == t)
    report.counts["rules"] = len(rules)
    report.counts.setdefault("digests", 0)
    report.counts.setdefault("labels", 0)
    report.counts.setdefault("recommendations", 0)
    _check_safety_coverage(rules, profiles, lexicon, report, approvals)
    know = Knowledge(
        corpus_dir, rules, lexicon, digests, refs, corpus_version(corpus_dir), report,
        safety_profiles=profiles, conditions=conditions, reference_uln=reference_uln,
        approvals=approvals, oncology=onc_vocab,
    )
    return know, report


def validate_corpus(corpus_dir: Path | str) -> ValidationReport:
    """Validate everything and return the report (never raises for content problems)."""
    return _build(Path(corpus_dir))[1]


def load_knowledge(corpus_dir: Path | str) -> Knowledge:
    """Load and validate the corpus; raise `CorpusValidationError` (file:line of the first problem) if invalid."""
    know, report = _build(Path(corpus_dir))
    if report.errors:
        first = report.errors[0]
        more = (
            f" (and {len(report.errors) - 1} more problem(s); run `python -m assistant.knowledge`)"
            if len(report.errors) > 1
            else ""
        )
        exc = CorpusValidationError(first.path, first.line, first.reason + more)
        exc.errors = list(report.errors)  # type: ignore[attr-defined]
        raise exc
    for w in report.warnings:
        log.warning("corpus: %s", w)
    return know


def format_report(report: ValidationReport, corpus_dir: Path | str) -> str:
    c = report.counts
    lines = [
        f"corpus: {corpus_dir}",
        f"  digests: {c.get('digests', 0)}   labels: {c.get('labels', 0)}   recommendation blocks: {c.get('recommendations', 0)}",
        f"  rules: {c.get('rules', 0)} (therapy {c.get('rules_therapy', 0)}, warning {c.get('rules_warning', 0)}, "
        f"question {c.get('rules_question', 0)})   lexicon: {c.get('therapies', 0)} therapies, {c.get('therapy_classes', 0)} classes",
        f"  safety profiles: {c.get('safety_profiles', 0)} ({c.get('safety_checks', 0)} checks)   conditions: {c.get('conditions', 0)}",
    ]
    for w in report.warnings:
        lines.append(f"WARNING {w}")
    for e in report.errors:
        lines.append(f"ERROR {e}")
    lines.append(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: python -m assistant.knowledge [CORPUS_DIR]   — validate the corpus and print a report\n"
            "       python -m assistant.knowledge review [--out review.md] [CORPUS_DIR]   — clinician review sheet"
        )
        return 0
    from assistant.settings import PROJECT_ROOT

    if args and args[0] == "review":
        from assistant.review import review_sheet

        rest = args[1:]
        out: str | None = None
        if "--out" in rest:
            i = rest.index("--out")
            if i + 1 >= len(rest):
                print("review: --out needs a file name", file=sys.stderr)
                return 2
            out = rest[i + 1]
            rest = rest[:i] + rest[i + 2 :]
        corpus_dir = Path(rest[0]) if rest else PROJECT_ROOT / "corpus"
        try:
            know = load_knowledge(corpus_dir)
        except CorpusValidationError as exc:
            print(f"review: the corpus is invalid — {exc}", file=sys.stderr)
            return 1
        sheet = review_sheet(know)
        if out:
            Path(out).write_text(sheet, encoding="utf-8")
            print(f"wrote {out}: {len(know.rules)} rules, {len(know.safety_profiles)} safety profiles")
        else:
            print(sheet)
        return 0

    corpus_dir = Path(args[0]) if args else PROJECT_ROOT / "corpus"
    report = validate_corpus(corpus_dir)
    print(format_report(report, corpus_dir))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
