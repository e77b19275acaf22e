"""Deterministic composer: a structured, fully cited Markdown answer from the rule-checked plan and the
numbered passages. It is the `none` backend and the fallback whenever the LLM fails.

Every clinical sentence carries [n] citations, and only numbers of citations actually given. A
finding without a backing passage is still shown (the rules are reviewed data) but its sentence cites
nothing and is marked so the verifier and the reader see it. Lines in ``_italics_`` are notes about
the answer itself, not clinical claims.

Part of the answer stage: the orchestrator composes once per answer and reuses the result (the whole answer
for the `none` backend and the fallback, the rule-derived sections around a model's summary, the follow-ups).
The body is a typed `format.AnswerBody`; `render.render_body` writes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from assistant.answer.citations import cite_marks, plain_text
from assistant.answer.format import AnswerBody, Section, also_noted_title, has_section, note, section_titles
from assistant.answer.prompts import EMPTY_CONTEXT_NOTE, therapy_label
from assistant.answer.render import render_body
from assistant.answer.support import lexical_support
from assistant.models import AnswerPlan, Citation, Finding, PatientContext
from ingest.injection import is_instruction
from ingest.text import names_pattern, split_sentences

_MONITOR = re.compile(
    r"\b(monitor\w*|surveillance|blood counts?|complete blood count|CBC|liver (?:function )?tests?|"
    r"(?:check|measure|test)(?:ed)? (?:\w+ ){0,3}(?:weekly|monthly|every|before each|at baseline|regularly|periodically))\b",
    re.I,
)
_TRIAL = re.compile(r"\b(clinical trials?|trial enrol\w*|enrol\w* in a trial|investigational)\b", re.I)
_PITFALL = re.compile(r"\b(avoid|caution|do not|should not|not recommended|risk|interaction|toxicit\w*)\b", re.I)


@dataclass(frozen=True)
class ComposedAnswer:
    doc: AnswerBody
    follow_ups: list[str] = field(default_factory=list)

    @property
    def body(self) -> str:
        """The body as Markdown."""
        return render_body(self.doc)


def _cite(f: Finding) -> str:
    return " " + cite_marks(f.citations) if f.citations else ""


def _cited(text: str, f: Finding) -> str:
    """Every sentence of ``text`` ends with the finding's citations, before its full stop."""
    if not f.citations:
        return _end(text)
    parts = split_sentences(re.sub(r"\s+", " ", text).strip()) or [text]
    out = []
    for part in parts:
        part = _end(part)
        out.append(part[:-1] + _cite(f) + part[-1])
    return " ".join(out)


def _first_sentence(text: str) -> str:
    parts = split_sentences(text.strip(), maxsplit=1)
    return parts[0] if parts else text


def _lc(text: str) -> str:
    """Lower-case the first letter of a reason that continues a sentence (not an acronym like PSA)."""
    text = text.strip()
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _name(f: Finding, names: Mapping[str, str] | None = None) -> str:
    """Display name: the lexicon's first name for the therapy, else the id made readable, else the title."""
    if f.therapy:
        shown = (names or {}).get(f.therapy)
        return shown or f.therapy.replace("_", " ").replace("+", " + ")
    return therapy_label(f)


def _end(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def _sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text).strip()
    # Very long "sentences" are flattened tables or lists: unreadable as a quote.
    return [s.strip() for s in split_sentences(text) if 20 < len(s.strip()) <= 320]


# ---- issue 14: ingested text is data, never instructions
def _planted(sentence: str, c: Citation | None) -> bool:
    """Never quoted as advice: any sentence of a passage ingest flagged as addressing the model (the whole
    passage is suspect), and any sentence that reads as an instruction (an index built before the flag)."""
    return bool(c is not None and c.flagged) or is_instruction(sentence)


def _passage_sentences(
    citations: Sequence[Citation], pattern: re.Pattern[str], limit: int, seen: set[str] | None = None
) -> list[tuple[str, int]]:
    """Sentences from the given passages that match ``pattern`` (quoted, so support is exact).

    ``seen`` is shared across sections so one quote never appears twice in an answer."""
    out: list[tuple[str, int]] = []
    seen = set() if seen is None else seen
    for c in citations:
        for s in _sentences(plain_text(c.passage)):
            key = s.lower()
            if pattern.search(s) and key not in seen and not _planted(s, c):
                seen.add(key)
                out.append((s, c.number))
                break  # one sentence per passage keeps the section short
        if len(out) >= limit:
            break
    return out


