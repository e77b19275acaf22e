"""Therapy detection in answer text: which therapies an answer names, and which it recommends.

"Recommended" is a text heuristic (documented in eval/README.md) so that GuideRail and the naive baseline are
scored the same way: a therapy counts as recommended when it is named in a clause that carries no negation cue,
is not preceded by a history cue ("after abiraterone", "progressed on docetaxel"), and does not sit under an
exclusion heading ("Not recommended", "Avoid").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant.evaluation.textmatch import (
    CONDITIONAL_CUES,
    Sentence,
    any_phrase,
    clause_negated,
    normalize,
    phrase_positions,
    preceded_by_history,
)

# Therapies that accompany almost every prostate answer (continuing ADT, the steroid given with abiraterone):
# naming them is not a treatment choice, so therapy precision ignores them unless a gold set lists them.
BACKGROUND_CLASSES: frozenset[str] = frozenset(
    {"ADT", "GnRH_agonist", "GnRH_antagonist", "surgical_castration", "corticosteroid"}
)


@dataclass(frozen=True)
class TherapyLexicon:
    """Normalised name → canonical therapy id; regimen ids ("a+b") expand to their components."""

    names: tuple[tuple[tuple[str, ...], str], ...]  # (name tokens, id), longest first
    classes: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: Iterable[dict]) -> TherapyLexicon:
        pairs: dict[tuple[str, ...], str] = {}
        classes: dict[str, frozenset[str]] = {}
        for e in entries:
            tid = str(e["id"])
            classes[tid] = frozenset(e.get("classes", []))
            for name in [tid.replace("_", " "), *e.get("names", [])]:
                toks = tuple(normalize(str(name)).split())
                if toks:
                    pairs.setdefault(toks, tid)
        ordered = tuple(sorted(pairs.items(), key=lambda kv: (-len(kv[0]), kv[0])))
        return cls(names=ordered, classes=classes)

    @classmethod
    def load(cls, corpus_dir: Path) -> TherapyLexicon:
        path = Path(corpus_dir) / "lexicon" / "therapies.yaml"
        if not path.is_file():
            return cls(names=())
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls.from_entries(data.get("therapies", []))

    def components(self, tid: str) -> set[str]:
        return {p for p in tid.split("+") if p}

    def canonical(self, name: str) -> set[str]:
        """Ids for a gold-therapy entry given as an id or as any name."""
        toks = tuple(normalize(name).split())
        for n, tid in self.names:
            if n == toks:
                return self.components(tid)
        return self.components(name.strip().lower().replace(" ", "_").replace("-", "_"))

    def is_background(self, tid: str) -> bool:
        return bool(self.classes.get(tid, frozenset()) & BACKGROUND_CLASSES)

    def find(self, norm_text: str) -> list[tuple[int, str]]:
        """(token offset, id) of every non-overlapping therapy mention, longest names first."""
        toks = norm_text.split()
        taken = [False] * len(toks)
        hits: list[tuple[int, str]] = []
        for name, tid in self.names:
            n = len(name)
            for i in phrase_positions(norm_text, " ".join(name)):
                if any(taken[i : i + n]):
                    continue
                for j in range(i, i + n):
                    taken[j] = True
                hits.append((i, tid))
        return sorted(hits)


def mentioned_therapies(sentences: list[Sentence], lexicon: TherapyLexicon) -> set[str]:
    out: set[str] = set()
    for s in sentences:
        for _, tid in lexicon.find(s.norm):
            out |= lexicon.components(tid)
    return out


def recommended_therapies(sentences: list[Sentence], lexicon: TherapyLexicon) -> set[str]:
    out: set[str] = set()
    for s in sentences:
        if s.excluded_section or s.neutral_section or s.lead_negated or s.question or any_phrase(s.norm, CONDITIONAL_CUES):
            continue
        for clause in s.clauses:
            if clause_negated(clause):
                continue
            for pos, tid in lexicon.find(clause):
                if not preceded_by_history(clause, pos):
                    out |= lexicon.components(tid)
    return out
