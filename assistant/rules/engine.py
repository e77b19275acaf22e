"""The rule engine: corpus rule records + a PatientContext → typed, ordered findings.

The rule stage's entry point (`RuleEngine(knowledge).evaluate(ctx)`, called by the pipeline after
patient extraction and before the answer plan). Per evaluation it builds a `PatientView`, evaluates
every therapy, warning and question rule with `conditions._Evaluator`, adds the oncology approval
matches (`assistant/oncology/match.py`), resolves overlaps between rules (`_finalise`: dedupe asks,
surface conflicts, sort by `finding_order`) and runs the safety pass (`safety.py`) over every offer.
Pure and fast: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from assistant.knowledge import (
    AskItem,
    Knowledge,
    QuestionRule,
    Rule,
    TherapyRule,
    WarningRule,
)
from assistant.models import Finding, PatientContext
from assistant.oncology.match import OncologyMatch, match_approvals
from assistant.rules.conditions import _Evaluator, generic_question
from assistant.rules.safety import SafetyPass
from assistant.rules.view import PatientView
from ingest.text import QUESTION_STOPWORDS

_KIND_ORDER = {"recommend": 0, "consider": 1, "exclude": 2, "warn": 3, "ask": 4}
_SEVERITY_ORDER = {"high": 0, "moderate": 1, "info": 2}


def strength_rank(strength: str) -> int:
    """Rough order of graded strength so stronger recommendations come first among equals."""
    s = strength.lower()
    for rank, words in enumerate(
        (("strong", "category 1", "grade a"), ("fda-approved", "label"), ("moderate", "category 2a", "grade b"),
         ("conditional", "weak", "category 2b", "grade c"), ("clinical principle",), ("expert opinion",))
    ):  # fmt: skip
        if any(w in s for w in words):
            return rank
    return 9


class RuleEngine:
    """Evaluates every corpus rule against one patient. Holds no per-patient state."""

    def __init__(self, knowledge: Knowledge, *, safety: bool = True) -> None:
        self.knowledge = knowledge
        self.lexicon = knowledge.lexicon
        self.rules: list[Rule] = list(knowledge.rules)
        # Every offer passes the drug's label profile for this patient before anyone sees it.
        self.safety: SafetyPass | None = SafetyPass(knowledge) if safety else None

    def view(self, ctx: PatientContext) -> PatientView:
        return PatientView.build(
            ctx,
            self.lexicon,
            getattr(self.knowledge, "reference_uln", None),
            getattr(self.knowledge, "non_gene_markers", None),
        )

    # -- helpers
    def _unverified(self, rule: Rule, refs: list[str]) -> bool:
        return bool(rule.unverified) or self.knowledge.is_unverified(refs)

    def _name(self, therapy: str) -> str:
        entry = self.lexicon.entries.get(therapy)
        if entry is not None and entry.names:
            return entry.names[0]
        return " + ".join(
            (
                self.lexicon.entries[p].names[0]
                if p in self.lexicon.entries and self.lexicon.entries[p].names
                else p
            )
            for p in therapy.split("+")
        ).replace("_", " ")

    def _asks(self, rule: Rule, items: list[AskItem], unknown: list[str], view: PatientView) -> list[Finding]:
        out = []
        covered: set[str] = set()
        for item in items:
            if item.fact in unknown and item.fact not in covered:
                covered.add(item.fact)
                out.append(self._ask(rule, item.fact, item.question))
        for fact in unknown:
            if fact not in covered and not any(fact.startswith(f"{c}:") for c in covered):
                covered.add(fact)
                out.append(self._ask(rule, fact, generic_question(fact)))
        return out

    def _ask(self, rule: Rule, fact: str, question: str) -> Finding:
        refs = list(rule.cite)
        therapy = getattr(rule, "therapy", None)
        return Finding(
            rule_id=rule.id,
            domain=rule.domain,
            kind="ask",
            therapy=therapy,
            title=fact,
            reason=question,
            refs=refs,
            unverified=self._unverified(rule, refs),
        )

    # -- per rule type
    def _therapy(self, rule: TherapyRule, view: PatientView) -> list[Finding]:
        scope = _Evaluator(view)
        if scope.cond(rule.applies_when) is not True:
            return []
        refs = list(rule.cite)
        if rule.population is not None and _Evaluator(view).cond(rule.population) is False:
            # Written for another population (an adult guideline, a child here): not this corpus's answer.
            reason = rule.population_reason or "This recommendation's guideline was written for another population."
            return [self._therapy_finding(rule, "exclude", reason, refs, severity="scope")]
        hits: list[tuple[str, list[str]]] = []
        scope_only = True
        ex_eval = _Evaluator(view)
        for ex in rule.exclusions:
            if ex_eval.cond(ex.when) is True:
                hits.append((ex.reason, ex.cite))
                scope_only = scope_only and ex.scope
        if not rule.repeat_after_progression and view.any_match(("progressed",), [rule.therapy]):
            hits.append(
                (f"Disease already progressed on {self._name(rule.therapy)}; it is not repeated.", [])
            )
        if hits:
            ex_refs = list(dict.fromkeys(refs + [c for _, cites in hits for c in cites]))
            reason = " ".join(reason.strip() for reason, _ in hits)
            # Outside the guideline's population: not an answer the corpus gives for this patient.
            return [self._therapy_finding(rule, "exclude", reason, ex_refs, severity="scope" if scope_only else None)]
        elig = _Evaluator(view)
        eligible = elig.cond(rule.eligible_when)
        if eligible is False:
            # Marked so conflict handling can tell "not this pathway" from "must not give".
            return [self._therapy_finding(rule, "exclude", rule.ineligible_reason, refs, severity="ineligible")]
        if eligible is None:
            return self._asks(rule, rule.ask_if_unknown, elig.unknown + ex_eval.unknown, view)
        found = self._therapy_finding(rule, rule.finding, rule.reason, refs)
        # Eligible, but an exclusion could not be ruled out: offer it and ask what would exclude it.
        return [found, *self._asks(rule, rule.ask_if_unknown, ex_eval.unknown, view)]

    def _therapy_finding(
        self, rule: TherapyRule, kind: str, reason: str, refs: list[str], severity: str | None = None
    ) -> Finding:
        return Finding(
            rule_id=rule.id,
            domain=rule.domain,
            kind=kind,  # type: ignore[arg-type]
            therapy=rule.therapy,
            title=rule.title,
            reason=reason.strip(),
            strength=rule.strength,
            preference=rule.preference,
            refs=refs,
            unverified=self._unverified(rule, refs),
            severity=severity,
        )

    def _warning(self, rule: WarningRule, view: PatientView) -> list[Finding]:
        ev = _Evaluator(view)
        res = ev.cond(rule.when)
        if res is True:
            refs = list(rule.cite)
            return [
                Finding(
                    rule_id=rule.id,
                    domain=rule.domain,
                    kind="warn",
                    therapy=rule.therapy,
                    title=rule.title,
                    reason=rule.message.strip(),
                    severity=rule.severity,
                    refs=refs,
                    unverified=self._unverified(rule, refs),
                )
            ]
        if res is None and rule.ask_if_unknown:
            return self._asks(rule, rule.ask_if_unknown, ev.unknown, view)
        return []

    def _question(self, rule: QuestionRule, view: PatientView) -> list[Finding]:
        if _Evaluator(view).cond(rule.when) is not True or not view.fact_unknown(rule.missing):
            return []
        return [self._ask(rule, rule.missing, rule.question)]

    # -- public
    def evaluate(self, ctx: PatientContext) -> list[Finding]:
        view = self.view(ctx)
        raw: list[Finding] = []
        for rule in self.rules:
            if isinstance(rule, TherapyRule):
                raw.extend(self._therapy(rule, view))
            elif isinstance(rule, WarningRule):
                raw.extend(self._warning(rule, view))
            else:
                raw.extend(self._question(rule, view))
        raw.extend(self._oncology(ctx))
        findings = _finalise(raw, self._name)
        if self.safety is None or (not getattr(self.knowledge, "safety_profiles", None) and not ctx.allergies and not ctx.declined):
            return findings
        return _after_safety(self.safety.apply(findings, view))

    def oncology_match(self, ctx: PatientContext) -> OncologyMatch:
        """FDA biomarker-directed approvals for the patient's tumour (corpus/oncology), before the safety pass."""
        vocab = getattr(self.knowledge, "oncology", None)
        approvals = getattr(self.knowledge, "approvals", None)
        if vocab is None or not approvals or ctx.tumour is None:
            return OncologyMatch()
        names = {tid: self._name(tid) for tid in self.lexicon.entries}
        return match_approvals(ctx, approvals, vocab, self.lexicon, names, self.knowledge.is_unverified)

    def _oncology(self, ctx: PatientContext) -> list[Finding]:
        return self.oncology_match(ctx).findings

    def drugs_in(self, text: str) -> list[str]:
        """Therapy ids named in a text (generic, brand or synonym)."""
        return self.safety.matcher.ids_in(text) if self.safety is not None else []

    def screen(self, ctx: PatientContext, drugs: Iterable[str], findings: Iterable[Finding]) -> list[Finding]:
        """Safety exclusions for drugs named outside the rules (passages, question, draft)."""
        if self.safety is None:
            return []
        known = {f.therapy for f in findings if f.therapy and f.kind in ("recommend", "consider", "exclude")}
        return self.safety.screen(drugs, self.view(ctx), known=known)


