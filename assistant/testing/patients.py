"""Patients built from rule conditions: a small solver over the condition language (corpus/README.md).

Given goals — a `Condition` and whether it must come out TRUE or FALSE — the solver edits a
`PatientContext` (starting from an empty one, or merging into one it is given) until every goal holds,
and only returns a patient when the rule engine's own evaluator agrees (`assistant.rules.conditions._Evaluator`):
the solver proposes, the engine decides. It searches depth-first with backtracking:

* `all` TRUE → satisfy each child; `any` TRUE → try each alternative; `not` → solve the negation;
  FALSE is the mirror image (`all` FALSE → make one child false, `any` FALSE → make each false);
* a goal that already holds is left alone, so facts chosen for one goal are not undone for the next;
* atoms become concrete facts: a lab just past its threshold, a calculator score reached by choosing
  its inputs (Cockcroft–Gault / CKD-EPI by solving for creatinine, CHA2DS2-VASc / HAS-BLED from age
  and diagnoses), a therapy class resolved to one of its member drugs from the lexicon …

With an `rng` the solver tries alternatives in a random order, so a property-based test (hypothesis
passes a `random.Random` it controls and can shrink) covers every member of a class, every state in a
list and values further past a threshold — not just the first one. Pure: no I/O except reading the
reference ULNs from the corpus lexicon once per solver.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from assistant.knowledge import Condition, Knowledge
from assistant.models import Allergy, Biomarker, LabValue, PatientContext, TherapyExposure
from assistant.rules import PatientView, Tri, calculators
from assistant.rules.conditions import _Evaluator
from assistant.rules.tri import _OPS

_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}

# Which exposure statuses each therapy atom reads (mirrors rules._Evaluator.atom) and which one the solver
# writes to make it true.
_THERAPY_READS: dict[str, tuple[str, ...]] = {
    "received": ("progressed", "intolerant", "completed", "ongoing", "received", "stopped"),
    "progressed_on": ("progressed",),
    "current": ("ongoing",),
    "planned": ("planned",),
    "intolerant_to": ("intolerant",),
}
_THERAPY_WRITES: dict[str, tuple[str, ...]] = {
    "received": ("received", "completed"),
    "progressed_on": ("progressed",),
    "current": ("ongoing",),
    "planned": ("planned",),
    "intolerant_to": ("intolerant",),
}
# Atoms that read one enumerated context field: atom → (field, facts that come with it).
_ENUM_ATOMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "infection_site": ("infection_site", ("uti",)),
    "volume": ("disease_volume", ()),
    "presentation": ("presentation", ()),
    "imaging": ("metastasis_imaging", ()),
    "phase": ("care_phase", ()),
    "child_pugh": ("child_pugh", ("cirrhosis", "liver_disease")),
    "diabetes_type": ("diabetes_type", ("diabetes",)),
}
_REACTIONS = {
    "severe": ("anaphylaxis", "angioedema"),
    "non-severe": ("urticaria", "rash"),
    "intolerance": ("nausea",),
    "unknown": ("",),
}
# Weeks chosen inside each trimester when only the trimester matters.
_TRIMESTER_WEEKS = {1: (8.0, 12.0), 2: (18.0, 24.0), 3: (30.0, 36.0)}
_PREGNANCY_FIELDS = ("pregnant", "gestational_weeks", "trimester", "lactating", "postpartum")


# Anatomy, not clinical rules: a generated patient must be physically possible, so a diagnosis that only
# one sex can have fixes the sex (a "pregnant woman with prostate cancer" proves nothing about safety).
SEX_OF_DIAGNOSIS = {"prostate_cancer": "male"}


def coherent(ctx: PatientContext) -> bool:
    """Can this patient exist? (sex-specific diagnoses agree with the sex and with pregnancy facts)"""
    present = set(ctx.diagnoses) | {k for k, v in ctx.comorbidities.items() if v == "present"}
    for dx in present & set(SEX_OF_DIAGNOSIS):
        sex = SEX_OF_DIAGNOSIS[dx]
        if ctx.sex not in (None, sex):
            return False
        if sex == "male" and (ctx.pregnant or ctx.lactating or ctx.postpartum):
            return False
    return True


def _with_diagnosis(ctx: PatientContext, dx: str) -> dict[str, Any]:
    """The update that adds a diagnosis, with the sex it implies when the sex is not stated."""
    update: dict[str, Any] = {"diagnoses": [d for d in ctx.diagnoses if d != dx] + [dx]}
    if dx in SEX_OF_DIAGNOSIS and ctx.sex is None:
        update["sex"] = SEX_OF_DIAGNOSIS[dx]
    return update


@dataclass(frozen=True)
class Goal:
    """A condition and the truth value the generated patient must give it."""

    cond: Condition
    want: bool


def goal(spec: dict[str, Any] | Condition, want: bool = True) -> Goal:
    """A goal from a condition or from a mapping written in the corpus condition language."""
    cond = spec if isinstance(spec, Condition) else Condition.model_validate(spec)
    return Goal(cond, want)


def patient_view(knowledge: Knowledge, ctx: PatientContext) -> PatientView:
    """The engine's indexed view of a patient, built exactly as `RuleEngine.evaluate` builds it."""
    ref = getattr(knowledge, "reference_uln", None)
    try:
        return PatientView.build(ctx, knowledge.lexicon, ref)  # type: ignore[call-arg]
    except TypeError:  # an engine without reference ULNs
        return PatientView.build(ctx, knowledge.lexicon)


