"""The text toolkit: tokenising, stemming, stop words, sentence and clause splitting, name matching.

Where it sits: the lowest layer, shared by both packages. Ingest tokenises every chunk for the BM25
sidecar with ``bm25_tokens`` (``ingest.store``; the retriever tokenises queries the same way). The
assistant compares answer sentences with passages through ``content_words`` (verification, the
question-coverage gate, the supporting-sentence highlight of the web app), cuts answers and passages
into sentences with ``split_sentences`` (verifier, composer, web app), scopes negation with the clause
helpers and finds therapy names with ``name_pattern`` / ``find_names`` (the verifier, the composer) and
``NameMatcher`` (the patient reader, the safety screen). It lives in ``ingest`` because
``ingest`` must not import ``assistant`` (tests/test_layout.py) and the assistant imports it one way.

Only machinery lives here; vocabulary (drug names, cue words) is data in ``corpus/lexicon``. Everything
is a pure function of strings; nothing is loaded at import time. The evaluation keeps its own sentence
and phrase matcher on purpose (``assistant.evaluation.textmatch``): it must not share a blind spot with
what it scores.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# ---------------------------------------------------------------- stop words
# Two lists, because two callers ask different questions of a word (one list for both would change the
# stored index or the calibrated support threshold):
STOPWORDS = _word_set(
    """a an and are as at be by for from has have in is it its of on or that the this to was were which with
    what who whom when where why how should can could would may might do does did not no than then there
    these those their them they he she his her we our you your i me my"""
)
"""English function words that BM25 drops, at ingest and at query time (``bm25_tokens``). Short on purpose:
a searcher's words such as "patients", "options", "after" or "before" stay findable. Every stored BM25
sidecar is built with this list, so changing it means rebuilding every index (delete it, ingest again)."""

_MORE_FUNCTION_WORDS = _word_set(
    """about after all also any been before being both but during each had if into least less more most must
    one only other over per same shall so such two under very via vs whose will"""
)
ANSWER_FILLER = _word_set(
    """answer care consider considered discuss discussing option options patient patients prefer preferred
    recommend recommended suitable team worth"""
)
"""Words every answer wraps its claims in ("the preferred option for this patient is …"): they occur in any
passage, so counting them would make any passage look like support."""

CONTENT_STOPWORDS = STOPWORDS | _MORE_FUNCTION_WORDS | ANSWER_FILLER
"""What a claim is *not* made of: every function word plus the answer filler. ``content_words`` drops these
when an answer sentence is compared with a passage; the verifier's support threshold is calibrated with
this list (tests/generation/data/support_pairs.jsonl)."""


QUESTION_STOPWORDS = _word_set(
    """a an and are be been done for has have in is it its of on or that the this to was were what which with"""
)
"""The words two follow-up questions may differ in and still be one question ("Has MSI/dMMR testing been
done?" / "Has MSI or dMMR testing been done?"): the rule engine merges asks whose other words overlap by at
least 60% (``assistant.rules.engine``). Narrower than ``STOPWORDS``, plus "been"/"done": the threshold was set
with exactly this list, and ``STOPWORDS`` (even with "been"/"done") turns the merge decision of 10 pairs among
the corpus's ~500 questions (rules, safety profiles, ``generic_question``), measured."""

# ---------------------------------------------------------------- tokens and stems
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]+|\d+(?:\.\d+)?")


def words(text: str) -> list[str]:
    """Word tokens as written: letter-initial words of two or more characters (hyphens and digits inside
    kept: "PSMA-617", "CHEK2") and numbers ("2.5"). Case is kept; single letters are dropped."""
    return _WORD.findall(text)


