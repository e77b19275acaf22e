"""The clinical vocabulary the patient extractor reads, loaded and compiled from corpus/lexicon/clinical.yaml
(and the negation/uncertainty/history cue words from corpus/lexicon/cues.yaml, `load_cues`).

First step of the patient stage's data flow: the YAML (reviewed data) becomes `ClinicalVocab` — condition ids and
their patterns (and which a question can be about), metastatic sites, biomarker names, the anticancer and
line-of-therapy classes, and the lab table with units and conversion factors. `extract.PatientExtractor` and the
readers it calls use it; code here only loads, checks and compiles — it holds no clinical words.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import CorpusValidationError
from assistant.knowledge import Lexicon
from assistant.patient.facts import NUM


@dataclass(frozen=True)
class Conversion:
    """One rule of a lab's unit conversion: when its conditions all hold, the value is rescaled."""

    unit: str | None = None  # the unit as written (lower case)
    unitless: bool = False  # only when no unit was written
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    multiply: float | None = None
    divide: float | None = None
    add: float | None = None

    def applies(self, value: float, unit: str) -> bool:
        return (
            (self.unit is None or unit == self.unit)
            and (not self.unitless or not unit)
            and (self.above is None or value > self.above)
            and (self.at_least is None or value >= self.at_least)
            and (self.below is None or value < self.below)
        )

    def apply(self, value: float) -> float:
        if self.multiply is not None:
            value = value * self.multiply
        if self.divide is not None:
            value = value / self.divide
        if self.add is not None:
            value = value + self.add
        return value


@dataclass(frozen=True)
class LabSpec:
    """A lab read with a pattern: group 1 the value, an optional group 2 the unit as written."""

    id: str
    unit: str
    patterns: tuple[re.Pattern[str], ...]
    convert: tuple[Conversion, ...] = ()

    def to_unit(self, value: float, written: str) -> float:
        """The value in `unit`: the first conversion rule that applies, else as written."""
        rule = next((c for c in self.convert if c.applies(value, written)), None)
        return rule.apply(value) if rule is not None else value


@dataclass(frozen=True)
class ClinicalVocab:
    """The clinical vocabulary of one corpus folder (file order kept wherever order matters)."""

    conditions: tuple[tuple[str, str], ...]  # condition id, its patterns joined as alternatives
    primary: frozenset[str]  # the conditions a question can be about
    sites: tuple[tuple[str, re.Pattern[str]], ...] = ()
    markers: re.Pattern[str] | None = None  # every biomarker name, as one whole-word pattern
    non_gene_markers: frozenset[str] = frozenset()
    anticancer_classes: frozenset[str] = frozenset()
    line_classes: frozenset[str] = frozenset()
    labs: tuple[LabSpec, ...] = ()


@functools.lru_cache(maxsize=8)
def load_clinical_vocab(corpus_dir: str) -> ClinicalVocab:
    """corpus/lexicon/clinical.yaml, read once per corpus folder (raises `CorpusValidationError`)."""
    path = Path(corpus_dir) / "lexicon" / "clinical.yaml"
    rel = str(path)
    data = _read_yaml(path, "the clinical vocabulary")
    items = data.get("conditions") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise CorpusValidationError(rel, 1, "clinical vocabulary needs a top-level 'conditions:' list")
    conditions: list[tuple[str, str]] = []
    primary: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise CorpusValidationError(rel, None, f"condition entry without an id: {item!r}")
        cid = item["id"]
        patterns = [p for p in item.get("patterns") or [] if isinstance(p, str) and p]
        for p in patterns:
            _compile(rel, f"condition {cid}", p)
        if patterns:
            conditions.append((cid, "|".join(patterns)))  # top-level alternatives keep their own case rule
        if item.get("primary"):
            primary.add(cid)
    sites = tuple(
        (sid, _compile(rel, f"site {sid}", "|".join(alts), re.IGNORECASE))
        for sid, alts in _id_patterns(rel, data, "sites")
    )
    bm = _section(rel, data, "biomarkers", dict)
    names = _strings(rel, bm.get("patterns"), "biomarkers.patterns")
    markers = _compile(rel, "biomarkers", r"(?<![\w-])(" + "|".join(names) + r")(?![\w])", re.IGNORECASE)
    return ClinicalVocab(
        conditions=tuple(conditions),
        primary=frozenset(primary),
        sites=sites,
        markers=markers,
        non_gene_markers=frozenset(_strings(rel, bm.get("non_gene"), "biomarkers.non_gene")),
        anticancer_classes=frozenset(_strings(rel, data.get("anticancer_classes"), "anticancer_classes")),
        line_classes=frozenset(_strings(rel, data.get("line_classes"), "line_classes")),
        labs=tuple(_lab(rel, item) for item in _section(rel, data, "labs", list)),
    )


