"""Cross-reference checks over the loaded corpus, and the printed validation report.

Run by the package's `_build` after `loaders`: every cite resolves to a block or section, every therapy token
in a rule is a lexicon id or class, every drug a rule or an approval can offer is covered by a safety profile.
`format_report` is what `python -m assistant.knowledge` prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.knowledge.lexicon import Lexicon
from assistant.knowledge.records import CorpusRef, Problem, ValidationReport
from assistant.knowledge.schema import (
    _REF_RE,
    _THERAPY_ATOMS,
    Condition,
    Rule,
    SafetyProfile,
    TherapyRule,
    WarningRule,
    offered_drugs,
)
from assistant.knowledge.yaml_lines import _atom_line, _line_at
from assistant.oncology.records import Approval

# Procedures need no drug label; every other therapy a rule can offer must have a safety profile.
_PROCEDURE_CLASSES = frozenset({"radiation_therapy", "surgery", "surgical_castration", "procedure"})


def _check_safety_coverage(
    rules: list[Rule],
    profiles: list[SafetyProfile],
    lexicon: Lexicon,
    report: ValidationReport,
    approvals: Iterable[Approval] = (),
) -> None:
    """Every drug a therapy rule or an approval record can offer is covered by a safety profile (procedures excepted)."""
    if not profiles or not lexicon.entries:
        return
    missing: dict[str, list[str]] = {}
    offers: list[tuple[str, list[str]]] = [(r.id, offered_drugs(r)) for r in rules if isinstance(r, TherapyRule)]
    offers += [(a.id, list(a.regimen)) for a in approvals]
    for rid, drugs in offers:
        for drug in drugs:
            if set(lexicon.classes_of(drug)) & _PROCEDURE_CLASSES:
                continue
            if not any(lexicon.matches(drug, tok) for p in profiles for tok in p.applies_to):
                missing.setdefault(drug, []).append(rid)
    for drug, rule_ids in sorted(missing.items()):
        report.errors.append(
            Problem(
                "corpus/safety",
                None,
                f"no safety profile covers {drug!r} (offered by {', '.join(rule_ids[:3])}"
                f"{' …' if len(rule_ids) > 3 else ''}); add one to corpus/safety/",
            )
        )


def _check_rule_refs(
    rule: Rule, raw: Any, rel: str, refs: dict[str, CorpusRef], lexicon: Lexicon, report: ValidationReport
) -> None:
    def where(*keys: Any) -> int:
        return _line_at(raw, keys, getattr(raw, "line", 0))

    def check_cites(cites: list[str], *keys: Any) -> None:
        for c in cites:
            if c in refs:
                continue
            m = _REF_RE.match(c)
            hint = ""
            if m and any(r.doc_id == m["doc"] for r in refs.values()):
                hint = f" (document {m['doc']!r} exists; no heading with slug {m['slug']!r})"
            elif m:
                hint = f" (no document with id {m['doc']!r})"
            report.errors.append(
                Problem(rel, where(*keys), f"rule {rule.id}: cite {c!r} resolves to nothing{hint}")
            )

    check_cites(rule.cite, "cite")
    lex_ready = bool(lexicon.entries)

    def check_token(token: str, what: str, *keys: Any) -> None:
        if lex_ready and not lexicon.is_known(token):
            subtree = raw
            for k in keys:
                subtree = (
                    subtree[k]
                    if isinstance(subtree, (dict, list))
                    and (
                        (isinstance(subtree, dict) and k in subtree)
                        or (isinstance(subtree, list) and isinstance(k, int))
                    )
                    else subtree
                )
            report.errors.append(
                Problem(
                    rel,
                    _atom_line(subtree, what, token) or where(*keys),
                    f"rule {rule.id}: {what} {token!r} is not a therapy id or class in the lexicon",
                )
            )

    def check_condition(cond: Condition | None, *keys: Any) -> None:
        if cond is None:
            return
        for node in cond.walk():
            for atom in _THERAPY_ATOMS:
                for token in getattr(node, atom) or []:
                    check_token(token, atom, *keys)

    if isinstance(rule, TherapyRule):
        check_token(rule.therapy, "therapy", "therapy")
        if lex_ready and rule.therapy not in lexicon.entries and "+" in rule.therapy:
            report.warnings.append(
                Problem(
                    rel,
                    where("therapy"),
                    f"rule {rule.id}: regimen {rule.therapy!r} is not in the lexicon (components are)",
                )
            )
        for i, d in enumerate(rule.drugs):
            check_token(d, "drug", "drugs", i)
        check_condition(rule.applies_when, "applies_when")
        check_condition(rule.population, "population")
        check_condition(rule.eligible_when, "eligible_when")
        for i, ex in enumerate(rule.exclusions):
            check_condition(ex.when, "exclusions", i, "when")
            check_cites(ex.cite, "exclusions", i, "cite")
    elif isinstance(rule, WarningRule):
        check_condition(rule.when, "when")
        if rule.therapy:
            check_token(rule.therapy, "therapy", "therapy")
    else:
        check_condition(rule.when, "when")


def format_report(report: ValidationReport, corpus_dir: Path | str) -> str:
    c = report.counts
    lines = [
        f"corpus: {corpus_dir}",
        f"  digests: {c.get('digests', 0)}   labels: {c.get('labels', 0)}   recommendation blocks: {c.get('recommendations', 0)}",
        f"  rules: {c.get('rules', 0)} (therapy {c.get('rules_therapy', 0)}, warning {c.get('rules_warning', 0)}, "
        f"question {c.get('rules_question', 0)})   lexicon: {c.get('therapies', 0)} therapies, {c.get('therapy_classes', 0)} classes",
        f"  safety profiles: {c.get('safety_profiles', 0)} ({c.get('safety_checks', 0)} checks)   conditions: {c.get('conditions', 0)}",
    ]
    for w in report.warnings:
        lines.append(f"WARNING {w}")
    for e in report.errors:
        lines.append(f"ERROR {e}")
    lines.append(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    return "\n".join(lines)