def finding_order(f: Finding) -> tuple:
    """Offers by preference then strength, then exclusions, warnings by severity, questions."""
    order = _KIND_ORDER[f.kind]
    if f.kind in ("recommend", "consider"):
        return (0, f.preference if f.preference is not None else 99, order, strength_rank(f.strength))
    if f.kind == "warn":
        return (order, _SEVERITY_ORDER.get(f.severity or "", 3))
    return (order, 0)


def _after_safety(findings: list[Finding]) -> list[Finding]:
    """Re-order after the safety pass and drop questions that only matter to therapies now excluded."""
    offered = {f.therapy for f in findings if f.kind in ("recommend", "consider") and f.therapy}
    excluded_only = {f.therapy for f in findings if f.kind == "exclude" and f.therapy} - offered
    rest = [f for f in findings if f.kind != "ask"]
    asks = [f for f in findings if f.kind == "ask" and not (f.therapy and f.therapy in excluded_only)]
    # One question per wording: the safety pass asks "Could the patient be pregnant?" for every drug whose label
    # depends on it; the clinician reads it once, with the drugs it decides.
    merged: dict[str, tuple[Finding, list[str]]] = {}
    marker = " (decides whether "
    for a in asks:
        question, _, tail = a.reason.partition(marker)
        key = question.strip().lower()
        drugs = [tail.removesuffix(" can be used)")] if tail else []
        if key in merged:
            first, names = merged[key]
            names.extend(d for d in drugs if d not in names)
            merged[key] = (first.model_copy(update={"refs": list(dict.fromkeys(first.refs + a.refs))}), names)
        else:
            merged[key] = (a, drugs)
    unique_asks = []
    for first, names in merged.values():
        if names:
            question = first.reason.partition(marker)[0]
            shown = ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]
            first = first.model_copy(update={"reason": f"{question}{marker}{shown} can be used)"})
        unique_asks.append(first)

    return sorted(rest, key=finding_order) + unique_asks