SHIPPED_CORPUS = Path(__file__).resolve().parents[2] / "corpus"


@dataclass(frozen=True)
class CueWords:
    """The cue groups of corpus/lexicon/cues.yaml: group name → its entries as regex fragments (plain phrases
    escaped, ``{regex: …}`` entries as written), file order kept."""

    path: str
    groups: dict[str, tuple[str, ...]]

    def alternation(self, group: str) -> str:
        """The group's entries as one non-capturing alternation, ``(?:a|b|c)``, for the reader's own pattern."""
        entries = self.groups.get(group)
        if not entries:
            raise CorpusValidationError(self.path, None, f"cue words need a non-empty '{group}:' list")
        return "(?:" + "|".join(entries) + ")"

    def compile(self, template: str, **groups: str) -> re.Pattern[str]:
        """``template`` with each ``{name}`` replaced by the alternation of cue group ``groups[name]``,
        compiled case-insensitive (raises `CorpusValidationError` naming the file on a bad pattern)."""
        pattern = template
        for name, group in groups.items():
            pattern = pattern.replace("{" + name + "}", self.alternation(group))
        return _compile(self.path, f"cue pattern {sorted(groups.values())}", pattern, re.IGNORECASE)


CUE_GROUPS = (
    "patient_negation_pre", "patient_pseudo_negation", "patient_uncertain_pre", "patient_uncertain_mark",
    "patient_negation_post", "patient_uncertain_post", "patient_scope_break", "patient_closed_finding",
    "patient_assert_post", "answer_negation", "answer_history", "answer_positive", "answer_against",
    "answer_conditional", "question_asking_words", "patient_state_history_before", "patient_state_progression_between",
    "patient_infection_history", "oncology_prior_therapy",
)
"""The cue groups the readers build their patterns from (clauses.py, verify.py, scope.py, patient/extract.py,
patient/conditions.py, oncology/extract.py): each must be in the file."""


def check_cues(corpus_dir: str | Path) -> list[str]:
    """Problems of corpus/lexicon/cues.yaml for the corpus validator: unreadable, a bad entry, a missing group."""
    path = Path(corpus_dir) / "lexicon" / "cues.yaml"
    if not path.exists():
        return []  # a user corpus without its own cue file reads the shipped one
    try:
        cues = load_cues.__wrapped__(str(corpus_dir))  # the validator reads the file as it is now, not a cached copy
    except CorpusValidationError as exc:
        return [exc.reason]
    return [f"cue group {g!r} is missing (read by the clause reader, verifier or scope judge)" for g in CUE_GROUPS
            if not cues.groups.get(g)]


@functools.lru_cache(maxsize=8)
def load_cues(corpus_dir: str = str(SHIPPED_CORPUS)) -> CueWords:
    """corpus/lexicon/cues.yaml (negation, uncertainty, scope and history cues), read once per corpus folder.

    The clause reader (`assistant.patient.clauses`) and the answer verifier (`assistant.answer.verify`) build
    their patterns from it; an entry is a plain phrase (matched literally) or ``{regex: …}`` (raises
    `CorpusValidationError`)."""
    path = Path(corpus_dir) / "lexicon" / "cues.yaml"
    rel = str(path)
    data = _read_yaml(path, "the cue words")
    if not isinstance(data, dict) or not data:
        raise CorpusValidationError(rel, 1, "cue words need top-level group lists")
    groups: dict[str, tuple[str, ...]] = {}
    for name, items in data.items():
        if not isinstance(items, list) or not items:
            raise CorpusValidationError(rel, None, f"cue group {name!r}: needs a non-empty list")
        entries = []
        for item in items:
            if isinstance(item, dict) and set(item) == {"regex"} and isinstance(item["regex"], str) and item["regex"]:
                fragment = item["regex"]
            elif isinstance(item, str) and item:
                fragment = re.escape(item)
            else:
                raise CorpusValidationError(
                    rel, None, f"cue group {name!r}: an entry is a phrase or {{regex: ...}}: {item!r}"
                )
            _compile(rel, f"cue group {name!r}", fragment, re.IGNORECASE)
            entries.append(fragment)
        groups[str(name)] = tuple(entries)
    return CueWords(path=rel, groups=groups)


