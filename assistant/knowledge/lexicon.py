"""The therapy lexicon: therapy ids, their classes and every name clinicians use for them.

Read from corpus/lexicon/therapies.yaml, with the drugs the oncology approval pack introduces
(corpus/oncology/*.yaml `drugs:`) merged in by id. The patient-context extractor, the rule engine, the safety
pass and the validator all resolve drug names and classes through one `Lexicon`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from assistant.errors import CorpusValidationError
from assistant.knowledge.records import Problem, ValidationReport
from assistant.knowledge.schema import LexiconEntry
from assistant.knowledge.yaml_lines import _pydantic_problems, _rel, _yaml_load


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
