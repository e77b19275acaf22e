"""The safety invariant, proven by generated patients over the shipped corpus (STYLE.md §16).

For every therapy rule: build a patient from the rule's own conditions so that it fires (and the
answer offers its drug); then, one at a time, add each fact that contraindicates each drug it offers
— every `contraindicated` check of every safety profile covering the drug, and an allergy to the drug
or its allergen classes — and assert that the drug is offered nowhere: no recommend/consider finding,
not in the plan's must-mention list, not named as an option in the Bottom line or the Options section
of the composed answer. Pairs whose fact cannot coexist with the rule's scope (pregnancy in a rule for
men) are skipped and counted. Hypothesis then varies the same pairs (which class member, which value
past a threshold, allergy severity, irrelevant extra facts) and shrinks any failure to its smallest
patient. Neighbour-state and sibling-drug checks move one fact over and re-check.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from assistant.errors import CorpusValidationError
from assistant.knowledge import Condition, Knowledge, TherapyRule
from assistant.models import LabValue, PatientContext
from assistant.plan import build_plan
from assistant.rules import RuleEngine
from assistant.testing.patients import Goal, PatientSolver, evaluate
from assistant.testing.safety_harness import (
    ALLERGY_SEVERITIES,
    ContraFact,
    contra_facts,
    fires,
    hits_naming,
    load_for_safety,
    offer_violations,
    offered_drugs,
    offered_in_findings,
    partner_drugs,
    partner_violations,
    rule_goals,
)

REAL_CORPUS = Path(__file__).resolve().parents[2] / "corpus"

QUESTION = "What are the treatment options for this patient?"


def _therapy_rule_ids() -> list[str]:
    # Collection needs the ids; an invalid corpus becomes one failing case that names the problem.
    try:
        know = load_for_safety(REAL_CORPUS)
    except CorpusValidationError as exc:
        return [f"<corpus invalid: {exc}>"]
    return [r.id for r in know.rules if isinstance(r, TherapyRule)]


RULE_IDS = _therapy_rule_ids()


def _rule(knowledge: Knowledge, rule_id: str) -> TherapyRule:
    rule = knowledge.rules_by_id.get(rule_id)
    if not isinstance(rule, TherapyRule):
        pytest.fail(rule_id)
    return rule


def _short(ctx: PatientContext) -> str:
    """A compact patient for failure messages."""
    data = ctx.model_dump(exclude_defaults=True, exclude={"changes", "notes"})
    for t in data.get("therapies", []):
        t.pop("classes", None)
        t.pop("mention", None)
    for lab in data.get("labs", {}).values():
        lab.pop("mention", None)
        lab.pop("name", None)
    for b in data.get("biomarkers", []):
        b.pop("mention", None)
    for a in data.get("allergy_details", []):
        a.pop("mention", None)
    return str(data)


# ------------------------------------------------------------------ baseline: the rule fires
def baseline(solver: PatientSolver, engine: RuleEngine, rule: TherapyRule, tries: int = 12) -> PatientContext | None:
    """A patient built from the rule's own conditions for whom the engine offers the rule's therapy."""
    for i, ctx in enumerate(solver.solutions(rule_goals(rule))):
        if fires(engine.evaluate(ctx), rule):
            return ctx
        if i >= tries:
            break
    return None


@dataclass
class PairResult:
    status: str  # tested | incompatible | unsolvable
    ctx: PatientContext | None = None
    violations: tuple[str, ...] = ()


def with_fact(
    solver: PatientSolver, rule: TherapyRule, base: PatientContext, fact: ContraFact, severity: str = "severe"
) -> tuple[str, PatientContext | None]:
    """The baseline plus the contraindicating fact, keeping the rule in scope; or why there is none."""
    for ctx in fact.apply(solver, base, severity):
        if solver.holds(ctx, rule.applies_when) is True:
            return "tested", ctx
    if fact.allergen is None:
        if solver.solve(fact.goals()) is None:
            return "unsolvable", None
        # Built together from scratch, the fact first: the rule's own choices (age, sex …) adapt to it.
        for goals in ([*fact.goals(), *rule_goals(rule)], [*fact.goals(), *rule_goals(rule, scope_only=True)]):
            ctx = solver.solve(goals)
            if ctx is not None:
                return "tested", ctx
    return "incompatible", None


def check_pair(assistant, knowledge: Knowledge, ctx: PatientContext, drug: str) -> list[str]:
    """Where the answer for this patient still offers `drug` (empty: the invariant holds)."""
    answer = assistant.ask(QUESTION, context=ctx, context_is_final=True)
    plan = build_plan(list(answer.findings), answer.patient_context, knowledge.lexicon)
    return offer_violations(
        drug,
        knowledge,
        answer.findings,
        must_mention=plan.must_mention,
        markdown=answer.answer_markdown,
        citations=answer.citations,
    )


# ------------------------------------------------------------------ the exhaustive generator
@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_fires_and_each_contraindication_withdraws_its_drug(
    rule_id, knowledge, engine, assistant, retriever, report
):
    if rule_id.startswith("<corpus invalid"):
        pytest.fail(rule_id)
    rule = _rule(knowledge, rule_id)
    solver = PatientSolver(knowledge)
    report.counts["rules"] += 1
    base = baseline(solver, engine, rule)
    if base is None:
        report.counts["rules_unsolved"] += 1
        gaps = ", ".join(f"{k}×{n}" for k, n in solver.unsupported.most_common(4)) or "no atom gap"
        report.notes.append(f"{rule_id}: no generated patient makes it fire ({gaps})")
        pytest.fail(f"{rule_id}: the solver found no patient for whom this rule fires ({gaps})")
    report.counts["rules_fired"] += 1
    rules_only = RuleEngine(knowledge, safety=False)
    failures: list[str] = []
    for drug in offered_drugs(rule):
        retriever.hits = hits_naming(knowledge, rule, drug)
        # The rule's own patient gets its drug offered in the composed answer (the "fires" half).
        answer = assistant.ask(QUESTION, context=base, context_is_final=True)
        assert any(f.rule_id == rule_id and f.kind in ("recommend", "consider") for f in answer.findings), (
            f"{rule_id} fires in the engine but not in the answer for {_short(base)}"
        )
        facts = contra_facts(knowledge, drug)
        if not facts:
            report.counts["drugs_without_profile"] += 1
            report.notes.append(f"{rule_id}: {drug} has no safety profile (procedure or missing profile)")
            continue
        for fact in facts:
            status, ctx = with_fact(solver, rule, base, fact)
            if status == "incompatible":
                report.counts["pairs_incompatible"] += 1
                continue
            if status == "unsolvable":
                report.counts["facts_unsolvable"] += 1
                report.notes.append(f"{fact.label}: the solver cannot build this fact")
                continue
            assert ctx is not None
            report.counts["pairs_tested"] += 1
            if offered_in_findings(rules_only.evaluate(ctx), drug):
                report.counts["pairs_guarded_by_safety_pass"] += 1  # only the label profile stands in the way
            found = check_pair(assistant, knowledge, ctx, drug)
            if found:
                report.counts["pair_failures"] += 1
                line = f"{rule_id} × {fact.label}: {drug} still offered — {'; '.join(found)} | patient {_short(ctx)}"
                report.failures.append(line)
                failures.append(line)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_partner_drugs_are_not_listed_when_contraindicated(rule_id, knowledge, engine, assistant, retriever, report):
    """Drugs a rule names in `drugs` beside its therapy (given with it, or alternatives its reason lists):
    when one is contraindicated, an option that still names it must carry a warning saying so."""
    if rule_id.startswith("<corpus invalid"):
        pytest.fail(rule_id)
    rule = _rule(knowledge, rule_id)
    partners = partner_drugs(rule, knowledge.lexicon)
    if not partners:
        return
    solver = PatientSolver(knowledge)
    base = baseline(solver, engine, rule)
    if base is None:
        pytest.skip("rule does not fire (reported by the main generator)")
    failures: list[str] = []
    for drug in partners:
        retriever.hits = hits_naming(knowledge, rule, drug)
        for fact in contra_facts(knowledge, drug):
            status, ctx = with_fact(solver, rule, base, fact)
            if status != "tested" or ctx is None:
                continue
            answer = assistant.ask(QUESTION, context=ctx, context_is_final=True)
            if not fires(answer.findings, rule):
                report.counts["partner_pairs_tested"] += 1
                continue  # the whole option was withdrawn
            report.counts["partner_pairs_tested"] += 1
            found = partner_violations(drug, knowledge, answer.findings, answer.answer_markdown)
            warned = any(f.kind in ("warn", "exclude") and f.therapy == drug for f in answer.findings)
            if found and warned:
                # The safety pass's design for partners: the option stays (a substitute may exist) with a
                # warning that names the contraindication. Counted and shown, not failed.
                report.counts["partner_listed_with_warning"] += 1
                report.notes.append(f"{rule_id} × {fact.label}: partner {drug} still named in the option, with a warning")
            elif found:
                report.counts["partner_failures"] += 1
                line = f"{rule_id} × {fact.label} (partner {drug}, no warning): {'; '.join(found)}"
                report.failures.append(line)
                failures.append(line)
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------ hypothesis: the same pairs, varied
@dataclass(frozen=True)
class Pair:
    rule_id: str
    drug: str
    fact: ContraFact


@pytest.fixture(scope="session")
def pairs(knowledge, engine) -> list[Pair]:
    solver = PatientSolver(knowledge)
    out: list[Pair] = []
    for rule in knowledge.rules:
        if not isinstance(rule, TherapyRule) or baseline(solver, engine, rule) is None:
            continue
        for drug in offered_drugs(rule):
            out.extend(Pair(rule.id, drug, f) for f in contra_facts(knowledge, drug))
    return out


# Facts that rarely matter to a rule; each one is kept only when it changes none of the verdicts involved.
_EXTRA_LABS = ("ldl", "hba1c", "hemoglobin", "potassium", "sodium", "calcium", "platelets", "albumin")


@st.composite
def extras(draw) -> dict:
    labs = draw(st.dictionaries(st.sampled_from(_EXTRA_LABS), st.floats(0.5, 250, allow_nan=False), max_size=3))
    return {
        "labs": labs,
        "ecog": draw(st.none() | st.integers(0, 2)),
        "weight_kg": draw(st.none() | st.floats(45, 130, allow_nan=False)),
        "symptomatic": draw(st.none() | st.booleans()),
    }


def _add_irrelevant(knowledge: Knowledge, ctx: PatientContext, extra: dict, goals: list[Goal]) -> PatientContext:
    """`ctx` plus each extra fact that leaves every goal's verdict as it was."""
    before = [evaluate(knowledge, ctx, g.cond) for g in goals]
    for name, value in extra["labs"].items():
        if name in ctx.labs:
            continue
        cand = ctx.model_copy(update={"labs": {**ctx.labs, name: LabValue(name=name, value=round(value, 2))}})
        if [evaluate(knowledge, cand, g.cond) for g in goals] == before:
            ctx = cand
    for key in ("ecog", "weight_kg", "symptomatic"):
        if extra[key] is None or getattr(ctx, key) is not None:
            continue
        cand = ctx.model_copy(update={key: extra[key]})
        if [evaluate(knowledge, cand, g.cond) for g in goals] == before:
            ctx = cand
    return ctx