def stem(word: str) -> str:
    """Lower-cased word minus one inflection suffix (-ing, -ed, -es, -s) when at least four letters remain.

    Crude on purpose ("progressing" → "progress", "doses" → "dose", "boxes" → "boxe"): it only has to make a sentence and
    the passage it paraphrases meet, and the support threshold is calibrated with exactly this behaviour."""
    w = word.lower()
    for suf in ("ing", "ed", "es", "s"):
        if len(w) > len(suf) + 3 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def content_words(text: str) -> list[str]:
    """Stemmed words of ``text`` that can carry a claim: no stop word (``CONTENT_STOPWORDS``), no number.
    Citation marks "[n]" are numbers, so they never count."""
    return list(_content_words(text))


@functools.lru_cache(maxsize=8192)
def _content_words(text: str) -> tuple[str, ...]:
    # Cached (why: the same passages and sentences are compared many times per answer, and across answers).
    return tuple(stem(w) for w in _WORD.findall(text) if w.lower() not in CONTENT_STOPWORDS and not w[0].isdigit())


_TOKEN = re.compile(r"[a-z0-9]+(?:[-/.+][a-z0-9]+)*")
_SEP = re.compile(r"[-/.+]")
_SEP_CHARS = frozenset("-/.+")


def bm25_tokens(text: str) -> list[str]:
    """Tokens for BM25 that keep drug/gene names findable.

    "Lu-177-PSMA-617" → lu-177-psma-617, lu177psma617, lu, 177, psma, 617: the compound, its
    hyphen-free spelling ("Lu177-PSMA-617" in another source) and its parts all match. Numbers and
    alphanumerics (CHEK2, 5.2) stay whole. A light plural strip ("inhibitors" → "inhibitor").
    """
    out: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        if not _SEP_CHARS.intersection(tok):  # the common case: a plain word or number
            if tok not in STOPWORDS:
                out.append(_plural_strip(tok))
            continue
        parts = [p for p in _SEP.split(tok) if p]
        if len(parts) > 1:
            if not re.fullmatch(r"[\d.]+", tok):  # "5.2" stays one token; compounds also give their parts
                out.append(tok)
                out.append("".join(parts))
                out.extend(_plural_strip(p) for p in parts if p not in STOPWORDS)
            else:
                out.append(tok)
        elif tok not in STOPWORDS:
            out.append(_plural_strip(tok))
    return out


def _plural_strip(tok: str) -> str:
    # Lighter than `stem` on purpose: index terms must stay recognisable ("analysis", "status", "ct5s" stay
    # whole), and every stored BM25 sidecar is built with exactly this rule.
    if len(tok) > 4 and tok.endswith("s") and not tok.endswith(("ss", "us", "is")) and not tok[-2].isdigit():
        return tok[:-1]
    return tok


# ---------------------------------------------------------------- sentences and clauses
# A boundary is white space after . ! or ? — unless a citation mark follows: "x. [1]" keeps [1] with x.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^\s\[])")
_SENTENCE_END_ANY = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str, maxsplit: int = 0, *, bracket_opens: bool = False) -> list[str]:
    """Sentences of running text, as written (pieces may be blank; callers filter and strip).

    The verifier checks, the composer quotes and the web app highlights exactly these units, so one quote
    is one checked sentence. Lines are not boundaries: split Markdown line by line first.

    ``bracket_opens``: a bracket after the end mark opens a new sentence instead of staying with the one
    before as its citation. The injection screen needs that ("… daily. [SYSTEM] ignore …"): it removes whole
    sentences from a passage, and the clinical sentence before a planted one must survive."""
    return (_SENTENCE_END_ANY if bracket_opens else _SENTENCE_END).split(text, maxsplit)


# The chunker's cut points (``ingest.chunking``) when a paragraph or a line is over the token budget: also
# after ; and :, and only before what can open a sentence (capital, digit, quote, bracket, bullet), so
# "e.g. olaparib" or "vs. placebo" is never cut. Not ``split_sentences`` on purpose: a chunk boundary is a
# stored fact (chunk ids hash the text), so changing it changes every index; and a clause after ";" may
# stand alone in a passage while an answer sentence may not be cut there.
_CHUNK_BREAK = re.compile(r"(?<=[.!?;:])\s+(?=[\"'(\[A-Z0-9•\-*])")