def _finalise(raw: list[Finding], name: Callable[[str], str]) -> list[Finding]:
    """Resolve overlaps between rules: dedupe asks, drop redundant ineligibility, surface conflicts, sort."""
    offered = {f.therapy for f in raw if f.kind in ("recommend", "consider") and f.therapy}
    hard_excluded = {
        f.therapy for f in raw if f.kind == "exclude" and f.severity != "ineligible" and f.therapy
    }
    out: list[Finding] = []
    for f in raw:
        if f.kind == "exclude" and f.severity == "ineligible" and f.therapy in offered:
            continue  # another indication of the same therapy fits; this pathway's prerequisites don't matter
        out.append(f.model_copy(update={"severity": None}) if f.severity == "ineligible" else f)
    conflicts: list[Finding] = []
    for therapy in sorted(offered & hard_excluded):
        pro = [f for f in out if f.therapy == therapy and f.kind in ("recommend", "consider")]
        con = [f for f in out if f.therapy == therapy and f.kind == "exclude"]
        refs = list(dict.fromkeys(r for f in pro + con for r in f.refs))
        conflicts.append(
            Finding(
                rule_id="CONFLICT:" + therapy,
                domain=(pro + con)[0].domain,
                kind="warn",
                therapy=therapy,
                title=f"Rules disagree on {name(therapy)}",
                reason=(
                    f"{', '.join(f.rule_id for f in pro)} would offer {name(therapy)} but "
                    f"{', '.join(f.rule_id for f in con)} excludes it ({con[0].reason}); treated as excluded "
                    "until a clinician reviews it."
                ),
                severity="high",
                refs=refs,
                unverified=any(f.unverified for f in pro + con),
            )
        )
        # The exclusion wins: the offer is withdrawn from the findings the plan is built from.
        out = [f for f in out if not (f.therapy == therapy and f.kind in ("recommend", "consider"))]
    out.extend(conflicts)
    # Asks: one per fact (or identical wording), refs merged.
    asks: dict[str, Finding] = {}
    rest: list[Finding] = []
    for f in out:
        if f.kind != "ask":
            rest.append(f)
            continue
        key = f.title or f.reason.lower()
        if key not in asks:
            # Two rules asking the same thing in other words ("Has MSI/dMMR testing been done?") are one question.
            words = _ask_words(f.reason)
            key = next((k for k, a in asks.items() if _similar(words, _ask_words(a.reason))), key)
        if key in asks:
            prev = asks[key]
            asks[key] = prev.model_copy(update={"refs": list(dict.fromkeys(prev.refs + f.refs))})
        else:
            asks[key] = f
    # Never ask for a fact that only matters to therapies already excluded for this patient.
    excluded_only = {f.therapy for f in rest if f.kind == "exclude"} - {
        f.therapy for f in rest if f.kind in ("recommend", "consider")
    }
    ask_list = [a for a in asks.values() if not (a.therapy and a.therapy in excluded_only)]

    ordered = sorted(rest, key=finding_order)  # stable: rule-file order breaks ties
    return ordered + ask_list


def _ask_words(text: str) -> frozenset[str]:
    head = text.split("?")[0]  # the question itself, not the explanation after it
    return frozenset(w for w in re.findall(r"[a-z0-9]+", head.lower()) if w not in QUESTION_STOPWORDS)


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a and b) and len(a & b) / len(a | b) >= 0.6