class Env:
    """The session's fixtures in one argument with a short repr (hypothesis prints a failing example's
    arguments; a plain class, because its printer expands dataclasses field by field)."""

    def __init__(self, knowledge, engine, assistant, retriever, pairs, report) -> None:
        self.knowledge, self.engine, self.assistant = knowledge, engine, assistant
        self.retriever, self.pairs, self.report = retriever, pairs, report

    def __repr__(self) -> str:
        return f"Env(real corpus, {len(self.pairs)} pairs)"


@pytest.fixture(scope="session")
def env(knowledge, engine, assistant, retriever, pairs, report) -> Env:
    return Env(knowledge, engine, assistant, retriever, pairs, report)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_hypothesis_varied_pairs_never_offer_a_contraindicated_drug(data, env):
    knowledge, engine, assistant, retriever, pairs, report = (
        env.knowledge, env.engine, env.assistant, env.retriever, env.pairs, env.report
    )
    if not pairs:
        pytest.skip("no (rule, fact) pairs: no safety profiles loaded")
    report.counts["hypothesis_examples"] += 1
    # Draw an index, not the pair: a drawn value is printed, and a pair holds whole condition trees.
    pair = pairs[data.draw(st.integers(0, len(pairs) - 1), label="pair index")]
    note(f"pair: {pair.rule_id} × {pair.fact.label} ({pair.drug})")
    rng = data.draw(st.randoms(use_true_random=False), label="choices")
    rule = _rule(knowledge, pair.rule_id)
    solver = PatientSolver(knowledge, rng=rng, budget=800)
    base = baseline(solver, engine, rule, tries=4)
    if base is None:
        return  # this random path found no firing patient; the exhaustive test covers the rule
    goals = rule_goals(rule) + pair.fact.goals()
    base = _add_irrelevant(knowledge, base, data.draw(extras(), label="extras"), goals)
    if not fires(engine.evaluate(base), rule):
        return
    severity = data.draw(st.sampled_from(ALLERGY_SEVERITIES), label="allergy severity")
    status, ctx = with_fact(solver, rule, base, pair.fact, severity)
    if status != "tested" or ctx is None:
        return
    report.counts["hypothesis_pairs"] += 1
    retriever.hits = hits_naming(knowledge, rule, pair.drug)
    found = check_pair(assistant, knowledge, ctx, pair.drug)
    assert not found, f"{rule.id} × {pair.fact.label}: {pair.drug} still offered — {found} | patient {_short(ctx)}"


