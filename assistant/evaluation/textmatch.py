"""Pure text helpers for scoring answers: normalisation, phrase matching, sentences/clauses, negation cues.

The evaluation's own matcher, on purpose: it does not use GuideRail's text toolkit (``ingest.text``) or its
cue patterns, so it cannot inherit a blind spot of what it scores. Its cue words are data
(``cue_words.yaml`` beside this module). The heuristics are documented (with their known failure modes)
in eval/README.md; keep the two in step.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

_CITE = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9*_])")
_ABBREV = re.compile(r"\b(e\.g|i\.e|vs|etc|approx|dr|no|fig|cf)\.\s", re.IGNORECASE)
# clause boundaries: punctuation and the conjunctions that usually start a new proposition
_CLAUSE_SPLIT = re.compile(
    r"[,;:()\u2014\u2013]|\s-\s|\b(?:but|although|though|however|whereas|while|since|because|unless|except|"
    r"and then)\b",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"\u201c[^\u201d]*\u201d?|\"[^\"\n]{12,}\"")
_HEADING = re.compile(r"^\s{0,3}(#{1,6}\s+|\*\*[^*]+\*\*\s*:?\s*$|__[^_]+__\s*:?\s*$)")

CUE_WORDS_FILE = Path(__file__).with_name("cue_words.yaml")
"""The evaluation's own cue words (negation, history, section headings), kept as data beside this matcher."""
_CUE_LISTS = ("negation", "history", "neutral_heading", "conditional", "exclusion_heading")