def split_chunk_sentences(text: str) -> list[str]:
    """A passage's cut points for chunking (see ``_CHUNK_BREAK``); pieces as written, may be blank."""
    return _CHUNK_BREAK.split(text)


# Soft boundaries scope a negation ("not X, but Y"): punctuation, parentheses, contrastive conjunctions.
_CLAUSE_BREAK = re.compile(r"[;:,()]|\b(?:but|however|whereas|while|although)\b", re.I)
# Hard boundaries only: a comma, a parenthesis or "and" keeps the subject ("X is preferred (8 months) and
# is not recommended …" speaks of X throughout).
_HARD_CLAUSE_BREAK = re.compile(r"[;:]|\b(?:but|however|whereas|although)\b", re.I)


def split_clauses(sentence: str, *, hard: bool = False) -> list[str]:
    """The clauses of a sentence, boundaries removed, blank pieces dropped."""
    rx = _HARD_CLAUSE_BREAK if hard else _CLAUSE_BREAK
    return [c for c in rx.split(sentence) if c.strip()]


def clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """(start, end) of the soft clause of ``text`` around the span ``text[start:end]``."""
    nxt = _CLAUSE_BREAK.search(text, end)
    return scope_start(text, start), (nxt.start() if nxt else len(text))


def scope_start(text: str, pos: int, breaks: re.Pattern[str] = _CLAUSE_BREAK) -> int:
    """Where the reach of what precedes ``pos`` begins: just after the last match of ``breaks`` before ``pos``
    (0 when none). The one scope rule of both negation readers: the verifier's (soft clause boundaries) and the
    patient reader's (``assistant.patient.clauses``, which passes its NegEx scope terminators)."""
    return max((m.end() for m in breaks.finditer(text, 0, pos)), default=0)


# A chat turn's statements: "." before white space or the end (not "2.5"), ";", "!", a line end, and a "?" that
# ends a question — not the "?" of clinical shorthand for "possible" ("? liver lesion", "?PE").
_STATEMENT_END = re.compile(r"\.(?=\s|$)|[;!\n]|\?(?=\s*(?:$|[A-Z(]))")


def split_statements(text: str) -> list[tuple[str, int]]:
    """(statement, offset) of every non-blank statement of a patient's turn, each with its end mark.

    Not ``split_sentences``: a patient's facts are read statement by statement, and clinical shorthand
    separates statements with ";" and line ends ("PSA 12; on ADT") where prose would not. Offsets are
    kept because the readers report positions in the turn."""
    out: list[tuple[str, int]] = []
    start = 0
    for m in _STATEMENT_END.finditer(text):
        if text[start : m.end()].strip():
            out.append((text[start : m.end()], start))
        start = m.end()
    if text[start:].strip():
        out.append((text[start:], start))
    return out


def has_hard_break(text: str) -> bool:
    """True when ``text`` crosses a hard clause boundary (``;`` ``:`` but, however, whereas, although)."""
    return bool(_HARD_CLAUSE_BREAK.search(text))


# ---------------------------------------------------------------- names (therapies, drugs)
@functools.lru_cache(maxsize=2048)
def name_pattern(name: str, *, ignore_case: bool | None = None) -> re.Pattern[str]:
    """Regex for a name that tolerates spacing/hyphen/underscore variants and letter–digit joins, so
    "lu177_psma617", "Lu-177 PSMA-617" and "Lu177-PSMA-617" all match each other.

    By default names of up to three characters (AA/P, RP, ADT) match only in their exact case — as a
    lower-case word they are often something else; ``ignore_case`` overrides that."""
    if ignore_case is None:
        ignore_case = len(name) > 3
    return re.compile(r"(?<![\w-])" + _name_body(name) + r"(?![\w-])", re.I if ignore_case else 0)