def _read_yaml(path: Path, what: str) -> Any:
    """A lexicon file's YAML ({} when empty); unreadable or malformed raises `CorpusValidationError` naming it."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusValidationError(str(path), None, f"cannot read {what}: {exc}") from exc


def _compile(rel: str, what: str, pattern: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise CorpusValidationError(rel, None, f"{what}: bad pattern ({exc})") from exc


def _section(rel: str, data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or not value:
        raise CorpusValidationError(rel, None, f"clinical vocabulary needs a non-empty top-level '{key}:'")
    return value


def _strings(rel: str, value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise CorpusValidationError(rel, None, f"{what}: needs a non-empty list of strings")
    return value


def _id_patterns(rel: str, data: dict[str, Any], key: str) -> list[tuple[str, list[str]]]:
    out = []
    for item in _section(rel, data, key, list):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise CorpusValidationError(rel, None, f"{key} entry without an id: {item!r}")
        out.append((item["id"], _strings(rel, item.get("patterns"), f"{key} {item['id']}.patterns")))
    return out


_CONVERSION_KEYS = {"unit", "unitless", "above", "at_least", "below", "multiply", "divide", "add"}


def _lab(rel: str, item: Any) -> LabSpec:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise CorpusValidationError(rel, None, f"lab entry without an id: {item!r}")
    lid = item["id"]
    patterns = []
    for p in item.get("patterns") or []:
        regex, case = (
            (p.get("regex"), p.get("case", "insensitive")) if isinstance(p, dict) else (p, "insensitive")
        )
        if not isinstance(regex, str) or case not in ("sensitive", "insensitive"):
            raise CorpusValidationError(
                rel, None, f"lab {lid}: a pattern is a string or {{regex, case}}: {p!r}"
            )
        flags = re.IGNORECASE if case == "insensitive" else 0
        patterns.append(_compile(rel, f"lab {lid}", regex.replace("{num}", NUM), flags))
    if not patterns:
        raise CorpusValidationError(rel, None, f"lab {lid}: needs at least one pattern")
    rules = []
    for c in item.get("convert") or []:
        if not isinstance(c, dict) or set(c) - _CONVERSION_KEYS:
            raise CorpusValidationError(
                rel, None, f"lab {lid}: conversion keys are {sorted(_CONVERSION_KEYS)}: {c!r}"
            )
        try:
            rules.append(Conversion(**{k: (str(v).lower() if k == "unit" else v) for k, v in c.items()}))
        except TypeError as exc:
            raise CorpusValidationError(rel, None, f"lab {lid}: bad conversion {c!r} ({exc})") from exc
    return LabSpec(id=lid, unit=str(item.get("unit", "")), patterns=tuple(patterns), convert=tuple(rules))


def corpus_dir_of(lexicon: Lexicon | None) -> Path:
    """The corpus folder a lexicon was loaded from, when it says so; else the shipped corpus."""
    for attr in ("corpus_dir", "source_dir"):
        d = getattr(lexicon, attr, None)
        if d:
            return Path(d)
    src = getattr(lexicon, "source", None) or getattr(lexicon, "path", None)
    if src:
        p = Path(src)
        return p.parent.parent if p.suffix in (".yaml", ".yml") else p
    from assistant.settings import PROJECT_ROOT

    return PROJECT_ROOT / "corpus"


def _split_top(pattern: str) -> list[str]:
    """Top-level alternatives of a regex (splits on '|' outside groups)."""
    parts, depth, cur = [], 0, []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            cur.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def compile_mixed_case(pattern: str) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(case-insensitive, case-sensitive) regexes: alternatives holding an all-caps abbreviation
    (\\bAF\\b, \\bPE\\b, \\bMI\\b) must match in capitals so "af"/"pe"/"mi" in prose do not count."""
    ci, cs = [], []
    for alt in _split_top(pattern):
        (cs if re.search(r"\\b[A-Z]{2,}|(?<![A-Za-z\\])[A-Z]{2,}|\\b[A-Z][a-z]?[A-Z]", alt) else ci).append(
            alt
        )
    return (
        re.compile("|".join(ci), re.IGNORECASE) if ci else None,
        re.compile("|".join(cs)) if cs else None,
    )