def _merge_by_therapy(findings: list[Finding]) -> list[Finding]:
    """One entry per therapy: several rules excluding the same drug become one bullet (reasons joined)."""
    out: list[Finding] = []
    by_therapy: dict[str, int] = {}
    for f in findings:
        key = f.therapy or f.rule_id
        if key in by_therapy:
            i = by_therapy[key]
            prev = out[i]
            reason = prev.reason if f.reason.strip() in prev.reason else f"{_end(prev.reason)} {f.reason}"
            cites = list(dict.fromkeys([*prev.citations, *f.citations]))
            out[i] = prev.model_copy(update={"reason": reason, "citations": cites})
        else:
            by_therapy[key] = len(out)
            out.append(f)
    return out


def _forbidden_pattern(plan: AnswerPlan) -> re.Pattern[str] | None:
    """Names of every therapy the plan forbids: a passage sentence naming one is never quoted as an option."""
    return names_pattern(n for n in plan.must_not_recommend if len(n) >= 3)


_LABEL_WARNING = re.compile(r"^(?P<drug>.+?) (?P<verb>needs caution|is contraindicated for this patient): (?P<why>.+)$", re.S)


def _merge_label_warnings(warns: Sequence[Finding]) -> list[Finding]:
    """One line for one label warning that holds for several offered drugs (a checkpoint-inhibitor class caution for
    six regimens): "atezolizumab, cemiplimab and nivolumab need caution: …", cited once, at the first drug's place."""
    order: list[Finding | tuple[str, str, str, tuple[int, ...]]] = []
    groups: dict[tuple[str, str, str, tuple[int, ...]], list[tuple[Finding, re.Match[str]]]] = {}
    for f in warns:
        m = _LABEL_WARNING.match(f.reason) if f.rule_id.startswith("SAFETY:") else None
        if m is None:
            order.append(f)
            continue
        key = (m.group("verb"), m.group("why"), f.severity or "", tuple(f.citations))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((f, m))
    merged: list[Finding] = []
    for item in order:
        if isinstance(item, Finding):
            merged.append(item)
            continue
        (first, m), *rest = groups[item]
        if not rest:
            merged.append(first)
            continue
        drugs = list(dict.fromkeys(gm.group("drug") for _, gm in groups[item]))
        names = ", ".join(drugs[:-1]) + f" and {drugs[-1]}" if len(drugs) > 1 else drugs[0]
        verb = "need caution" if m.group("verb") == "needs caution" else "are contraindicated for this patient"
        merged.append(first.model_copy(update={"reason": f"{names} {verb}: {m.group('why')}"}))
    return merged


def _ordered(findings: Sequence[Finding], kinds: tuple[str, ...]) -> list[Finding]:
    sel = [f for f in findings if f.kind in kinds]
    return sorted(sel, key=lambda f: (kinds.index(f.kind), f.preference if f.preference is not None else 99))


def follow_up_questions(
    plan: AnswerPlan,
    citations: Sequence[Citation],
    audience: str = "clinician",
    display_names: Mapping[str, str] | None = None,
) -> list[str]:
    """Three follow-ups derived from the plan: open questions, the next option, monitoring, exclusions."""

    def _label(f: Finding) -> str:
        return _name(f, display_names)

    findings = plan.findings
    options = _ordered(findings, ("recommend", "consider"))
    asks = _ordered(findings, ("ask",))
    excluded = _ordered(findings, ("exclude",))
    warns = _ordered(findings, ("warn",))
    you = "my" if audience == "patient" else "this patient's"
    out: list[str] = []
    if asks:
        topic = _lc(_first_sentence(asks[0].reason)).rstrip("?.")
        out.append(f"How would the options change once this is known — {topic}?")
    if len(options) >= 2:
        out.append(f"What are the eligibility criteria and main risks of {_label(options[1])}?")
    elif options:
        out.append(f"What are the eligibility criteria and main risks of {_label(options[0])}?")
    if options:
        out.append(f"How should {_label(options[0])} be monitored, and when should treatment be changed?")
    if excluded:
        out.append(f"Why is {_label(excluded[0])} not an option for {you} situation?")
    if warns:
        out.append(f"What should be done about this warning — {_lc(_first_sentence(warns[0].reason)).rstrip('.')}?")
    for c in citations:
        if len(out) >= 3:
            break
        topic = (c.section or c.title).split("›")[-1].strip()
        if topic:
            out.append(f"What else does {c.organisation or c.title} say about {topic}?")
    deduped: list[str] = []
    for q in out:
        if q not in deduped:
            deduped.append(q)
    return deduped[:3]


