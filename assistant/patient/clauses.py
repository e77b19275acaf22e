"""Clauses and negation scope: the grammar every reader of a turn shares.

A turn is split into clauses (`split_clauses`, on the toolkit's `ingest.text.split_statements`); `polarity` says
whether a phrase in a clause is asserted, denied or uncertain, NegEx-style: a trigger ("no", "without", "negative
for", "possible", "?") covers the next few words up to a scope breaker ("but", a comma before a new finding …),
cut with the toolkit's one scope rule (`ingest.text.scope_start`) and the terminators below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.text import scope_start, split_statements

_NEG_PRE = re.compile(
    r"\b(?:no|not|without|denies|denied|negative for|free of|absence of|ruled out|never|nor|neither|lacks?)\b[^.;:]*$",
    re.IGNORECASE,
)
_UNC_PRE = re.compile(
    r"(?:\b(?:possible|possibly|probable|probably|suspected|suspicious (?:for|of)|suspicion of|query|questionable|equivocal|"
    r"indeterminate|cannot (?:be )?(?:excluded?|ruled? out)|can't rule out|may have|might have|concern(?:ing)? for|"
    r"likely|unclear|uncertain|small|tiny|subcentimet\w+)\b|(?:^|\s)\?\s*)[^.;:]*$",
    re.IGNORECASE,
)
_NEG_POST = re.compile(
    r"^\s{0,3}(?:(?:is|are|was|were|has been|have been)\s+)?(?:ruled out|excluded|absent|negative|not (?:seen|present|found)|resolved)\b",
    re.IGNORECASE,
)
_UNC_POST = re.compile(
    r"^\s{0,2}\?|^[^.;,]{0,15}\b(?:suspected|possible|equivocal|indeterminate|cannot be excluded|not excluded)\b",
    re.IGNORECASE,
)
# Words that end a negation's reach ("no pain but liver metastases").
_SCOPE_BREAK = re.compile(
    r"\b(?:but|however|although|though|except|apart from|(?<!not )(?<!never )yet|whereas|with|now|and has|has|shows?|showed|revealed|new)\b",
    re.IGNORECASE,
)

_CLOSED_FINDING = re.compile(
    r"\b(?:negative|positive|normal|unremarkable|confirmed|ruled out|excluded|absent|present)\s*,",
    re.IGNORECASE,
)


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


_ASSERT_POST = re.compile(
    r"^\s*(?:are |is |were )?(?:present|seen|found|confirmed|noted|visible|demonstrated)\b", re.IGNORECASE
)


def polarity(clause: str, start: int, end: int) -> str:
    """present / absent / possible for the phrase at clause[start:end] (NegEx-style scope)."""
    before = clause[max(0, start - 70) : start]
    # Scope: only the words since the last breaker before the phrase.
    before = before[scope_start(before, len(before), _SCOPE_BREAK) :]
    # "not breastfeeding, pregnancy test negative, PE": a finding closed by its own status word ends the scope.
    before = before[scope_start(before, len(before), _CLOSED_FINDING) :]
    # A comma followed by a new clause also stops it: "no pain, liver metastases present".
    after = clause[end : end + 40]
    neg = _NEG_PRE.search(before)
    if neg and not re.search(r"\bnot only\b", before, re.IGNORECASE):
        # "no pain, bone metastases present on scan": an explicit assertion after a comma starts a new clause.
        if "," in before[neg.start() :] and _ASSERT_POST.match(after):
            return "present"
        return "absent"
    if _UNC_PRE.search(before):
        return "possible"
    if _NEG_POST.search(after):
        return "absent"
    if _UNC_POST.search(after):
        return "possible"
    return "present"


def stronger(old: str | None, new: str) -> str:
    """The reading to keep when a phrase recurs in one turn: present beats absent beats possible."""
    if old is None:
        return new
    order = {"present": 0, "absent": 1, "possible": 2}
    return new if order[new] < order[old] else old
