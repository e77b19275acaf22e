"""Therapy detection in answer text: which therapies an answer names, and which it recommends.

"Recommended" is a text heuristic (documented in eval/README.md) so that GuideRail and the naive baseline are
scored the same way: a therapy counts as recommended when it is named in a clause that carries no negation cue,
is not preceded by a history cue ("after abiraterone", "progressed on docetaxel"), and does not sit under an
exclusion heading ("Not recommended", "Avoid").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

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
T = TypeVar("T")


CLASS_NAMES_FILE = Path(__file__).with_name("class_names.yaml")


def _with_plural(toks: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The name and its plural ("DOAC" → "DOACs", "ACE inhibitor" → "ACE inhibitors"): answers use both."""
    last = toks[-1]
    if len(last) < 3 or not last.isalpha() or last.endswith("s"):
        return [toks]
    return [toks, (*toks[:-1], last + "s")]


@dataclass(frozen=True)
class OfferTarget:
    """What a `must_not_offer` / `should_offer_any` entry stands for: drug ids, and whether all must be offered."""

    ids: frozenset[str]
    need_all: bool = False  # a regimen ("niraparib+abiraterone") is offered only when every component is

    def offered_by(self, offered: set[str] | frozenset[str]) -> bool:
        if not self.ids:
            return False
        return self.ids <= offered if self.need_all else bool(self.ids & offered)


