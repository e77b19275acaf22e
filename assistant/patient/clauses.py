"""Clauses and negation scope: the grammar every reader of a turn shares.

A turn is split into clauses (`split_clauses`, on the toolkit's `ingest.text.split_statements`); `polarity` says
whether a phrase in a clause is asserted, denied or uncertain, NegEx-style: a trigger ("no", "without", "negative
for", "possible", "?") covers the next few words up to a scope breaker ("but", a comma before a new finding …),
cut with the toolkit's one scope rule (`ingest.text.scope_start`) and the terminators. The cue words are data
(corpus/lexicon/cues.yaml, the ``patient_*`` groups); `_patterns` holds only where each cue must stand.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from assistant.patient.vocab import load_cues
from ingest.text import scope_start, split_statements


@functools.cache
def _patterns() -> dict[str, re.Pattern[str]]:
    """The NegEx grammar, with the cue words of corpus/lexicon/cues.yaml (`vocab.load_cues`) put in, compiled once."""
    cues = load_cues()
    return {
        "neg_pre": cues.compile(r"\b{neg}\b[^.;:]*$", neg="patient_negation_pre"),
        "pseudo_neg": cues.compile(r"\b{pseudo}\b", pseudo="patient_pseudo_negation"),
        "unc_pre": cues.compile(
            r"(?:\b{unc}\b|(?:^|\s){mark}\s*)[^.;:]*$", unc="patient_uncertain_pre", mark="patient_uncertain_mark"
        ),
        "neg_post": cues.compile(
            r"^\s{0,3}(?:(?:is|are|was|were|has been|have been)\s+)?{neg}\b", neg="patient_negation_post"
        ),
        "unc_post": cues.compile(
            r"^\s{0,2}{mark}|^[^.;,]{0,15}\b{unc}\b", mark="patient_uncertain_mark", unc="patient_uncertain_post"
        ),
        # Words that end a negation's reach ("no pain but liver metastases").
        "scope_break": cues.compile(r"\b{brk}\b", brk="patient_scope_break"),
        "closed_finding": cues.compile(r"\b{closed}\s*,", closed="patient_closed_finding"),
        "assert_post": cues.compile(r"^\s*(?:are |is |were )?{seen}\b", seen="patient_assert_post"),
    }


@dataclass(frozen=True)
class Clause:
    """One clause of a turn: its text, its offset in the turn, and whether it (or the turn) asks something."""

    text: str
    start: int
    is_question: bool
    turn_question: bool = False


def split_clauses(text: str) -> list[Clause]:
    """The turn's statements (``ingest.text.split_statements``), each marked when it, or the turn, asks."""
    asked = "?" in text
    pieces = split_statements(text)
    return [
        # The last piece asks when the turn ends with "?" (a "?" the splitter did not take as an end).
        Clause(piece, start, (piece if i < len(pieces) - 1 else text).rstrip().endswith("?"), asked)
        for i, (piece, start) in enumerate(pieces)
    ]


def polarity(clause: str, start: int, end: int) -> str:
    """present / absent / possible for the phrase at clause[start:end] (NegEx-style scope)."""
    p = _patterns()
    before = clause[max(0, start - 70) : start]
    # Scope: only the words since the last breaker before the phrase.
    before = before[scope_start(before, len(before), p["scope_break"]) :]
    # "not breastfeeding, pregnancy test negative, PE": a finding closed by its own status word ends the scope.
    before = before[scope_start(before, len(before), p["closed_finding"]) :]
    # A comma followed by a new clause also stops it: "no pain, liver metastases present".
    after = clause[end : end + 40]
    neg = p["neg_pre"].search(before)
    if neg and not p["pseudo_neg"].search(before):
        # "no pain, bone metastases present on scan": an explicit assertion after a comma starts a new clause.
        if "," in before[neg.start() :] and p["assert_post"].match(after):
            return "present"
        return "absent"
    if p["unc_pre"].search(before):
        return "possible"
    if p["neg_post"].search(after):
        return "absent"
    if p["unc_post"].search(after):
        return "possible"
    return "present"


def stronger(old: str | None, new: str) -> str:
    """The reading to keep when a phrase recurs in one turn: present beats absent beats possible."""
    if old is None:
        return new
    order = {"present": 0, "absent": 1, "possible": 2}
    return new if order[new] < order[old] else old
