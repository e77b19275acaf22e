"""What loading the corpus produces besides the typed rules: citable units, digests, and the validation report.

`loaders` fills these while it reads the corpus; `Knowledge` (the package's result) holds them; the citation
renderer resolves a cited reference to a `CorpusRef`; `validate` adds `Problem`s to the `ValidationReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