def compose_answer(
    question: str,
    plan: AnswerPlan,
    citations: Sequence[Citation],
    ctx: PatientContext | None = None,
    *,
    audience: str = "clinician",
    display_names: Mapping[str, str] | None = None,
) -> ComposedAnswer:
    """Write the answer from the plan's findings (with their citation numbers) and the passages."""

    def _label(f: Finding) -> str:
        return _name(f, display_names)

    titles = section_titles(audience)
    patient = audience == "patient"
    findings = plan.findings
    valid = {c.number for c in citations}
    findings = [f.model_copy(update={"citations": [n for n in f.citations if n in valid]}) for f in findings]
    aside = set(plan.also_noted)
    all_options = _ordered(findings, ("recommend", "consider"))
    # Offers for other conditions than the one asked about are shown apart, never as options.
    options = [f for f in all_options if f.rule_id not in aside]
    noted = [f for f in all_options if f.rule_id in aside]
    # Passive safety exclusions (drugs only a passage named) stay out of the list; class placeholders
    # ("DOAC") are not listed when a member of the class is.
    excluded = _merge_by_therapy([f for f in _ordered(findings, ("exclude",)) if f.severity != "screen"])
    named = {f.therapy for f in excluded if f.therapy and not f.therapy.endswith("_unspecified")}
    excluded = [
        f
        for f in excluded
        if not (f.therapy or "").endswith("_unspecified") or not named
    ]
    warns = _ordered(findings, ("warn",))
    asks = _ordered(findings, ("ask",))
    sections: list[tuple[str, list[str]]] = []

    def start(title: str) -> list[str]:
        """Open the next section; its lines are appended to the list returned."""
        sections.append((title, []))
        return sections[-1][1]

    quoted: set[str] = set()
    forbidden = _forbidden_pattern(plan)

    # Passages never mined for option or bottom-line quotes (decided once per passage): an excluded drug's own
    # label (its dosing, its indication), and any passage that names an excluded drug ("Apixaban dosing", "… an
    # SGLT2 inhibitor … Once started, continue below eGFR 20") — it reads as that drug's option even in a sentence
    # that does not name it. Both stay citable as evidence.
    banned_docs = set(plan.excluded_docs)
    tainted = {
        c.number
        for c in citations
        if c.doc_id in banned_docs
        or (forbidden is not None and forbidden.search(f"{c.title} {c.section} {c.passage}"))
    }

    def quotable(sentence: str, c: Citation | None = None) -> bool:
        if c is not None and c.number in tainted:
            return False
        if _planted(sentence, c):  # issue 14
            return False
        return forbidden is None or not forbidden.search(sentence)

    # Bottom line
    lines = start(titles[0])
    if options:
        top = options[0]
        verb = "may be worth discussing" if patient else ("is the preferred option" if top.kind == "recommend" else "can be considered")
        if patient:
            lines.append(_cited(f"A treatment that {verb} with your care team is {_label(top)}: {_lc(top.reason)}", top))
        else:
            lines.append(_cited(f"For this patient, {_label(top)} {verb}: {_lc(top.reason)}", top))
    elif citations:
        # No rule applies: lead with the passage sentence closest to the question's own words.
        best = max(
            ((s, c.number) for c in citations for s in _sentences(plain_text(c.passage)) if quotable(s, c)),
            key=lambda sn: lexical_support(question, sn[0]),
            default=None,
        )
        if best:
            lead = "The most relevant guidance says" if not patient else "The guideline closest to your question says"
            lines.append(f"{lead}: “{best[0].rstrip('.')}.” [{best[1]}]")
            quoted.add(best[0].lower())
    if not options and excluded and not lines:
        # Everything the rules would have offered is ruled out for this patient: say so plainly first.
        lines.append(
            note(
                "None of the options the rule checks know for this question fits this patient as described; "
                "the reasons are below — this needs a specialist decision."
            )
            if not patient
            else note("None of the usual treatments fits your situation as described; your care team will need to decide.")
        )
    if excluded:
        names = ", ".join(_label(f) for f in excluded)
        if patient:
            lines.append(note(f"Not suitable for you based on the details given: {names} (see below)."))
        else:
            lines.append(note(f"Excluded by the rule checks for this patient: {names} (see below)."))
    if ctx is None or (
        not ctx.diagnoses and not ctx.therapies and not ctx.disease_state and not ctx.biomarkers and ctx.tumour is None
    ):
        lines.append(note(EMPTY_CONTEXT_NOTE))

    # Options
    lines = start(titles[1])
    if options:
        for i, f in enumerate(options, 1):
            strength = f" ({f.strength})" if f.strength and not patient else ""
            kind = "" if f.kind == "recommend" else (" — to consider" if not patient else " — possibly")
            lines.append(f"{i}. **{_label(f)}**{kind}{strength}: {_cited(f.reason, f)}")
    else:
        lines.append(note("No therapy rule matched this patient; see the cited passages below."))
        # The sentences closest to the question's own words, one per passage (the first sentence of a passage is
        # often about something else: a caution for another population, a dosing detail).
        ranked: list[tuple[float, int, str, int]] = []
        for order, c in enumerate(citations[:8]):
            best = max(
                (
                    (lexical_support(question, x), x)
                    for x in _sentences(plain_text(c.passage))
                    if x.lower() not in quoted and quotable(x, c)
                ),
                default=None,
            )
            if best is not None:
                ranked.append((best[0], order, best[1], c.number))
        for _score, _order, sent, number in sorted(ranked, key=lambda r: (-r[0], r[1]))[:4]:
            quoted.add(sent.lower())
            lines.append(f"- “{sent.rstrip('.')}.” [{number}]")

    # Not recommended
    lines = start(titles[2])
    if excluded:
        for f in excluded:
            why = "declined by the patient" if f.severity == "declined" else "not recommended"
            lines.append(f"- **{_label(f)}** — {why}: {_cited(_lc(f.reason), f)}")
    else:
        lines.append(note("No therapy was excluded by the rule checks for the details given."))

    # Pitfalls: warnings first (rule findings), then cautionary sentences from passages
    lines = start(titles[3])
    for f in _merge_label_warnings(warns):
        sev = f" ({f.severity})" if f.severity and not patient else ""
        lines.append(f"- **Warning{sev}:** {_cited(f.reason, f)}")
    if not warns:
        pit = _passage_sentences(citations, _PITFALL, 2, quoted)
        for s, n in pit:
            lines.append(f"- “{s.rstrip('.')}.” [{n}]")
        if not pit:
            lines.append(note("No specific pitfall is stated in the cited passages."))

    # Monitoring
    lines = start(titles[4])
    option_nums = [n for f in options for n in f.citations]
    ranked = sorted(citations, key=lambda c: (c.number not in option_nums, c.number))
    mon = _passage_sentences(ranked, _MONITOR, 2, quoted)
    for s, n in mon:
        lines.append(f"- “{s.rstrip('.')}.” [{n}]")
    if not mon:
        lines.append(note("The cited passages give no specific monitoring schedule."))

    # Next steps / trials: open questions from the rules, then trial mentions in the passages
    lines = start(titles[5])
    for f in asks:
        prefix = "Your care team may ask" if patient else "Clarify"
        if f.citations:
            lines.append(f"- {prefix}: {_cited(_lc(f.reason), f)}")
        else:
            # No passage backs the rationale: ask the question, keep the why as a marked note.
            question, _, why = _lc(f.reason).partition("? ")
            why_note = f" {note(_end(why))}" if why.strip() else ""
            lines.append(f"- {prefix}: {question.rstrip('?')}?{why_note}")
    trials = _passage_sentences(citations, _TRIAL, 1, quoted)
    for s, n in trials:
        lines.append(f"- “{s.rstrip('.')}.” [{n}]")
    if not asks and not trials:
        lines.append(note("No further step is stated in the cited passages."))
    if plan.conflicts:
        lines.extend(["", note("Sources disagree: " + "; ".join(plan.conflicts))])
    if noted:
        # Not an answer to the question asked; kept visible because it applies to this patient.
        lines = start(also_noted_title(audience))
        for f in noted:
            lines.append(f"- **{_label(f)}** ({(f.domain or '').replace('_', ' ')}): {_cited(f.reason, f)}")

    doc = AnswerBody(tuple(Section(title, tuple(body)) for title, body in sections))
    return ComposedAnswer(doc=doc, follow_ups=follow_up_questions(plan, citations, audience, display_names))


def with_plan_sections(summary: str, composed: ComposedAnswer) -> str:
    """A model's verified summary as the bottom line (with the composer's notes), then the composer's rule-derived
    sections."""
    notes = composed.doc.sections[0].notes
    return render_body(composed.doc.replace_first((summary.strip(), *notes)))


def ensure_bottom_line(text: str, composed: ComposedAnswer, audience: str = "clinician") -> tuple[str, str | None]:
    """Small models sometimes skip the first section: put the composer's (rule-derived) one in front.
    Returns the text and a repair note (None when the section was there)."""
    first = section_titles(audience)[0]
    if has_section(text, first):
        return text, None
    bottom = render_body(composed.doc.head()).strip()
    return f"{bottom}\n\n{text.strip()}", f"structure: '{first}' section was missing; added from the rule-checked plan"