def load_cue_words(path: Path = CUE_WORDS_FILE) -> dict[str, tuple[str, ...]]:
    """Cue list name → its phrases, as written in ``path``; every list of ``_CUE_LISTS`` must be there."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [k for k in _CUE_LISTS if not isinstance(data.get(k), list) or not data[k]]
    if missing:
        raise ValueError(f"{path}: missing or empty cue lists {missing}")
    return {k: tuple(str(v) for v in data[k]) for k in _CUE_LISTS}


# Read once at import (why: a 2 kB file, and the lists are module constants that offers/therapies/metrics import).
_CUES = load_cue_words()
NEGATION_CUES: tuple[str, ...] = _CUES["negation"]
HISTORY_CUES: tuple[str, ...] = _CUES["history"]
NEUTRAL_HEADING_CUES: tuple[str, ...] = _CUES["neutral_heading"]
CONDITIONAL_CUES: tuple[str, ...] = _CUES["conditional"]
EXCLUSION_HEADING_CUES: tuple[str, ...] = _CUES["exclusion_heading"]


def normalize(text: str) -> str:
    """Lower-case, strip accents, citation markers and punctuation; collapse whitespace."""
    text = _CITE.sub(" ", text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(_NON_WORD.sub(" ", text).split())


def contains_phrase(norm_text: str, phrase: str) -> bool:
    """Whole-word phrase match on normalised text (`norm_text` must come from `normalize`)."""
    p = normalize(phrase)
    return bool(p) and f" {p} " in f" {norm_text} "


def phrase_positions(norm_text: str, phrase: str) -> list[int]:
    """Token offsets where the normalised phrase starts in the normalised text."""
    p = normalize(phrase).split()
    toks = norm_text.split()
    if not p:
        return []
    return [i for i in range(len(toks) - len(p) + 1) if toks[i : i + len(p)] == p]


def any_phrase(norm_text: str, phrases: list[str] | tuple[str, ...]) -> bool:
    return any(contains_phrase(norm_text, p) for p in phrases)


def citation_markers(text: str) -> list[int]:
    """Every citation number used in the text: [1], [1, 2], [1-3], [2][3]."""
    out: list[int] = []
    for m in _CITE.finditer(text):
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            if re.fullmatch(r"\d+\s*[–-]\s*\d+", part):
                a, b = (int(x) for x in re.split(r"\s*[–-]\s*", part))
                if 0 < b - a < 50:
                    out.extend(range(a, b + 1))
                    continue
            out.extend(int(x) for x in re.findall(r"\d+", part))
    return out


@dataclass(frozen=True)
class Sentence:
    text: str  # original text
    norm: str  # normalised text
    clauses: tuple[str, ...]  # normalised clauses
    excluded_section: bool  # under a heading such as "Not recommended" / "Avoid"
    neutral_section: bool = False  # under "Warnings", "Questions", "Sources" …: names things, recommends nothing
    lead_negated: bool = False  # "Excluded for this patient: A, B, C" — the lead-in before a colon negates the list
    question: bool = False  # ends with "?"


def sentences(markdown: str) -> list[Sentence]:
    """Split an answer into sentences: each line (bullets, headings) separately, then on sentence ends."""
    out: list[Sentence] = []
    excluded = neutral = False
    for raw_line in markdown.splitlines():
        # quoted guideline text (blockquotes, “…” spans) is evidence shown to the reader, not the answer's own claim
        line = _QUOTED.sub(" ", raw_line).strip()
        if not line or line.startswith(">"):
            continue
        if _HEADING.match(line):
            # a heading opens a section; an exclusion heading marks everything under it as ruled out
            head = normalize(line)
            excluded = any_phrase(head, EXCLUSION_HEADING_CUES)
            neutral = not excluded and any_phrase(head, NEUTRAL_HEADING_CUES)
        for part in split_sentences(line):
            norm = normalize(part)
            if not norm:
                continue
            clauses = tuple(c for c in (normalize(x) for x in split_clauses(part)) if c)
            lead = part.split(":", 1)[0] if ":" in part else ""
            if len(normalize(lead).split()) > 10:
                lead = ""  # a long lead-in is content, not a label like "Excluded for this patient"
            out.append(
                Sentence(
                    part, norm, clauses or (norm,), excluded, neutral,
                    lead_negated=bool(lead) and clause_negated(normalize(lead)),
                    question=part.rstrip("*_ )").endswith("?"),
                )
            )
    return out


def heading_text(line: str) -> tuple[int, str] | None:
    """(level, text) when the stripped line is a Markdown heading or a whole-line bold label; bold counts as level 7."""
    if not _HEADING.match(line):
        return None
    m = re.match(r"^\s{0,3}(#{1,6})\s+(.*)$", line)
    if m:
        return len(m.group(1)), m.group(2).strip()
    return 7, line.strip().strip("*_: ").strip()


def split_sentences(line: str) -> list[str]:
    """One line (list markers removed) → its sentences (`. ! ?` before a capital; abbreviations protected)."""
    line = re.sub(r"^([-*+]|\d+[.)])\s+", "", line.strip())
    protected = _ABBREV.sub(lambda m: m.group(0).replace(". ", "\x00 "), line)
    return [p.replace("\x00", ".").strip() for p in _SENT_END.split(protected) if p.strip()]


def split_clauses(sentence: str) -> list[str]:
    """A sentence → its clauses, in original text (punctuation and contrastive conjunctions split)."""
    return [x for x in _CLAUSE_SPLIT.split(sentence) if x and x.strip()]


def split_clauses_with_lead(sentence: str) -> list[tuple[str, str]]:
    """Like `split_clauses`, with the boundary that opened each clause ("" for the first, "because", ",", …)."""
    out: list[tuple[str, str]] = []
    lead, pos = "", 0
    for m in _CLAUSE_SPLIT.finditer(sentence):
        if sentence[pos : m.start()].strip():
            out.append((sentence[pos : m.start()], lead))
        lead, pos = m.group(0).strip().lower(), m.end()
    if sentence[pos:].strip():
        out.append((sentence[pos:], lead))
    return out


def clause_negated(norm_clause: str) -> bool:
    return any_phrase(norm_clause, NEGATION_CUES)


def phrase_asserted(sentence: Sentence, phrase: str) -> bool:
    """True when the phrase occurs in a clause of this sentence that carries no negation cue."""
    if sentence.excluded_section or not contains_phrase(sentence.norm, phrase):
        return False
    if sentence.lead_negated and not contains_phrase(normalize(sentence.text.split(":", 1)[0]), phrase):
        return False
    hit_clauses = [c for c in sentence.clauses if contains_phrase(c, phrase)] or [sentence.norm]
    # a cue inside the phrase itself ("stop ADT") is the claim, not a negation of it: judge the rest of the clause
    return any(not clause_negated(_without(c, phrase)) for c in hit_clauses)


def _without(norm_clause: str, phrase: str) -> str:
    p = normalize(phrase)
    return " ".join(f" {norm_clause} ".replace(f" {p} ", " | ").split()) if p else norm_clause


def preceded_by_history(norm_clause: str, start: int, window: int = 4) -> bool:
    """True when a history cue ends within `window` tokens before token `start`."""
    toks = norm_clause.split()
    before = " ".join(toks[max(0, start - window) : start])
    return any_phrase(before, HISTORY_CUES)
