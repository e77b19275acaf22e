"""Code checks the answer; it never trusts it (STYLE.md §8). Pure: a draft in, a `VerifyResult` (with its
`VerificationReport`) out — the draft is never edited here except that unknown citation numbers are dropped from
the returned text; `repair` turns a draft and its result into the text that is shown.

Checks, in order:
1. ``citations`` — every [n] refers to a passage actually given; unknown numbers are removed.
2. ``uncited`` — a clinical sentence (enough content words, not a heading/note/question) must cite.
3. ``support`` — each cited sentence must be supported by what it cites (`support.SupportScorer`: lexical
   recall blended with MiniLM cosine, numbers enforced).
4. ``excluded-therapy`` — no sentence may recommend a therapy the rules excluded (generic, brand or
   synonym), negation- and history-aware: "do not use X", "after progression on X" are fine.
5. ``contradiction``, ``dose``, ``meta`` — no sentence speaks against an offered therapy, gives a dose the rules
   contradict, or talks about the prompt.
6. ``required`` — every warn and ask finding must appear (`repair.append_required` adds missing ones).

``inspect_answer`` returns the cleaned text, per-sentence results and violations; ``verify_answer`` gives the
``VerificationReport`` for an already-final text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from assistant.answer.format import HEADING_LINE, NOTE_SPAN, SECTIONS, is_note, section_titles
from assistant.answer.support import SupportScorer, lexical_support, strip_citations
from assistant.models import AnswerPlan, Citation, Finding, VerificationReport
from assistant.patient.vocab import load_cues
from ingest.text import clause_bounds, content_words, find_names, has_hard_break, split_sentences

CHECKS = ("citations", "uncited", "support", "excluded-therapy", "contradiction", "dose", "meta", "required")

# A sentence about the prompt rather than the patient ("The second sentence explains …", "the passages
# say …", "as an AI …"): small models echo their instructions; a clinician must never read that.
_META = re.compile(
    r"\b(?:first|second|third|fourth|above|following|previous|last|next) (?:sentence|passage|paragraph|bullet)s?\b"
    r"|\bthe (?:given |provided |numbered |cited )?(?:context|prompt|instructions?|passages?|excerpts?)\b"
    r"|\bas an (?:AI|assistant|language model)\b|\b(?:system|user) (?:prompt|message)\b",
    re.IGNORECASE,
)

# A dose, not a concentration: "2.5 mg" and "20 mg/m²" count, "1.5 mg/dL" (a lab value) does not.
_DOSE = re.compile(
    r"(\d+(?:[.,]\d+)?)\s?(mg|mcg|µg|g|GBq|mL|units?|IU)\b(?!\s*/\s*(?:dl|l|ml|mmol|min|24))", re.IGNORECASE
)


def doses_in(text: str) -> set[str]:
    """Dose strings normalised to "<number> <unit>" ("2.5 mg", "7.4 gbq")."""
    return {f"{float(n.replace(',', '.')):g} {u.lower()}" for n, u in _DOSE.findall(text)}


def dose_conflicts(sentence: str, findings: Sequence[Finding], names: Mapping[str, Sequence[str]]) -> list[str]:
    """Warnings whose dose the sentence contradicts.

    A `warn` finding that names a dose for a therapy (e.g. "the AF dose is 2.5 mg twice daily") is the
    rule engine's patient-specific result; a sentence that gives that therapy only other doses
    (e.g. "apixaban 5 mg twice daily") contradicts it, however well a passage supports the number.
    """
    text = strip_citations(sentence)
    if not _DOSE.search(text):
        return []
    mentions = sorted(therapy_mentions(text, names), key=lambda m: m[1]) if names else []
    out = []
    for f in findings:
        if f.kind != "warn" or not f.therapy:
            continue
        warned = doses_in(f.reason)
        if not warned:
            continue
        own = therapy_mentions(text, {f.therapy: list(names.get(f.therapy, [])) or [f.therapy]})
        if not own:
            continue
        # Only doses that belong to this therapy: the nearest therapy named before the dose is this one.
        said = set()
        for m in _DOSE.finditer(text):
            before = [t for t in (mentions or own) if t[2] <= m.start()]
            if before and before[-1][0] == f.therapy and m.start() - before[-1][2] <= 80:
                said |= doses_in(m.group(0))
        if said and not said & warned:
            out.append(f"{f.rule_id}: the rules give {', '.join(sorted(warned))} for {f.therapy}")
    return out



# ---------------------------------------------------------------- text helpers
_CITE = re.compile(r"\[(\d{1,3})\]")
_MD_NOISE = re.compile(r"[*_`>#]+")


def _normalise_cites(line: str) -> str:
    """Move citations that follow the full stop in front of it ("x. [1]" → "x [1].") so splitting keeps them."""
    return re.sub(r"([.!?])((?:\s*\[\d{1,3}\])+)", lambda m: " " + m.group(2).strip() + m.group(1), line)


@dataclass
class Sentence:
    line: int
    index: int
    text: str
    section: str
    citations: list[int]
    kind: str = "claim"  # claim | note | question | heading
    support: float | None = None
    problems: list[str] = field(default_factory=list)


_LIST = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+)(.*)$")


def parse_answer(text: str) -> tuple[list[str], list[list[tuple[str | None, str]]], list[Sentence]]:
    """Split Markdown into lines → (prefix, sentence) pieces → Sentence records with their section."""
    lines = text.splitlines()
    pieces: list[list[tuple[str | None, str]]] = []
    sentences: list[Sentence] = []
    section = ""
    for i, raw in enumerate(lines):
        h = HEADING_LINE.match(raw)
        if h:
            section = _MD_NOISE.sub("", h.group(1)).strip()
            pieces.append([(None, raw)])  # None prefix: a line kept verbatim (heading, blank)
            continue
        if not raw.strip():
            pieces.append([(None, raw)])
            continue
        m = _LIST.match(raw)
        prefix, body = (m.group(1), m.group(2)) if m else ("", raw)
        # Italic spans are notes about the answer (kept whole, never split into "claims").
        parts: list[tuple[str, bool]] = []
        pos = 0
        norm = _normalise_cites(body)
        for it in NOTE_SPAN.finditer(norm):
            parts.extend((x, False) for x in split_sentences(norm[pos : it.start()]) if x.strip())
            parts.append((it.group(0), True))
            pos = it.end()
        parts.extend((x, False) for x in split_sentences(norm[pos:]) if x.strip())
        row: list[tuple[str | None, str]] = []
        for j, (s, italic) in enumerate(parts):
            row.append((prefix if j == 0 else " ", s))
            bare = s.strip()
            if italic or is_note(bare):
                kind = "note"
            elif strip_citations(bare).endswith("?"):
                kind = "question"
            else:
                kind = "claim"
            nums = [int(n) for n in _CITE.findall(s)]
            sentences.append(Sentence(line=i, index=j, text=s, section=section, citations=nums, kind=kind))
        pieces.append(row)
    return lines, pieces, sentences



# ---------------------------------------------------------------- excluded therapies
@functools.cache
def _cue_patterns() -> dict[str, re.Pattern[str]]:
    """The verifier's cue patterns: the grammar here, the words from corpus/lexicon/cues.yaml (``answer_*``)."""
    cues = load_cues()
    return {
        "negation": cues.compile(r"\b{w}\b", w="answer_negation"),
        # History just before the name: "after progression on X", "previously treated with X".
        "history": cues.compile(r"\b{w}\b(?:\W+\w+){0,3}\W*$", w="answer_history"),
        "positive": cues.compile(r"\b{w}\b", w="answer_positive"),
        # Said of a therapy the plan offers, in the same clause, this contradicts the plan ("X is the preferred
        # option … and is not recommended"): the reader cannot tell which half to believe.
        "against": cues.compile(r"\b{w}\b", w="answer_against"),
        # A condition or threshold qualifies the negative ("avoided below CrCl 15", "contraindicated from 38 weeks").
        "conditional": cues.compile(r"\b{w}", w="answer_conditional"),
    }


