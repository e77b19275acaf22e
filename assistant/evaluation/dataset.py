"""The evaluation Q&A file (DESIGN.md "Q&A file format"): typed cases, loaded and checked line by line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.errors import ConfigError


class _Record(BaseModel):
    # unknown keys are kept (extra="allow") so richer Q&A files (tags, notes) still load
    model_config = ConfigDict(extra="allow", frozen=True)


class Turn(_Record):
    role: Literal["user", "assistant"]
    content: str


class KeyPoint(_Record):
    """A must-have / nice-to-have point: covered when any keyword phrase appears in the answer."""

    point: str = ""
    keywords: list[str] = Field(default_factory=list)

    @field_validator("keywords")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not [k for k in v if k.strip()]:
            raise ValueError("a point needs at least one non-empty keyword phrase")
        return v


class ForbiddenClaim(_Record):
    """A claim the answer must not make: hit when a keyword phrase appears in a sentence that does not negate it."""

    claim: str = ""
    keywords: list[str] = Field(default_factory=list)

    @field_validator("keywords")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not [k for k in v if k.strip()]:
            raise ValueError("a forbidden claim needs at least one non-empty keyword phrase")
        return v


class QACase(_Record):
    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    patient: str | None = None
    history: list[Turn] = Field(default_factory=list)
    must_have: list[KeyPoint] = Field(default_factory=list)
    nice_to_have: list[KeyPoint] = Field(default_factory=list)
    forbidden: list[ForbiddenClaim] = Field(default_factory=list)
    expect_abstain: bool = False
    gold_therapies: list[list[str]] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    # safety set (eval/safety.jsonl): therapy ids, names or classes that must not be *offered* to this patient,
    # and options of which at least one must be offered ("offered" is defined in assistant/evaluation/offers.py)
    must_not_offer: list[str] = Field(default_factory=list)
    should_offer_any: list[str] = Field(default_factory=list)

    @field_validator("must_not_offer", "should_offer_any")
    @classmethod
    def _no_blank_therapy(cls, v: list[str]) -> list[str]:
        if any(not t.strip() for t in v):
            raise ValueError("therapy entries must be non-empty names, ids or classes")
        return v


def load_cases(path: Path, limit: int | None = None) -> list[QACase]:
    """Read a Q&A JSONL file. Blank lines and `//` comment lines are skipped; a bad line raises with its number."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Q&A file not found: {path}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    cases: list[QACase] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            case = QACase.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ConfigError(f"{path}:{lineno}: invalid Q&A case: {exc}") from exc
        if case.id in seen:
            raise ConfigError(f"{path}:{lineno}: duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise ConfigError(f"{path}: no Q&A cases")
    return cases[:limit] if limit else cases


def input_digest(case: QACase) -> str:
    """What the system was asked (question, patient, history): answers stay valid while only scoring keys change."""
    payload = json.dumps([case.question, case.patient, [t.model_dump() for t in case.history]], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
