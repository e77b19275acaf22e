"""Findings → the answer plan the generator must follow and the verifier enforces."""

from __future__ import annotations

from assistant.knowledge import Lexicon
from assistant.models import AnswerPlan, Finding, PatientContext


def build_plan(findings: list[Finding], ctx: PatientContext, lexicon: Lexicon | None = None) -> AnswerPlan:
    """Turn engine findings into must-mention / must-not-recommend / must-warn / should-ask lists.

    `must_mention` keeps the engine's order (preferred first). `must_not_recommend` holds every
    excluded therapy id that no rule offers, plus — when a lexicon is given — its brand names and
    synonyms, so the verifier can catch "Pluvicto" as well as `lu177_psma617`. Conflicts (engine
    findings whose rule id starts with ``CONFLICT:``) are listed separately and also kept as warnings.
    """
    planned = {t.therapy for t in ctx.therapies if t.status == "planned"}
    focus = set(ctx.focus)
    if focus:
        # A drug the clinician proposes puts its condition in scope ("prescribed TMP-SMX for a UTI").
        focus |= {f.domain for f in findings if f.therapy in planned and f.domain}

    def in_focus(f: Finding) -> bool:
        # Offers for conditions the question is not about stay in the findings (the rule panel shows
        # them) but are not forced into the answer: a pneumonia question need not discuss statins.
        return not focus or f.domain in (None, "general") or f.domain in focus or f.therapy in planned

    offered: list[str] = []
    all_offered: set[str] = set()
    also_noted: list[str] = []
    for f in findings:
        if f.kind in ("recommend", "consider") and f.therapy:
            all_offered.add(f.therapy)
            if not in_focus(f):
                also_noted.append(f.rule_id)
            elif f.therapy not in offered:
                offered.append(f.therapy)
    excluded: list[str] = []
    for f in findings:
        if f.kind == "exclude" and f.therapy and f.therapy not in all_offered and f.therapy not in excluded:
            excluded.append(f.therapy)
    # A drug excluded on its own but offered inside a regimen ("olaparib" vs "olaparib+abiraterone") cannot be
    # banned by name: the verifier could not tell the two apart.
    components = {p for t in all_offered for p in t.split("+")}
    must_not: list[str] = [t for t in excluded if t not in components]
    if lexicon is not None:
        # A name shared with an offered therapy (a regimen component) must stay sayable.
        sayable = {n.lower() for t in all_offered for n in lexicon.names_of(t)}

        def forbid(names: list[str]) -> None:
            for n in names:
                if n.lower() not in sayable and n not in must_not:
                    must_not.append(n)

        gone = [t for t in excluded if t not in components]
        for t in gone:
            forbid(lexicon.names_of(t))
        # Every named member of a class is excluded: the class word ("DOACs") must not be offered either.
        for members in (getattr(lexicon, "class_members", None) or {}).values():
            named = {m for m in members if not m.endswith("_unspecified") and "+" not in m}
            if len(named) >= 2 and named <= set(gone):
                for m in sorted(members - named):
                    forbid(lexicon.names_of(m))
    must_warn = _unique(f.reason for f in findings if f.kind == "warn")
    should_ask = _unique(f.reason for f in findings if f.kind == "ask")
    conflicts = _unique(f.reason for f in findings if f.kind == "warn" and f.rule_id.startswith("CONFLICT:"))
    return AnswerPlan(
        findings=list(findings),
        must_mention=offered,
        must_not_recommend=must_not,
        must_warn=must_warn,
        should_ask=should_ask,
        conflicts=conflicts,
        also_noted=list(dict.fromkeys(also_noted)),
        offered_names={t: (lexicon.names_of(t) if lexicon is not None else [t]) for t in offered},
    )


def _unique(items) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))