def therapy_mentions(sentence: str, names: Mapping[str, Sequence[str]]) -> list[tuple[str, int, int]]:
    """(therapy id, start, end) of every name of the given therapies found in the sentence, citations removed."""
    return find_names(strip_citations(sentence), names)


def _recommended_excluded(sentence: Sentence, names: Mapping[str, Sequence[str]], not_rec_titles: set[str]) -> list[str]:
    if sentence.section.lower() in not_rec_titles or sentence.kind == "note":
        return []
    text = strip_citations(sentence.text)
    bad: list[str] = []
    in_option_section = sentence.section.lower() in _OPTION_SECTIONS
    cue = _cue_patterns()
    for tid, start, end in therapy_mentions(sentence.text, names):
        # The clause around the mention decides: negation anywhere in it, or history just before the name.
        clause_start, clause_end = clause_bounds(text, start, end)
        clause = text[clause_start:clause_end]
        before = text[clause_start:start]
        if cue["negation"].search(clause) or cue["history"].search(before):
            continue
        if cue["negation"].search(text) and not cue["positive"].search(clause):
            continue  # "X was not shown to help; Y is preferred" style sentences negate the whole statement
        if in_option_section or cue["positive"].search(text):
            bad.append(tid)
    return list(dict.fromkeys(bad))