@dataclass(frozen=True)
class TherapyLexicon:
    """Normalised name → canonical therapy id; regimen ids ("a+b") expand to their components."""

    names: tuple[tuple[tuple[str, ...], str], ...]  # (name tokens, id), longest first
    classes: dict[str, frozenset[str]] = field(default_factory=dict)
    # class phrase tokens → class token (the evaluation's own class words, class_names.yaml)
    class_terms: tuple[tuple[tuple[str, ...], str], ...] = ()

    @classmethod
    def from_entries(
        cls, entries: Iterable[dict], class_phrases: Mapping[str, Iterable[str]] | None = None
    ) -> TherapyLexicon:
        pairs: dict[tuple[str, ...], str] = {}
        classes: dict[str, frozenset[str]] = {}
        for e in entries:
            tid = str(e["id"])
            classes[tid] = frozenset(e.get("classes", []))
            for name in [tid.replace("_", " "), *e.get("names", [])]:
                toks = tuple(normalize(str(name)).split())
                if toks:
                    for form in _with_plural(toks):
                        pairs.setdefault(form, tid)
        ordered = tuple(sorted(pairs.items(), key=lambda kv: (-len(kv[0]), kv[0])))
        terms: dict[tuple[str, ...], str] = {}
        for klass, phrases in (class_phrases or {}).items():
            for phrase in phrases:
                toks = tuple(normalize(str(phrase)).split())
                if toks:
                    for form in _with_plural(toks):
                        terms.setdefault(form, str(klass))
        ordered_terms = tuple(sorted(terms.items(), key=lambda kv: (-len(kv[0]), kv[0])))
        return cls(names=ordered, classes=classes, class_terms=ordered_terms)

    @classmethod
    def load(cls, corpus_dir: Path, class_names: Path | None = CLASS_NAMES_FILE) -> TherapyLexicon:
        path = Path(corpus_dir) / "lexicon" / "therapies.yaml"
        if not path.is_file():
            return cls(names=())
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        phrases: dict[str, list[str]] = {}
        if class_names is not None:
            phrases = (yaml.safe_load(Path(class_names).read_text(encoding="utf-8")) or {}).get("classes", {})
        entries = list(data.get("therapies", []))
        # Drugs the oncology approval pack introduces (corpus/oncology/*.yaml `drugs:`), merged by id.
        from ingest.approval_docs import approval_files, load_file

        known = {str(e.get("id")): e for e in entries if isinstance(e, dict)}
        for f in approval_files(corpus_dir):
            try:
                drugs = load_file(f).get("drugs") or []
            except (OSError, yaml.YAMLError):
                continue
            for d in drugs if isinstance(drugs, list) else []:
                if not isinstance(d, dict) or not d.get("id"):
                    continue
                old = known.get(str(d["id"]))
                if old is None:
                    known[str(d["id"])] = dict(d)
                    entries.append(known[str(d["id"])])
                else:
                    old["names"] = list(dict.fromkeys([*(old.get("names") or []), *(d.get("names") or [])]))
                    old["classes"] = list(dict.fromkeys([*(old.get("classes") or []), *(d.get("classes") or [])]))
        return cls.from_entries(entries, phrases)

    def components(self, tid: str) -> set[str]:
        return {p for p in tid.split("+") if p}

    def canonical(self, name: str) -> set[str]:
        """Ids for a gold-therapy entry given as an id or as any name."""
        toks = tuple(normalize(name).split())
        for n, tid in self.names:
            if n == toks:
                return self.components(tid)
        return self.components(name.strip().lower().replace(" ", "_").replace("-", "_"))

    def class_members(self, klass: str) -> frozenset[str]:
        """Single-drug ids of a class (case-insensitive); regimens are covered through their components."""
        k = klass.strip().lower()
        return frozenset(
            tid for tid, cl in self.classes.items() if "+" not in tid and any(c.lower() == k for c in cl)
        )

    def is_known(self, entry: str) -> bool:
        """An id, a name (generic, brand, synonym) or a class of the corpus lexicon."""
        toks = tuple(normalize(entry).split())
        return (
            entry in self.classes
            or bool(self.class_members(entry))
            or any(n == toks for n, _ in self.names)
            or all(p in self.classes for p in entry.split("+"))
        )

    def target(self, entry: str) -> OfferTarget:
        """Resolve a safety-set entry: a class → any member; a regimen → all components; else the drug."""
        members = self.class_members(entry)
        if members and entry not in self.classes:
            return OfferTarget(members)
        ids = frozenset(self.canonical(entry))
        return OfferTarget(ids, need_all=len(ids) > 1)

    def expand(self, token: str) -> frozenset[str]:
        """A finding's therapy (an id, a regimen or, rarely, a class) → the single-drug ids it offers."""
        if token in self.classes or "+" in token:
            return frozenset(self.components(token))
        members = self.class_members(token)
        return members or frozenset(self.components(token))

    def is_background(self, tid: str) -> bool:
        return bool(self.classes.get(tid, frozenset()) & BACKGROUND_CLASSES)

    def find(self, norm_text: str) -> list[tuple[int, str]]:
        """(token offset, id) of every non-overlapping therapy mention, longest names first."""
        return [(i, tid) for i, _, tid in self._scan(norm_text, self.names)]

    def find_terms(self, norm_text: str) -> list[tuple[int, int, frozenset[str], bool]]:
        """(token offset, token length, drug ids, is a class phrase) of every therapy or class mention.

        A class phrase ("DOACs") stands for every member drug; a drug name for its id (regimens: components).
        """
        table = tuple(sorted(
            [(n, ("id", t)) for n, t in self.names] + [(n, ("class", c)) for n, c in self.class_terms],
            key=lambda kv: (-len(kv[0]), kv[1][0] == "id", kv[0]),  # same words: the class reading wins
        ))
        out: list[tuple[int, int, frozenset[str], bool]] = []
        for i, n, (kind, tok) in self._scan(norm_text, table):
            ids = self.class_members(tok) if kind == "class" else frozenset(self.components(tok))
            if ids:
                out.append((i, n, ids, kind == "class"))
        return out

    @staticmethod
    def _scan(norm_text: str, table: Sequence[tuple[tuple[str, ...], T]]) -> list[tuple[int, int, T]]:
        toks = norm_text.split()
        present = set(toks)
        taken = [False] * len(toks)
        hits: list[tuple[int, int, T]] = []
        for name, value in table:
            if name[0] not in present:  # cheap pre-filter: most names are absent from most clauses
                continue
            n = len(name)
            for i in phrase_positions(norm_text, " ".join(name)):
                if any(taken[i : i + n]):
                    continue
                for j in range(i, i + n):
                    taken[j] = True
                hits.append((i, n, value))
        return sorted(hits, key=lambda h: h[0])


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
