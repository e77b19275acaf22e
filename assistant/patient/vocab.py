"""The clinical vocabulary the patient extractor reads, compiled from corpus/lexicon/clinical.yaml.

First step of the patient stage's data flow: the YAML (reviewed data) becomes `ClinicalVocab`, which
`extract.PatientExtractor` compiles into its patterns. Condition ids and their patterns, the conditions a question
can be about (`primary`) …; code here only loads, checks and compiles — it holds no clinical words.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.errors import CorpusValidationError
from assistant.knowledge import Lexicon


@dataclass(frozen=True)
class ClinicalVocab:
    """Condition ids with their patterns, in file order, and the ids a question can be about."""

    conditions: tuple[tuple[str, str], ...]
    primary: frozenset[str]


@functools.lru_cache(maxsize=8)
def load_clinical_vocab(corpus_dir: str) -> ClinicalVocab:
    """`conditions:` of corpus/lexicon/clinical.yaml, read once per corpus folder."""
    path = Path(corpus_dir) / "lexicon" / "clinical.yaml"
    rel = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusValidationError(rel, None, f"cannot read the clinical vocabulary: {exc}") from exc
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
            try:
                re.compile(p)
            except re.error as exc:
                raise CorpusValidationError(rel, None, f"condition {cid}: bad pattern ({exc})") from exc
        if patterns:
            conditions.append((cid, "|".join(patterns)))  # top-level alternatives keep their own case rule
        if item.get("primary"):
            primary.add(cid)
    return ClinicalVocab(tuple(conditions), frozenset(primary))


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