def contradicts_offer(
    sentence: Sentence, offered: Mapping[str, Sequence[str]], forbidden: Sequence[str] = ()
) -> list[str]:
    """Offered therapies that the sentence speaks against (outside 'Not recommended').

    Each negative phrase ("not recommended", "avoid", "contraindicated") is read as being about the therapy named
    last before it in the same clause — parentheses do not end the clause ("X is preferred (8.0 months [1]) and is
    not recommended …"); a forbidden therapy named in between takes the negative ("enoxaparin is preferred, and
    DOACs should be avoided"); a negated negative ("is not contraindicated") or a condition ("avoid if CrCl < 30")
    is not a contradiction."""
    if sentence.kind == "note" or sentence.section.lower() in _NOT_REC_TITLES:
        return []
    text = strip_citations(sentence.text)
    others = {f"~{n}": [n] for n in forbidden if len(n) >= 3}
    mentions = sorted(therapy_mentions(text, {**offered, **others}), key=lambda m: m[1])
    bad: list[str] = []
    cue = _cue_patterns()
    for hit in cue["against"].finditer(text):
        if re.search(r"\b(?:not|never|no longer)\s+(?:\w+\s+)?$|n't\s+(?:\w+\s+)?$", text[: hit.start()], re.I):
            continue  # "is not contraindicated": a negated negative speaks for the drug
        before = [m for m in mentions if m[2] <= hit.start() and not has_hard_break(text[m[2] : hit.start()])]
        if not before:
            continue
        tid, _start, end = before[-1]
        if tid.startswith("~") or cue["conditional"].search(text[end : hit.end()]):
            continue
        bad.append(tid)
    return list(dict.fromkeys(bad))


_OPTION_SECTIONS = {
    s.lower()
    for s in (*section_titles("clinician"), *section_titles("patient"))
    if s not in (SECTIONS[2], section_titles("patient")[2], SECTIONS[3], section_titles("patient")[3], SECTIONS[4], section_titles("patient")[4])
}
_NOT_REC_TITLES = {SECTIONS[2].lower(), section_titles("patient")[2].lower()}



# ---------------------------------------------------------------- required findings
def finding_present(f: Finding, sentences: Sequence[Sentence], min_recall: float = 0.5) -> bool:
    """A warn/ask finding counts as present when one sentence restates most of its reason's content words."""
    target = f.reason
    return any(lexical_support(target, s.text) >= min_recall for s in sentences if s.kind != "heading")


def required_missing(plan: AnswerPlan, sentences: Sequence[Sentence]) -> list[Finding]:
    return [f for f in plan.findings if f.kind in ("warn", "ask") and not finding_present(f, sentences)]



# ---------------------------------------------------------------- the inspection
@dataclass
class Violation:
    check: str
    message: str
    line: int | None = None
    index: int | None = None


@dataclass
class VerifyResult:
    text: str
    sentences: list[Sentence]
    violations: list[Violation]
    report: VerificationReport
    missing_required: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.violations and not self.missing_required

    @property
    def offending(self) -> set[tuple[int, int]]:
        return {(v.line, v.index) for v in self.violations if v.line is not None and v.index is not None}


_MIN_CLAIM_WORDS = 5