# ------------------------------------------------------------------ neighbour states
# One step over: the prostate states along the disease course, the urinary tract, the phase of VTE care.
_NEIGHBOURS = {
    "state": ("disease_state", ("BCR", "nmHSPC", "mHSPC", "nmCRPC", "mCRPC")),
    "infection_site": ("infection_site", ("cystitis", "pyelonephritis", "urosepsis")),
    "phase": ("care_phase", ("initial", "extended")),
}


def _scoping_atoms(cond: Condition | None) -> list[tuple[str, list[str]]]:
    """(atom, allowed values) for neighbour atoms that must hold (top level or inside `all`) for `cond`."""
    if cond is None:
        return []
    out: list[tuple[str, list[str]]] = []
    for key, value in cond.atoms():
        if key in _NEIGHBOURS:
            out.append((key, list(value)))
        elif key == "all":
            for child in value:
                out.extend(_scoping_atoms(child))
    return out


def _neighbour_cases() -> list[tuple[str, str, str]]:
    try:
        know = load_for_safety(REAL_CORPUS)
    except CorpusValidationError:
        return []
    cases = []
    for r in know.rules:
        if not isinstance(r, TherapyRule):
            continue
        for atom, allowed in _scoping_atoms(r.applies_when) + _scoping_atoms(r.eligible_when):
            for other in _NEIGHBOURS[atom][1]:
                if other not in allowed:
                    cases.append((r.id, atom, other))
    return list(dict.fromkeys(cases))


