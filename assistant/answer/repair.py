"""Repair: a checked draft and its `VerifyResult` → the text that is shown. Pure (no model calls): unknown
citations were already dropped by the verifier; here uncited claims get the passage that measurably supports
them (`attach_citations`), offending sentences are struck or flagged (`strike`), missing warnings and questions
are appended (`append_required`), and `finalize` runs the last check on exactly what will be shown and returns the
final text with its report (a new report; the verifier's is never edited).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.answer.format import WARN_ASK_SECTION, flagged, heading, note
from assistant.answer.support import SupportScorer, lexical_support, strip_citations
from assistant.answer.verify import VerifyResult, Violation, inspect_answer, parse_answer
from assistant.models import AnswerPlan, Citation, Finding, VerificationReport
from ingest.text import content_words, split_sentences


def _rebuild(pieces: list[list[tuple[str | None, str]]], drop: set[tuple[int, int]], flag: set[tuple[int, int]]) -> str:
    out: list[str] = []
    for i, row in enumerate(pieces):
        if row and row[0][0] is None:
            out.append(row[0][1])  # heading or blank line: as written
            continue
        kept = [flagged(s.strip()) if (i, j) in flag else s.strip() for j, (_p, s) in enumerate(row) if (i, j) not in drop]
        if row and not kept:
            continue  # every sentence of this line was struck
        out.append((row[0][0] or "") + " ".join(kept))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()



def append_required(text: str, missing: Sequence[Finding], valid: set[int], audience: str = "clinician") -> str:
    """Add the missing warn/ask findings under their own heading, each with its valid citations."""
    if not missing:
        return text
    lines = ["", heading(WARN_ASK_SECTION)]
    seen: set[str] = set()
    for f in missing:
        reason = re.sub(r"\s+", " ", f.reason).strip()
        if reason.lower() in seen:
            continue
        seen.add(reason.lower())
        marks = "".join(f"[{n}]" for n in f.citations if n in valid)
        label = "Warning" if f.kind == "warn" else ("Your care team may ask" if audience == "patient" else "Clarify")
        if marks:
            sents = [x if x.endswith((".", "?", "!")) else x + "." for x in split_sentences(reason)]
            body = " ".join(x[:-1] + " " + marks + x[-1] for x in sents)
        else:
            # Reviewed rule text with no retrieved passage: shown as a marked rule note, not as a cited claim.
            body = note(f"{reason.rstrip('.')} (rule check; no passage retrieved).")
        lines.append(f"- **{label}:** {body}")
    return text.rstrip() + "\n" + "\n".join(lines)



def attach_citations(
    text: str,
    *,
    citations: Sequence[Citation],
    plan: AnswerPlan,
    scorer: SupportScorer,
    shortlist: int = 3,
    context_text: str = "",
) -> tuple[str, list[str]]:
    """Give each uncited claim the given passage that supports it best, when support clears the threshold.

    Small models often state a correct, passage-backed fact and forget the [n]; attribution by code
    (measured, like every other citation) keeps the sentence instead of striking it. Candidates are
    short-listed lexically so at most ``shortlist`` passages per sentence are embedded.
    """
    _lines, pieces, sentences = parse_answer(text)
    support_texts: dict[int, list[str]] = {
        c.number: [
            f"{t}\n{context_text}" if context_text else t
            for t in [
                c.passage,
                *(f"{(f.therapy or '').replace('_', ' ')} {f.title} {f.strength} {f.reason}" for f in plan.findings if c.number in f.citations),
            ]
        ]
        for c in citations
    }
    notes: list[str] = []
    changed: dict[tuple[int, int], str] = {}
    for s in sentences:
        if s.kind != "claim" or s.citations:
            continue
        bare = strip_citations(s.text)
        if len(content_words(bare)) < 3:
            continue
        ranked = sorted(
            support_texts,
            key=lambda n: max(lexical_support(bare, t) for t in support_texts[n]),
            reverse=True,
        )[:shortlist]
        best = max(ranked, key=lambda n: scorer.score(bare, support_texts[n]), default=None)
        if best is None or scorer.score(bare, support_texts[best]) < scorer.threshold:
            continue
        stripped = s.text.rstrip()
        end = stripped[-1] if stripped[-1:] in ".!?" else ""
        changed[(s.line, s.index)] = (stripped[:-1] if end else stripped) + f" [{best}]" + end
        notes.append(f"citations: attached [{best}] by measured support to “{bare[:80]}”")
    if not changed:
        return text, notes
    rows = [[(p, changed.get((i, j), x)) for j, (p, x) in enumerate(row)] for i, row in enumerate(pieces)]
    return _rebuild(rows, set(), set()), notes



def strike(result: VerifyResult, *, flag_only: Sequence[str] = ()) -> tuple[str, list[str]]:
    """Remove offending sentences (or flag them, for checks listed in ``flag_only``); returns text + notes."""
    _lines, pieces, _ = parse_answer(result.text)
    drop: set[tuple[int, int]] = set()
    flag: set[tuple[int, int]] = set()
    by_sentence: dict[tuple[int, int], list[Violation]] = {}
    for v in result.violations:
        if v.line is not None and v.index is not None:
            by_sentence.setdefault((v.line, v.index), []).append(v)
    notes: list[str] = []
    for key, vs in by_sentence.items():
        checks = ", ".join(dict.fromkeys(v.check for v in vs))
        # A sentence is only kept (flagged) when every one of its problems is flag-only.
        if all(v.check in flag_only for v in vs):
            flag.add(key)
            notes.append(f"flagged ({checks}): {vs[0].message}")
        else:
            drop.add(key)
            notes.append(f"struck ({checks}): {vs[0].message}")
    return _rebuild(pieces, drop, flag), notes



def finalize(
    text: str,
    *,
    citations: Sequence[Citation],
    plan: AnswerPlan,
    scorer: SupportScorer,
    context_text: str,
    audience: str,
    mode: str,
    failed: Sequence[str] = (),
    repaired: Sequence[str] = (),
) -> tuple[str, VerificationReport]:
    """The last check of exactly what will be shown → (text, report).

    Missing warnings and questions are appended; the composer's text (``mode`` composer or composer-fallback) is
    not struck — it is the last resort — but its unsupported sentences are flagged and it is never shown as
    verified; its support check is lexical (its sentences are reviewed rule text or verbatim passage quotes, so an
    embedding pass would only cost time: the caller passes a lexical ``scorer``). ``failed``/``repaired`` are the
    notes of earlier passes (the model's draft check), listed first in the report.
    """
    composer = mode.startswith("composer")
    failed_notes = list(failed)
    repaired_notes = list(repaired)

    # The contradiction check reads what the model wrote (generate.Writer.check); the rule-derived sections
    # state limits of the offered drugs on purpose ("rivaroxaban is avoided below CrCl 15").
    def inspect_final(body: str) -> VerifyResult:
        return inspect_answer(
            body, citations=citations, plan=plan, scorer=scorer, context_text=context_text, check_contradiction=False,
        )

    final = inspect_final(text)
    if final.missing_required:
        text = append_required(final.text, final.missing_required, {c.number for c in citations}, audience)
        repaired_notes.append("required: appended " + ", ".join(f"{f.kind} {f.rule_id}" for f in final.missing_required))
        failed_notes.extend(
            f"required: {f.kind} finding {f.rule_id} was missing"
            for f in final.missing_required
            if not any(f.rule_id in x for x in failed_notes)
        )
        final = inspect_final(text)
    if composer and final.violations:
        # Deterministic text is not struck (it is the last resort) but never shown as verified.
        text, notes = strike(final, flag_only=("support", "uncited", "excluded-therapy"))
        repaired_notes.extend(notes)
    report = final.report
    checked = [c if c != "support" else "support (lexical)" for c in report.checked] if composer else report.checked
    return text, report.model_copy(
        update={
            "failed": list(dict.fromkeys([*failed_notes, *report.failed])),
            "repaired": list(dict.fromkeys([*repaired_notes, *report.repaired])),
            "mode": mode,
            "verified": not final.violations and not final.missing_required,
            "checked": checked,
        }
    )