def evaluate(knowledge: Knowledge, ctx: PatientContext, cond: Condition | None) -> Tri:
    """The engine's verdict on one condition for one patient (True / False / None = unknown)."""
    try:
        return _Evaluator(patient_view(knowledge, ctx)).cond(cond)
    except ValueError:  # an atom this engine version cannot evaluate yet: nothing is proven
        return None


def trimester_of(weeks: float) -> int:
    return 1 if weeks < 14 else 2 if weeks < 28 else 3


def _literal_values(field: str) -> tuple[Any, ...]:
    """The allowed values of a Literal (or Optional Literal) field of PatientContext."""
    ann = PatientContext.model_fields[field].annotation
    out: list[Any] = []
    stack = [ann]
    while stack:
        t = stack.pop()
        if get_origin(t) is Literal:
            out.extend(get_args(t))
        else:
            stack.extend(a for a in get_args(t) if a is not type(None))
    return tuple(out)


def reference_uln(corpus_dir: Path) -> dict[str, float]:
    """Reference ULNs from corpus/lexicon/clinical.yaml (the same data the engine converts with)."""
    path = Path(corpus_dir) / "lexicon" / "clinical.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {k: float(v["value"]) for k, v in (data.get("reference_uln") or {}).items() if isinstance(v, dict)}


def _field(value: Any, name: str, default: Any = None) -> Any:
    """Attribute or key: new condition atoms may arrive as models or as plain mappings."""
    if isinstance(value, dict):
        return value.get(name, default)
    return getattr(value, name, default)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