@pytest.mark.parametrize(("rule_id", "atom", "other"), _neighbour_cases())
def test_a_rule_scoped_to_one_state_does_not_offer_in_the_neighbour(rule_id, atom, other, knowledge, engine, report):
    rule = _rule(knowledge, rule_id)
    base = baseline(PatientSolver(knowledge), engine, rule)
    if base is None:
        pytest.skip("rule does not fire (reported by the main generator)")
    field = _NEIGHBOURS[atom][0]
    moved = base.model_copy(update={field: other})
    report.counts["neighbour_checks"] += 1
    findings = engine.evaluate(moved)
    assert not fires(findings, rule), f"{rule_id} still offers {rule.therapy} with {field}={other}: {_short(moved)}"
    # Whatever else is offered there is offered by a rule that speaks about the neighbour state.
    for f in findings:
        if f.kind in ("recommend", "consider") and f.therapy == rule.therapy:
            other_rule = knowledge.rules_by_id.get(f.rule_id)
            assert isinstance(other_rule, TherapyRule) and evaluate(knowledge, moved, other_rule.applies_when) is True


# ------------------------------------------------------------------ sibling drugs of a class
_STATUS = {"received": "received", "progressed_on": "progressed", "current": "ongoing", "intolerant_to": "intolerant"}

