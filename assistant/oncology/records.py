"""FDA biomarker-directed approval records (corpus/oncology/*.yaml), validated.

One record = one labelled indication of one regimen: tumour, biomarkers, setting, line, required/excluded prior
therapy, the drugs given together, and the label it comes from. The knowledge loader validates every id against
the oncology vocabulary and the therapy lexicon, renders the records as citable digest blocks (ingest/approval_docs)
and hands them to the matcher.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# Biomarker value grammar (corpus/README.md, "2e"): a variant, a kind, a status/category or a threshold.
_VARIANT = re.compile(r"^[A-Z]\d{1,4}(?:[A-Z*]|del|ins|fs)?$")  # L858R, G12C, V600 (any V600), R132, T315I
KINDS = frozenset(
    {"exon19_del", "exon20_ins", "exon14_skipping", "fusion", "amplification", "ITD", "TKD", "mutation", "uncommon",
     "loss"}
)
STATUSES = frozenset({"positive", "negative", "wild_type", "deficient", "high", "low", "ultralow", "zero"})
_THRESHOLD = re.compile(r"^(tps|cps|ps|tmb|ihc)\s*(>=|>|<=|<)\s*(\d+(?:\.\d+)?)$")


def parse_threshold(token: str) -> tuple[str, str, float] | None:
    m = _THRESHOLD.match(token)
    return (m.group(1), m.group(2), float(m.group(3))) if m else None


def token_kind(token: str) -> str | None:
    """'variant' | 'kind' | 'status' | 'threshold', or None when the token is not in the grammar."""
    if token in KINDS:
        return "kind"
    if token in STATUSES:
        return "status"
    if parse_threshold(token):
        return "threshold"
    if _VARIANT.match(token):
        return "variant"
    return None


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    tumour: str
    histology: list[str] = Field(default_factory=list)
    biomarkers: dict[str, list[str]] = Field(default_factory=dict)
    origin: dict[str, Literal["germline", "somatic"]] = Field(default_factory=dict)
    biomarkers_not: dict[str, list[str]] = Field(
        default_factory=dict, description="Results that rule the record out (BCR_ABL1: [T315I] for 2nd-gen TKIs)"
    )
    not_tumours: list[str] = Field(default_factory=list, description="Tumours a tumour-agnostic label excludes")
    age_min: float | None = Field(None, description="Youngest age (years) the label covers")
    age_max: float | None = Field(None, description="Oldest age (years) the indication is for (paediatric-only)")
    setting: list[str] = Field(default_factory=list)
    line: Literal["first", "later", "any"] = "any"
    after: list[str] = Field(default_factory=list)
    not_after: list[str] = Field(default_factory=list)
    regimen: list[str]
    partners_note: str = ""
    finding: Literal["recommend", "consider"] = "recommend"
    preference: int = Field(2, ge=1, le=9)
    approved: str = ""
    label: str
    url: str = ""
    companion_diagnostic: str = ""
    summary: str
    strength: str = "FDA-approved indication"
    trial: str = ""
    verified_from: str = ""
    unverified: bool = False
    last_reviewed: str = ""
    title: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.match(r"^ONC-[A-Z0-9][A-Z0-9-]*$", v):
            raise ValueError(f"approval id {v!r} must look like ONC-<TUMOUR>-<MARKER>-<DRUG>-<SETTING> (A-Z, 0-9, -)")
        return v

    @field_validator("approved", "last_reviewed", mode="before")
    @classmethod
    def _date(cls, v: Any) -> str:
        return "" if v is None else str(v)

    @field_validator("biomarkers", "biomarkers_not", mode="before")
    @classmethod
    def _marker_lists(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): ([x] if isinstance(x, str) else list(x or [])) for k, x in v.items()}
        return v if v is not None else {}

    @field_validator("biomarkers", "biomarkers_not")
    @classmethod
    def _grammar(cls, v: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        markers = (info.context or {}).get("markers")
        for key, tokens in v.items():
            if markers is not None and key not in markers:
                raise ValueError(f"marker {key!r} is not in corpus/lexicon/oncology.yaml markers")
            if not tokens:
                raise ValueError(f"marker {key!r} lists no value")
            bad = [t for t in tokens if token_kind(str(t)) is None]
            if bad:
                raise ValueError(f"marker {key!r}: value(s) {bad} are not in the biomarker grammar (corpus/README.md 2e)")
        return {k: [str(t) for t in ts] for k, ts in v.items()}

    @field_validator("tumour")
    @classmethod
    def _tumour(cls, v: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("tumours")
        if known is not None and v not in known:
            raise ValueError(f"tumour {v!r} is not in corpus/lexicon/oncology.yaml tumours")
        return v

    @field_validator("not_tumours")
    @classmethod
    def _not_tumours(cls, v: list[str], info: ValidationInfo) -> list[str]:
        known = (info.context or {}).get("tumours")
        bad = [t for t in v if known is not None and t not in known]
        if bad:
            raise ValueError(f"not_tumours {bad} not in corpus/lexicon/oncology.yaml tumours")
        return v

    @field_validator("histology")
    @classmethod
    def _histology(cls, v: list[str], info: ValidationInfo) -> list[str]:
        known = (info.context or {}).get("histologies")
        bad = [h for h in v if known is not None and h not in known]
        if bad:
            raise ValueError(f"histology {bad} not in corpus/lexicon/oncology.yaml histologies")
        return v

    @field_validator("setting")
    @classmethod
    def _setting(cls, v: list[str], info: ValidationInfo) -> list[str]:
        known = (info.context or {}).get("settings")
        bad = [s for s in v if known is not None and s not in known]
        if bad:
            raise ValueError(f"setting {bad} not in corpus/lexicon/oncology.yaml settings")
        return v

    @field_validator("summary", "label")
    @classmethod
    def _text(cls, v: str) -> str:
        v = " ".join(str(v).split())
        if not v:
            raise ValueError("must not be empty")
        return v

    @model_validator(mode="after")
    def _regimen(self) -> Approval:
        if not self.regimen:
            raise ValueError("regimen names no drug")
        # every record says where it comes from and when it was last checked (corpus/README.md, review checklist)
        if not (self.url and self.verified_from and self.last_reviewed and self.approved):
            raise ValueError("a record needs url, verified_from, approved and last_reviewed")
        for key in self.origin:
            if key not in self.biomarkers:
                raise ValueError(f"origin given for {key!r}, which is not among the biomarkers")
        return self

    @property
    def therapy(self) -> str:
        """The regimen as one therapy id (components joined with '+', the lexicon's regimen convention)."""
        return "+".join(self.regimen)

    def heading(self, names: dict[str, str] | None = None) -> str:
        """A short title: drugs, tumour, biomarker, setting."""
        if self.title:
            return self.title
        names = names or {}
        drugs = " + ".join(names.get(d, d.replace("_", " ")) for d in self.regimen)
        marker = "; ".join(f"{k} {'/'.join(v)}" for k, v in self.biomarkers.items())
        where = ", ".join(s.replace("_", " ") for s in self.setting)
        line = {"first": ", first line", "later": ", after prior therapy"}.get(self.line, "")
        tumour = self.tumour.replace("_", " ")
        return f"{drugs} — {tumour}{' (' + marker + ')' if marker else ''}{', ' + where if where else ''}{line}"