class PatientSolver:
    """Builds patients that make conditions true or false, verified by the rule engine's evaluator.

    `budget` caps the search steps per call (a rule the solver cannot satisfy costs at most that);
    `unsupported` counts atoms it had no way to satisfy, so a report can say why a rule was unsolved.
    """

    def __init__(self, knowledge: Knowledge, rng: random.Random | None = None, budget: int = 2000) -> None:
        self.knowledge = knowledge
        self.lexicon = knowledge.lexicon
        self.rng = rng
        self.budget = budget
        self.unsupported: Counter[str] = Counter()
        self._uln = dict(getattr(knowledge, "reference_uln", None) or reference_uln(knowledge.corpus_dir))
        self._steps = 0

    # ------------------------------------------------------------ public
    def solutions(self, goals: Sequence[Goal], base: PatientContext | None = None) -> Iterator[PatientContext]:
        """Distinct patients (lazily, until the step budget runs out) meeting every goal, merged into `base`."""
        self._steps = 0
        start = (base or PatientContext()).model_copy(deep=True)
        items = tuple(("cond", g.cond, g.want) for g in goals)
        seen: set[str] = set()
        for ctx in self._search(items, start):
            if not coherent(ctx) or not self.satisfies(ctx, goals):
                continue
            key = ctx.model_dump_json()
            if key not in seen:
                seen.add(key)
                yield ctx

    def solve(self, goals: Sequence[Goal], base: PatientContext | None = None) -> PatientContext | None:
        """The first patient meeting every goal, or None when the solver cannot find one."""
        return next(iter(self.solutions(goals, base)), None)

    def holds(self, ctx: PatientContext, cond: Condition | None) -> Tri:
        return evaluate(self.knowledge, ctx, cond)

    def satisfies(self, ctx: PatientContext, goals: Iterable[Goal]) -> bool:
        return all(self.holds(ctx, g.cond) is g.want for g in goals)

    def members(self, token: str) -> list[str]:
        """Therapy ids a rule token stands for: itself (an id or a regimen) or every member of a class."""
        if token in self.lexicon.entries:
            return [token]
        members = sorted(self.lexicon.class_members.get(token, ()))
        return members or [token]

    def order(self, options: Iterable[Any]) -> list[Any]:
        """Alternatives in the order to try: as written, or shuffled by the rng (hypothesis' choice)."""
        out = list(options)
        if self.rng is not None:
            self.rng.shuffle(out)
        return out

    def past(self, op: str, threshold: float, want: bool = True, *, integer: bool = False,
             bounds: tuple[float, float] = (-math.inf, math.inf)) -> float | None:  # fmt: skip
        """A value just past `threshold` so that `value op threshold` is `want` (further past with an rng)."""
        if not want:
            op = _NEGATE[op]
        cmp = _OPS[op]
        if integer:
            lo, hi = max(bounds[0], math.floor(threshold) - 6), min(bounds[1], math.ceil(threshold) + 6)
            ok = sorted((c for c in range(int(lo), int(hi) + 1) if cmp(c, threshold)), key=lambda c: abs(c - threshold))
            if not ok:
                return None
            k = self.rng.choice((0, 0, 1, 3)) if self.rng else 0
            return float(ok[min(k, len(ok) - 1)])
        step = max(abs(threshold) * 0.05, 0.05)
        k = self.rng.choice((1, 1, 2, 4)) if self.rng else 1
        if op in ("<", "!=") or (op == "<=" and self.rng and k > 1):
            value = threshold - k * step
        elif op in (">",) or (op == ">=" and self.rng and k > 1):
            value = threshold + k * step
        else:  # <=, >=, == : the threshold itself is the tightest value
            value = threshold
        if value < bounds[0]:
            value = (threshold + bounds[0]) / 2 if op in ("<", "<=", "!=") else bounds[0]
        value = min(value, bounds[1])
        return round(value, 4) if cmp(round(value, 4), threshold) else (value if cmp(value, threshold) else None)

    # ------------------------------------------------------------ search
    def _atom_value(self, ctx: PatientContext, key: str, value: Any) -> Tri:
        try:
            return _Evaluator(patient_view(self.knowledge, ctx)).atom(key, value)
        except ValueError:
            return None

    def _search(self, items: tuple[tuple[str, Any, bool], ...], ctx: PatientContext) -> Iterator[PatientContext]:
        self._steps += 1
        if self._steps > self.budget:
            return
        if not items:
            yield ctx
            return
        (kind, payload, want), rest = items[0], items[1:]
        if kind == "cond":
            if self.holds(ctx, payload) is want:
                yield from self._search(rest, ctx)
                return
            atoms = payload.atoms()
            if want:
                yield from self._search(tuple(("atom", a, True) for a in atoms) + rest, ctx)
            else:
                for a in self.order(atoms):
                    yield from self._search((("atom", a, False), *rest), ctx)
            return
        key, value = payload
        if self._atom_value(ctx, key, value) is want:
            yield from self._search(rest, ctx)
            return
        if key == "all" or key == "any":
            children = list(value)
            conjunctive = (key == "all") == want  # all-TRUE or any-FALSE: every child must take `want`
            if conjunctive:
                yield from self._search(tuple(("cond", c, want) for c in children) + rest, ctx)
            else:
                for c in self.order(children):
                    yield from self._search((("cond", c, want), *rest), ctx)
            return
        if key == "not":
            yield from self._search((("cond", value, not want), *rest), ctx)
            return
        produced = False
        for option in self._atom_options(key, value, want, ctx):
            produced = True
            yield from self._search(rest, option)
            if self._steps > self.budget:
                return
        if not produced:
            self.unsupported[f"{key}={'true' if want else 'false'}"] += 1

    # ------------------------------------------------------------ atoms → facts
    def _atom_options(self, key: str, value: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        handler = getattr(self, f"_opt_{key}", None)
        if handler is not None:
            yield from handler(value, want, ctx)
        elif key in _ENUM_ATOMS:
            yield from self._opt_enum(key, value, want, ctx)
        elif key in _THERAPY_READS:
            yield from self._opt_therapy(key, value, want, ctx)

    # therapies -----------------------------------------------------------------
    def _exposure(self, therapy: str, status: str) -> TherapyExposure:
        return TherapyExposure(
            therapy=therapy, classes=self.lexicon.classes_of(therapy), status=status, mention=f"generated {status}"
        )  # type: ignore[arg-type]

    def _opt_therapy(self, key: str, tokens: list[str], want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        if want:
            for tok in self.order(tokens):
                for member in self.order(self.members(tok)):
                    for status in self.order(_THERAPY_WRITES[key]):
                        yield ctx.model_copy(update={"therapies": [*ctx.therapies, self._exposure(member, status)]})
                    if key == "current":  # a non-cancer drug is often just on the medication list
                        yield ctx.model_copy(update={"medications": [*ctx.medications, member]})
            return

        def hit(tid: str) -> bool:
            return any(self.lexicon.matches(tid, t) for t in tokens)

        reads = _THERAPY_READS[key]
        therapies = [t for t in ctx.therapies if not (t.status in reads and hit(t.therapy))]
        update: dict[str, Any] = {"therapies": therapies}
        if key in ("current", "received"):
            # `current` also reads the medication list and drugs still taken while progressing.
            update["therapies"] = [
                t.model_copy(update={"still_taking": False}) if t.still_taking and hit(t.therapy) else t
                for t in therapies
            ]
            update["medications"] = [m for m in ctx.medications if not hit(m)]
        yield ctx.model_copy(update=update)

    def _opt_declined(self, tokens: list[str], want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        if want:
            for tok in self.order(tokens):
                for what in self.order([tok, *[m for m in self.members(tok) if m != tok]][:4]):
                    yield ctx.model_copy(update={"declined": [*ctx.declined, what]})
            return
        lex = self.lexicon
        kept = [d for d in ctx.declined if not any(d == t or lex.matches(d, t) or lex.matches(t, d) for t in tokens)]
        yield ctx.model_copy(update={"declined": kept})

    # diagnoses, sites, biomarkers ----------------------------------------------
    def _opt_diagnosis(self, ids: list[str], want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        if want:
            for x in self.order(ids):
                yield ctx.model_copy(update=_with_diagnosis(ctx, x))
                yield ctx.model_copy(update={"comorbidities": {**ctx.comorbidities, x: "present"}})
            return
        dx = [d for d in ctx.diagnoses if d not in ids]
        com = {k: v for k, v in ctx.comorbidities.items() if k not in ids}
        yield ctx.model_copy(update={"diagnoses": dx, "comorbidities": com})

    _opt_comorbidity = _opt_diagnosis

    def _opt_site(self, sites: list[str], want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        from assistant.knowledge import VISCERAL_SITES

        if want:
            for s in self.order(sites):
                yield ctx.model_copy(update={"sites": {**ctx.sites, s: "present"}})
            return
        new = dict(ctx.sites)
        for s in sites:
            new[s] = "absent"
            if s == "visceral":
                for v in VISCERAL_SITES:
                    new[v] = "absent"
        yield ctx.model_copy(update={"sites": new})

    def _opt_biomarker(self, spec: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        genes = list(spec.genes)
        results = list(spec.results) or ["pathogenic"]
        origins = list(spec.origins)
        gene_set = set(genes)
        others = [b for b in ctx.biomarkers if b.name not in gene_set]
        if want:
            for gene in self.order(genes):
                for result in self.order(results)[:2]:
                    for origin in self.order(origins or ["germline", "somatic"])[:2]:
                        marker = Biomarker(name=gene, result=result, origin=origin, mention="generated")  # type: ignore[arg-type]
                        yield ctx.model_copy(update={"biomarkers": [*others, marker]})
            return
        for gene in self.order(genes)[:2]:
            neg = Biomarker(name=gene, result="negative", mention="generated")
            yield ctx.model_copy(update={"biomarkers": [*others, neg]})
        if origins:  # the variant is there, but of an origin the label does not cover
            wrong = [o for o in ("germline", "somatic") if o not in origins]
            for o in wrong:
                marker = Biomarker(name=genes[0], result=results[0], origin=o, mention="generated")  # type: ignore[arg-type]
                yield ctx.model_copy(update={"biomarkers": [*others, marker]})

    def _opt_tested_negative(self, genes: list[str], want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        others = [b for b in ctx.biomarkers if b.name not in genes]
        for gene in self.order(genes)[:2]:
            marker = Biomarker(name=gene, result="negative" if want else "pathogenic", mention="generated")
            yield ctx.model_copy(update={"biomarkers": [*others, marker]})

    # numbers ------------------------------------------------------------------
    def _with_lab(self, ctx: PatientContext, name: str, value: float, **extra: Any) -> PatientContext:
        lab = LabValue(name=name, value=value, mention="generated", **extra)
        return ctx.model_copy(update={"labs": {**ctx.labs, name: lab}})

    def _opt_lab(self, spec: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        value = self.past(spec.op, spec.value, want, bounds=(0.0, math.inf))
        if value is not None:
            yield self._with_lab(ctx, spec.name, value)

    def _opt_resistance(self, spec: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        value = self.past(spec.op, spec.value, want, bounds=(0.0, 100.0))
        if value is not None:
            yield ctx.model_copy(update={"local_resistance": {**ctx.local_resistance, spec.to: value}})

    def _opt_age(self, spec: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        value = self.past(spec.op, spec.value, want, integer=True, bounds=(18, 100))
        if value is not None:
            yield ctx.model_copy(update={"age": int(value)})

    def _opt_ecog(self, spec: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        value = self.past(spec.op, spec.value, want, integer=True, bounds=(0, 4))
        if value is not None:
            yield ctx.model_copy(update={"ecog": int(value)})

    def _opt_weight(self, spec: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        value = self.past(spec.op, spec.value, want, bounds=(35.0, 200.0))
        if value is not None:
            yield ctx.model_copy(update={"weight_kg": value})

    def _opt_uln(self, spec: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        name, op, threshold = _field(spec, "name"), _field(spec, "op"), float(_field(spec, "value"))
        multiple = self.past(op, threshold, want, bounds=(0.05, math.inf))
        if multiple is None:
            return
        ref = self._uln.get(name)
        ways = ["both", "multiple"] + (["absolute"] if ref else [])
        for way in self.order(ways):
            if way == "multiple" or ref is None:
                yield self._with_lab(ctx, name, round(multiple * (ref or 1.0), 4), uln_multiple=multiple)
            elif way == "both":
                yield self._with_lab(ctx, name, round(multiple * ref, 4), uln_multiple=multiple)
            else:  # the engine converts an absolute value with the reference ULN
                yield self._with_lab(ctx, name, round(multiple * ref, 4))

    # people -------------------------------------------------------------------
    @staticmethod
    def _as_sex(ctx: PatientContext, sex: str) -> PatientContext:
        update: dict[str, Any] = {"sex": sex}
        if sex == "male":
            update.update(dict.fromkeys(_PREGNANCY_FIELDS))
        return ctx.model_copy(update=update)

    def _opt_sex(self, sex: str, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        yield self._as_sex(ctx, sex if want else ("female" if sex == "male" else "male"))

    def _pregnant(self, ctx: PatientContext, weeks: float | None, trimester: int | None = None) -> PatientContext:
        ctx = self._as_sex(ctx, "female")
        if weeks is not None:
            trimester = trimester_of(weeks)
        update: dict[str, Any] = {"pregnant": True, "gestational_weeks": weeks, "trimester": trimester, "postpartum": False}
        if ctx.age is not None and not 10 <= ctx.age < 55:
            update["age"] = 34  # the engine reads women outside child-bearing age as not pregnant
        return ctx.model_copy(update=update)

    def _not_pregnant(self, ctx: PatientContext) -> Iterator[PatientContext]:
        yield ctx.model_copy(update={"pregnant": False, "gestational_weeks": None, "trimester": None})
        if ctx.sex is None:
            yield self._as_sex(ctx, "male")

    def _opt_pregnant(self, value: bool, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        if value == want:  # must be pregnant
            for t in self.order([None, 1, 2, 3]):
                weeks = None if t is None else self.rng.uniform(*_TRIMESTER_WEEKS[t]) if self.rng else _TRIMESTER_WEEKS[t][0]
                yield self._pregnant(ctx, None if weeks is None else round(weeks, 1), t)
        else:
            yield from self._not_pregnant(ctx)

    def _opt_trimester(self, value: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        wanted = {int(t) for t in _as_list(value)}
        choices = sorted(wanted) if want else sorted({1, 2, 3} - wanted)
        for t in self.order(choices):
            lo, hi = _TRIMESTER_WEEKS[t]
            yield self._pregnant(ctx, round(self.rng.uniform(lo, hi), 1) if self.rng else lo)
            yield self._pregnant(ctx, None, t)  # trimester stated without weeks
        if not want:
            yield from self._not_pregnant(ctx)

    def _opt_gestational_weeks(self, spec: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        weeks = self.past(_field(spec, "op"), float(_field(spec, "value")), want, bounds=(4.0, 42.0))
        if weeks is not None:
            yield self._pregnant(ctx, weeks)
        if not want:
            yield from self._not_pregnant(ctx)

    def _opt_flag(self, name: str, value: bool, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        target = value if want else not value
        base = self._as_sex(ctx, "female") if target else ctx
        yield base.model_copy(update={name: target})
        if not target and ctx.sex is None:
            yield self._as_sex(ctx, "male")  # "men: false"

    def _opt_lactating(self, value: bool, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        yield from self._opt_flag("lactating", value, want, ctx)

    def _opt_postpartum(self, value: bool, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        if (value if want else not value):
            ctx = ctx.model_copy(update={"pregnant": False, "gestational_weeks": None, "trimester": None})
        yield from self._opt_flag("postpartum", value, want, ctx)

    def _opt_symptomatic(self, value: bool, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        yield ctx.model_copy(update={"symptomatic": value if want else not value})

    def _opt_castration(self, value: bool, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        # The atom is decided only once castration is known; it can never be made "not castrated but known".
        if value == want:
            for how in self.order(["ADT", "orchiectomy"]):
                yield ctx.model_copy(update={"castration": how})

    def _opt_state(self, states: list[str], want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        from assistant.knowledge import DISEASE_STATES

        choices = states if want else [s for s in DISEASE_STATES if s not in states]
        update = _with_diagnosis(ctx, "prostate_cancer")  # the states are prostate cancer's
        for s in self.order(choices):
            yield ctx.model_copy(update={**update, "disease_state": s})

    def _opt_enum(self, key: str, value: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        field, companions = _ENUM_ATOMS[key]
        allowed = _literal_values(field)
        wanted = [v for v in _as_list(value)]
        choices = wanted if want else [v for v in allowed if v not in wanted]
        dx = list(ctx.diagnoses) + [c for c in companions[:1] if c not in ctx.diagnoses]
        for v in self.order(choices):
            yield ctx.model_copy(update={field: v, "diagnoses": dx})
        if not want and companions:
            # No such disease at all (no diabetes, no liver disease, no UTI) also makes the atom false.
            yield ctx.model_copy(
                update={
                    field: None,
                    "diagnoses": [d for d in ctx.diagnoses if d not in companions],
                    "comorbidities": {k: v for k, v in ctx.comorbidities.items() if k not in companions},
                }
            )

    # allergies ----------------------------------------------------------------
    def allergic(self, ctx: PatientContext, substance: str, severity: str = "severe", reaction: str | None = None) -> PatientContext:
        """`ctx` plus a documented allergy to `substance` (a therapy id or an allergen class)."""
        classes = self.lexicon.classes_of(substance) or ([substance] if substance in self.lexicon.class_members else [])
        detail = Allergy(
            substance=substance,
            classes=classes,
            reaction=_REACTIONS[severity][0] if reaction is None else reaction,
            severity=severity,  # type: ignore[arg-type]
            mention="generated",
        )
        return ctx.model_copy(
            update={"allergies": [*ctx.allergies, substance], "allergy_details": [*ctx.allergy_details, detail]}
        )

    def _opt_allergy(self, value: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        if isinstance(value, (list, tuple)):
            tokens, severities, reactions = list(value), [], []
        else:
            tokens = _as_list(_field(value, "to"))
            severities = _as_list(_field(value, "severity"))
            reactions = _as_list(_field(value, "reaction"))
        if want:
            for tok in self.order(tokens):
                for substance in self.order([tok, *[m for m in self.members(tok) if m != tok]][:3]):
                    for sev in self.order(severities or ["severe", "non-severe"])[:2]:
                        for reaction in self.order(reactions or list(_REACTIONS[sev]))[:1]:
                            yield self.allergic(ctx, substance, sev, reaction)
            return
        lex = self.lexicon

        def hit(a: str, classes: Iterable[str] = ()) -> bool:
            return any(a.lower() == t.lower() or lex.matches(a, t) or t in classes for t in tokens)

        keep = [i for i, a in enumerate(ctx.allergies) if not hit(a)]
        details = [d for d in ctx.allergy_details if not hit(d.substance, d.classes)]
        yield ctx.model_copy(update={"allergies": [ctx.allergies[i] for i in keep], "allergy_details": details})

    # calculators --------------------------------------------------------------
    def _opt_calc(self, spec: Any, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        name, op, threshold = spec.name, spec.op, spec.value
        if name in ("crcl", "egfr_ckd_epi_2021"):
            yield from self._kidney(name, op, threshold, want, ctx)
        elif name in ("cha2ds2_vasc", "has_bled"):
            yield from self._score(name, op, threshold, want, ctx)
        elif name == "apixaban_dose_criteria":
            yield from self._apixaban(op, threshold, want, ctx)

    def _kidney(self, name: str, op: str, threshold: float, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        lab = "crcl" if name == "crcl" else "egfr"
        stated = self.past(op, threshold, want, bounds=(1.0, 200.0))
        ways = ["stated", "creatinine"] if lab not in ctx.labs else ["stated"]
        for way in self.order(ways):
            if way == "stated" and stated is not None:
                # The engine reads a stated clearance before calculating one (PatientView.lab).
                yield self._with_lab(ctx, lab, stated)
            elif way == "creatinine":
                solved = self._solve_creatinine(name, op, threshold, want, ctx)
                if solved is not None:
                    yield solved

    def _solve_creatinine(self, name: str, op: str, threshold: float, want: bool, ctx: PatientContext) -> PatientContext | None:
        """Choose a serum creatinine (keeping age, sex and weight when given) that puts the formula just past the threshold."""
        update: dict[str, Any] = {}
        if ctx.age is None:
            update["age"] = self.rng.choice((45, 62, 74, 83)) if self.rng else 62
        if ctx.sex is None:
            update["sex"] = self.rng.choice(("male", "female")) if self.rng else "male"
        if name == "crcl" and ctx.weight_kg is None:
            update["weight_kg"] = float(self.rng.choice((58, 72, 90))) if self.rng else 72.0
        base = ctx.model_copy(update=update) if update else ctx
        calc = calculators.CALCULATORS[name]

        def ok(scr: float) -> bool:
            value = calc(self._with_lab(base, "creatinine", round(scr, 3)))[0]
            return value is not None and _OPS[op](value, threshold) == want

        lo, hi = 0.3, 15.0  # clearance falls as creatinine rises: bisect between a failing and a passing end
        if ok(lo) == ok(hi):
            return self._with_lab(base, "creatinine", lo) if ok(lo) else None
        good, bad = (lo, hi) if ok(lo) else (hi, lo)
        for _ in range(40):
            mid = (good + bad) / 2
            good, bad = (mid, bad) if ok(mid) else (good, mid)
        return self._with_lab(base, "creatinine", round(good, 3)) if ok(round(good, 3)) else None

    def _score(self, name: str, op: str, threshold: float, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        calc = calculators.CALCULATORS[name]
        if name == "cha2ds2_vasc":
            adds = ["hypertension", "diabetes", "heart_failure", "vascular_disease", "stroke_tia"]
            ages = [45, 55, 67, 72, 78, 84]
        else:
            adds = ["hypertension", "bleeding_history", "stroke_tia", "alcohol_use", "liver_disease"]
            ages = [45, 55, 70, 78]
        if ctx.age is not None:
            ages = [ctx.age]  # a stated age belongs to the patient; only the diagnoses are chosen
        sexes = [ctx.sex] if ctx.sex is not None else self.order(["male", "female"])
        adds = [a for a in self.order(adds) if a not in ctx.diagnoses]
        for age, sex in itertools.product(self.order(ages), sexes):
            for n in range(len(adds) + 1):
                cand = ctx.model_copy(update={"age": age, "sex": sex, "diagnoses": [*ctx.diagnoses, *adds[:n]]})
                value = calc(cand)[0]
                if value is not None and _OPS[op](value, threshold) == want:
                    yield cand
                    break
        # Last resort: the clinician states the score (the calculators read a stated score first).
        score = self.past(op, threshold, want, integer=True, bounds=(0, 9))
        if score is not None:
            yield self._with_lab(ctx, name, score)

    def _apixaban(self, op: str, threshold: float, want: bool, ctx: PatientContext) -> Iterator[PatientContext]:
        counts = [n for n in range(4) if _OPS[op](n, threshold) == want]
        for n in self.order(counts):
            for met in self.order(list(itertools.combinations(range(3), n))):
                age = 83 if 0 in met else 70
                weight = 55.0 if 1 in met else 82.0
                creat = 1.7 if 2 in met else 1.0
                cand = ctx.model_copy(update={"age": age, "weight_kg": weight})
                yield self._with_lab(cand, "creatinine", creat)


def patient_context(
    dx: str | list[str], *, labs: dict[str, float] | None = None, current=(), comorb=(), **kw: Any
) -> PatientContext:
    """A hand-built patient for neighbour-state tests: diagnoses, ongoing drugs, lab values, comorbidities."""
    return PatientContext(
        diagnoses=[dx] if isinstance(dx, str) else list(dx),
        therapies=[TherapyExposure(therapy=t, status="ongoing") for t in current],
        labs={n: LabValue(name=n, value=v) for n, v in (labs or {}).items()},
        comorbidities={c: "present" for c in comorb},
        **kw,
    )