def _class_atoms(cond: Condition | None, classes: set[str]) -> list[tuple[str, str]]:
    """(therapy atom, class token) pairs that make `cond` true when present (not those under a `not`)."""
    if cond is None:
        return []
    out = []
    for key, value in cond.atoms():
        if key in ("all", "any"):
            for child in value:
                out.extend(_class_atoms(child, classes))
        elif key in _STATUS:
            out.extend((key, tok) for tok in value if tok in classes)
    return out


def _sibling_cases() -> list[tuple[str, str, str, str, str]]:
    try:
        know = load_for_safety(REAL_CORPUS)
    except CorpusValidationError:
        return []
    classes = know.lexicon.classes
    cases = []
    for r in know.rules:
        if not isinstance(r, TherapyRule):
            continue
        for ex in r.exclusions:
            for atom, tok in _class_atoms(ex.when, classes):
                for member in sorted(know.lexicon.class_members[tok]):
                    cases.append((r.id, "exclusion:" + ex.id, atom, tok, member))
        for atom, tok in _class_atoms(r.eligible_when, classes):
            for member in sorted(know.lexicon.class_members[tok]):
                cases.append((r.id, "eligible", atom, tok, member))
    return list(dict.fromkeys(cases))


@pytest.mark.parametrize(("rule_id", "where", "atom", "cls", "member"), _sibling_cases())
def test_a_class_condition_covers_every_member(rule_id, where, atom, cls, member, knowledge, engine, report):
    """'After an ARPI' means after any ARPI: an exclusion or a prerequisite written with a class token
    must behave the same whichever member the patient had."""
    rule = _rule(knowledge, rule_id)
    solver = PatientSolver(knowledge, rng=random.Random(0))
    base = baseline(PatientSolver(knowledge), engine, rule)
    if base is None:
        pytest.skip("rule does not fire (reported by the main generator)")
    exposure = solver._exposure(member, _STATUS[atom])
    if member in offered_drugs(rule) or member == rule.therapy:
        pytest.skip("the member is the rule's own therapy (repeat-after-progression applies)")
    report.counts["sibling_checks"] += 1
    if where == "eligible":
        # Replace whatever member satisfied the prerequisite by this one; re-solve the rest around it.
        kept = [t for t in base.therapies if not knowledge.lexicon.matches(t.therapy, cls)]
        start = base.model_copy(update={"therapies": [*kept, exposure]})
        ctx = solver.solve(rule_goals(rule), base=start)
        if ctx is None or not any(t.therapy == member for t in ctx.therapies):
            pytest.skip(f"no patient with {member} meets the rest of the rule")
        assert fires(engine.evaluate(ctx), rule), f"{rule_id} does not accept {member} as {atom} {cls}: {_short(ctx)}"
    else:
        ex = next(e for e in rule.exclusions if "exclusion:" + e.id == where)
        start = base.model_copy(update={"therapies": [*base.therapies, exposure]})
        ctx = solver.solve([Goal(ex.when, True)], base=start)
        if ctx is None:
            pytest.skip(f"the rest of exclusion {ex.id} cannot be built with {member}")
        assert not fires(engine.evaluate(ctx), rule), f"{rule_id} still offered after {atom} {member} ({cls}): {_short(ctx)}"