def inspect_answer(
    text: str,
    *,
    citations: Sequence[Citation],
    plan: AnswerPlan,
    therapy_names: Mapping[str, Sequence[str]] | None = None,
    scorer: SupportScorer | None = None,
    check_support: bool = True,
    check_required: bool = True,
    context_text: str = "",
    check_contradiction: bool = True,
) -> VerifyResult:
    """Run every check on ``text``; unknown citation numbers are removed from the returned text."""
    scorer = scorer or SupportScorer(None)
    by_number = {c.number: c for c in citations}
    report = VerificationReport(checked=list(CHECKS) if check_support else [c for c in CHECKS if c != "support"])
    violations: list[Violation] = []

    # 1. unknown citation numbers → removed (repair, and recorded)
    unknown = sorted({int(n) for n in _CITE.findall(text)} - set(by_number))
    if unknown:
        text = _CITE.sub(lambda m: m.group(0) if int(m.group(1)) in by_number else "", text)
        report.failed.append(f"citations: unknown source numbers {unknown}")
        report.repaired.append(f"citations: removed unknown numbers {unknown}")
    _lines, _pieces, sentences = parse_answer(text)

    names = dict(therapy_names or {})
    for tid in plan.must_not_recommend:
        names.setdefault(tid, [tid])

    for s in sentences:
        if s.kind != "claim":
            continue
        bare = strip_citations(s.text)
        if not s.citations:
            if len(content_words(bare)) >= _MIN_CLAIM_WORDS:
                s.problems.append("uncited")
                violations.append(Violation("uncited", f"uncited claim: “{bare[:90]}”", s.line, s.index))
        elif check_support:
            # A rule finding is reviewed corpus content that cites its passages, so its reason also
            # counts as support for a sentence citing the same numbers (it carries the patient logic).
            passages = [by_number[n].passage for n in s.citations if n in by_number]
            passages += [
                f"{(f.therapy or '').replace('_', ' ')} {f.title} {f.strength} {f.reason}"
                for f in plan.findings
                if set(f.citations) & set(s.citations)
            ]
            if context_text:
                # Facts the user gave (question, patient details) may be restated next to cited ones.
                passages = [f"{p}\n{context_text}" for p in passages]
            s.support = scorer.score(bare, passages)
            report.support_scores.append(round(s.support, 3))
            if s.support < scorer.threshold:
                s.problems.append("unsupported")
                violations.append(
                    Violation(
                        "support",
                        f"not supported by {''.join(f'[{n}]' for n in s.citations)} (score {s.support:.2f}): “{bare[:90]}”",
                        s.line,
                        s.index,
                    )
                )
        if _META.search(bare):
            s.problems.append("meta")
            violations.append(Violation("meta", f"talks about the prompt, not the patient: “{bare[:90]}”", s.line, s.index))
        for conflict in dose_conflicts(s.text, plan.findings, therapy_names or {}):
            s.problems.append("dose")
            violations.append(Violation("dose", f"dose contradicts {conflict}: “{bare[:90]}”", s.line, s.index))
        if names:
            for tid in _recommended_excluded(s, names, _NOT_REC_TITLES):
                s.problems.append("excluded-therapy")
                violations.append(
                    Violation("excluded-therapy", f"recommends {tid}, which the rules exclude for this patient: “{bare[:90]}”", s.line, s.index)
                )
        if plan.offered_names and check_contradiction:
            for tid in contradicts_offer(s, plan.offered_names, plan.must_not_recommend):
                s.problems.append("contradiction")
                violations.append(
                    Violation("contradiction", f"speaks against {tid}, which the rules offer for this patient: “{bare[:90]}”", s.line, s.index)
                )

    missing = required_missing(plan, sentences) if check_required else []
    for v in violations:
        report.failed.append(f"{v.check}: {v.message}")
    for f in missing:
        report.failed.append(f"required: {f.kind} finding {f.rule_id} not mentioned")
    return VerifyResult(text=text, sentences=sentences, violations=violations, report=report, missing_required=missing)



def verify_answer(
    text: str,
    *,
    citations: Sequence[Citation],
    plan: AnswerPlan,
    therapy_names: Mapping[str, Sequence[str]] | None = None,
    scorer: SupportScorer | None = None,
    mode: str = "llm",
) -> VerificationReport:
    """The report for a final text: verified only when every check passed."""
    res = inspect_answer(text, citations=citations, plan=plan, therapy_names=therapy_names, scorer=scorer)
    return res.report.model_copy(update={"mode": mode, "verified": res.ok and not res.report.repaired})