def names_pattern(
    names: Iterable[str], *, exact: bool = False, hyphen_joins: bool = True, ignore_case: bool = True
) -> re.Pattern[str] | None:
    """One regex matching any of ``names``, longest first; None if there are none.

    By default case-insensitive, with the spelling variants of ``name_pattern``. ``exact``: each name only as
    written (but for case) — for a matcher that looks the matched text up in a name → id table, which a variant
    spelling would miss. ``hyphen_joins`` (default): a hyphen next to a name makes it part of another word
    ("anti-PD-1"); readers of patients' own phrasing turn it off ("docetaxel-naive", "post-docetaxel")."""
    bodies = [re.escape(n) if exact else _name_body(n) for n in sorted(set(names), key=len, reverse=True)]
    if not bodies:
        return None
    edge = r"[\w-]" if hyphen_joins else r"\w"
    return re.compile(rf"(?<!{edge})(?:" + "|".join(bodies) + rf")(?!{edge})", re.I if ignore_case else 0)


class NameMatcher:
    """The names of a vocabulary found in text, each mapped to its id: the one name matcher of the assistant.

    ``ids_by_name``: lower-cased name → id (the patient reader passes the therapy lexicon's whole table, the
    safety screen a narrower one). Names in ``exact_case`` (as written) match only in that case: "ADT", "RP" —
    as lower-case words they are often something else. Names match as written (``names_pattern(exact=True)``),
    so every hit is looked up in the table; where names overlap the longest wins."""

    def __init__(
        self, ids_by_name: Mapping[str, str], *, exact_case: Iterable[str] = (), hyphen_joins: bool = True
    ) -> None:
        self.ids_by_name = dict(ids_by_name)
        exact_case = set(exact_case)
        folded = {n.lower() for n in exact_case}
        any_case = [n for n in self.ids_by_name if n not in folded]
        self._patterns = [
            rx
            for rx in (
                names_pattern(any_case, exact=True, hyphen_joins=hyphen_joins),
                names_pattern(exact_case, exact=True, hyphen_joins=hyphen_joins, ignore_case=False),
            )
            if rx is not None
        ]

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """(id, start, end) of every name in ``text``, left to right; a longer name wins over one inside it."""
        hits: list[tuple[int, int, str]] = []
        for rx in self._patterns:
            for m in rx.finditer(text):
                tid = self.ids_by_name.get(m.group(0).lower())
                if tid:
                    hits.append((m.start(), m.end(), tid))
        hits.sort(key=lambda h: (h[0], -(h[1] - h[0])))
        out: list[tuple[str, int, int]] = []
        for start, end, tid in hits:
            if out and start < out[-1][2]:
                continue  # a shorter name inside a longer one
            out.append((tid, start, end))
        return out


def _name_body(name: str) -> str:
    parts = re.findall(r"[A-Za-z]+|\d+|[^\sA-Za-z\d_\-]", name)
    return r"[\s\-_]*".join(re.escape(p) for p in parts) if parts else re.escape(name)


def find_names(text: str, names: Mapping[str, Sequence[str]]) -> list[tuple[str, int, int]]:
    """(id, start, end) of every name of every id found in ``text``; the id itself (and with spaces for
    underscores) counts as a name. A regimen name "a+b" is found when every component is, at the first."""
    found: list[tuple[str, int, int]] = []
    for tid, ns in names.items():
        for name in sorted({*ns, tid, tid.replace("_", " ")}, key=len, reverse=True):
            if "+" in name:
                parts = [p for p in name.split("+") if p]
                hits = [name_pattern(p.replace("_", " ")).search(text) for p in parts]
                if all(hits):
                    found.append((tid, hits[0].start(), hits[0].end()))  # type: ignore[union-attr]
                continue
            for m in name_pattern(name).finditer(text):
                found.append((tid, m.start(), m.end()))
    return found
