"""Clauses and negation scope: the grammar every reader of a turn shares.

A turn is split into clauses (`split_clauses`); `polarity` says whether a phrase in a clause is asserted, denied
or uncertain, NegEx-style: a trigger ("no", "without", "negative for", "possible", "?") covers the next few words
up to a scope breaker ("but", a comma before a new finding …).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    """Sentences/clauses: split on . ; ! newlines and on '?' that ends a question (not '? liver lesion')."""
    out: list[Clause] = []
    asked = "?" in text
    start = 0
    for m in re.finditer(r"\.(?=\s|$)|[;!\n]|\?(?=\s*(?:$|[A-Z(]))", text):
        piece = text[start : m.end()]
        if piece.strip():
            out.append(Clause(piece, start, piece.rstrip().endswith("?"), asked))
        start = m.end()
    if text[start:].strip():
        out.append(Clause(text[start:], start, text.rstrip().endswith("?"), asked))
    return out


_ASSERT_POST = re.compile(
    r"^\s*(?:are |is |were )?(?:present|seen|found|confirmed|noted|visible|demonstrated)\b", re.IGNORECASE
)


def polarity(clause: str, start: int, end: int) -> str:
    """present / absent / possible for the phrase at clause[start:end] (NegEx-style scope)."""
    before = clause[max(0, start - 70) : start]
    # Scope: only the words since the last breaker before the phrase.
    breaks = list(_SCOPE_BREAK.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    # "not breastfeeding, pregnancy test negative, PE": a finding closed by its own status word ends the scope.
    closed = list(_CLOSED_FINDING.finditer(before))
    if closed:
        before = before[closed[-1].end() :]
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
