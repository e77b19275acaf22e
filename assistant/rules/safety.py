"""The safety pass: every drug any answer would offer is checked against its label profile for *this* patient.

One mechanism, data-driven (corpus/safety/*.yaml), run over whatever produced the offer:

* every `recommend`/`consider` finding (each component of a `+` regimen): a label contraindication turns the
  offer into an `exclude` citing the label; a caution adds a `warn`; a contraindication that cannot be decided
  because a fact is missing (and whose check says what to ask) adds an `ask`; a declined option becomes an
  `exclude` marked as declined (shown as the patient's choice, never as preferred);
* any other drug the answer could name — in the retrieved passages, the question, or an LLM draft —
  (`screen`): a contraindicated drug gets an `exclude` finding so the plan forbids it and no passage naming
  it is listed as an option.

The implicit check every profile carries: a documented allergy to the drug, or to a class it belongs to or
that its profile lists as an allergen class, is a contraindication (an intolerance-level report a caution).
Pure and fast: no I/O; the conditions are evaluated by the rule engine's own three-valued evaluator
(`conditions.py`). Runs inside `RuleEngine.evaluate` (`engine.py`) after the rules' findings are finalised, and
in `RuleEngine.screen`/`drugs_in` for drugs named outside the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.models import Finding
from assistant.rules.conditions import _Evaluator, generic_question
from assistant.rules.view import PatientView
from ingest.text import NameMatcher

if TYPE_CHECKING:
    from assistant.knowledge import Knowledge, Lexicon, SafetyCheck, SafetyProfile

SAFETY_PREFIX = "SAFETY:"
DECLINED_PREFIX = "DECLINED:"


@dataclass(frozen=True)
class Verdict:
    """What one check says about one drug for this patient."""

    drug: str
    level: str  # contraindicated | caution | ask
    profile: SafetyProfile | None
    check: SafetyCheck | None
    reason: str
    refs: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()

    @property
    def rule_id(self) -> str:
        if self.profile is None or self.check is None:
            pid = self.profile.id if self.profile is not None else self.drug
            return f"{SAFETY_PREFIX}{pid}.allergy"
        return f"{SAFETY_PREFIX}{self.profile.ref(self.check)}"


@dataclass
class DrugMatcher:
    """Finds therapy names (generic, brand, synonym) in text: the lexicon's names of three or more letters.

    Regimen ids are left out (found through their components) and so are one- and two-letter names, which
    in a passage or a draft are more often something else."""

    lexicon: Lexicon
    _names: NameMatcher | None = field(default=None, init=False, repr=False)

    def _matcher(self) -> NameMatcher:
        if self._names is None:
            names: dict[str, str] = {}
            for tid, entry in self.lexicon.entries.items():
                if "+" in tid:
                    continue  # regimens are found through their components
                for n in [tid.replace("_", " "), *entry.names]:
                    if len(n) >= 3 and n.lower() not in names:
                        names[n.lower()] = tid
            self._names = NameMatcher(names)
        return self._names

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """(therapy id, start, end) of every therapy name in `text`, left to right."""
        if not text or not self.lexicon.entries:
            return []
        return self._matcher().find(text)

    def ids_in(self, text: str) -> list[str]:
        return list(dict.fromkeys(tid for tid, _, _ in self.find(text)))


def _most_specific(drug: str, verdicts: list[Verdict]) -> list[Verdict]:
    """One verdict per check: where the drug's own profile and a class profile both hold the same check
    (pembrolizumab's label and the checkpoint-inhibitor class both warn of graft rejection), the drug's own label
    speaks; a stricter level is never dropped for a milder one."""
    own = {
        (v.check.id, v.level)
        for v in verdicts
        if v.check is not None and v.profile is not None and drug in v.profile.applies_to
    }
    return [
        v
        for v in verdicts
        if v.check is None or v.profile is None or drug in v.profile.applies_to or (v.check.id, v.level) not in own
    ]


class SafetyPass:
    """Checks drugs against their label safety profiles for one patient at a time (holds no patient state)."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.lexicon = knowledge.lexicon
        self.matcher = DrugMatcher(knowledge.lexicon)
        self._rules = {r.id: r for r in knowledge.rules}

    # ------------------------------------------------------------ per drug
    def components(self, therapy: str) -> list[str]:
        return [p for p in therapy.split("+") if p]

    def _name(self, drug: str) -> str:
        entry = self.lexicon.entries.get(drug)
        return entry.names[0] if entry is not None and entry.names else drug.replace("_", " ")

    def assess(self, drug: str, view: PatientView) -> list[Verdict]:
        """Every verdict the drug's profiles give for this patient (contraindications first)."""
        profiles = self.knowledge.profiles_for(drug)
        out: list[Verdict] = []
        view = self._with_planned_comedication(drug, view)
        allergy = self._allergy(drug, profiles, view)
        if allergy is not None:
            out.append(allergy)
        for prof in profiles:
            for level, checks in (("contraindicated", prof.contraindicated), ("caution", prof.caution)):
                for chk in checks:
                    ev = _Evaluator(view)
                    res = ev.cond(chk.when)
                    refs = (prof.ref(chk), *prof.cite)
                    if res is True:
                        out.append(Verdict(drug, level, prof, chk, chk.reason.strip(), refs))
                    elif res is None and chk.ask:
                        # Only a check that says what to ask raises a question: an unstated rare condition
                        # is read as absent rather than asked about for every drug. When pregnancy is already
                        # known and only its stage is missing, ask for the stage, not "could she be pregnant?".
                        question = chk.ask.strip()
                        if ev.unknown and "pregnant" not in ev.unknown and "pregnan" in question.lower():
                            question = generic_question(ev.unknown[0])
                        out.append(Verdict(drug, "ask", prof, chk, question, refs, tuple(ev.unknown)))
        order = {"contraindicated": 0, "caution": 1, "ask": 2}
        return sorted(_most_specific(drug, out), key=lambda v: order[v.level])

    def _with_planned_comedication(self, drug: str, view: PatientView) -> PatientView:
        """A co-medication about to start ("starting rifampin next week") interacts like one already taken: the
        label checks read `current`, so planned drugs of other classes are added to the medication list here."""
        mine = set(self.lexicon.classes_of(drug)) | {drug}
        planned = [
            t.therapy
            for t in view.ctx.therapies
            if t.status == "planned"
            and t.therapy != drug
            and not (set(self.lexicon.classes_of(t.therapy)) & mine)
            and t.therapy not in view.ctx.medications
        ]
        if not planned:
            return view
        ctx = view.ctx.model_copy(update={"medications": [*view.ctx.medications, *planned]})
        return PatientView.build(ctx, view.lexicon, view.reference_uln, view.non_gene_markers)

    def _allergy(self, drug: str, profiles: Sequence[SafetyProfile], view: PatientView) -> Verdict | None:
        ctx = view.ctx
        if not ctx.allergies:
            return None
        allergen = {drug, *self.lexicon.classes_of(drug)}
        extra = {c for p in profiles for c in p.allergen_classes}
        details = {d.substance.lower(): d for d in ctx.allergy_details}
        prof = profiles[0] if profiles else None
        refs = tuple(prof.cite) if prof is not None else ()
        for raw in ctx.allergies:
            a = raw.lower()
            d = details.get(a)
            classes = {c for c in (d.classes if d is not None else [])} | set(self.lexicon.classes_of(raw))
            hit = (
                raw in allergen
                or a in {x.lower() for x in allergen}
                or bool(classes & extra)
                or raw in extra
            )
            if not hit:
                continue
            what = f"allergy to {raw.replace('_', ' ')}" + (f" ({d.reaction})" if d is not None and d.reaction else "")
            if d is not None and d.severity == "intolerance":
                return Verdict(
                    drug, "caution", prof, None,
                    f"Reported intolerance ({what}) — a side effect rather than an allergy; not a contraindication, "
                    "but confirm before prescribing.",
                    refs,
                )  # fmt: skip
            return Verdict(
                drug, "contraindicated", prof, None,
                f"Documented {what}: a hypersensitivity or serious reaction to the drug or its class — it is not "
                "given again (hypersensitivity is a label contraindication).",
                refs,
            )  # fmt: skip
        return None

    # ------------------------------------------------------------ over findings
    def apply(self, findings: Sequence[Finding], view: PatientView) -> list[Finding]:
        """Offers that a label forbids become exclusions; cautions and open questions are added once per drug."""
        out: list[Finding] = []
        extra: list[Finding] = []
        done_drugs: set[str] = set()
        cautioned: dict[int, list[Verdict]] = {}
        assessed: dict[str, list[Verdict]] = {}  # a drug offered by several rules is assessed once

        def verdicts_of(drug: str) -> list[Verdict]:
            if drug not in assessed:
                assessed[drug] = self.assess(drug, view)
            return assessed[drug]

        for f in findings:
            if f.kind not in ("recommend", "consider") or not f.therapy:
                out.append(f)
                continue
            if view.declines([f.therapy, *self.components(f.therapy)]):
                out.append(
                    f.model_copy(
                        update={
                            "rule_id": f"{DECLINED_PREFIX}{f.rule_id}",
                            "kind": "exclude",
                            "reason": f"The patient declines this option. (Otherwise: {f.reason.strip()})",
                            "severity": "declined",
                            "preference": None,
                        }
                    )
                )
                continue
            comps = self.components(f.therapy)
            rule = self._rules.get(f.rule_id)
            partners = [d for d in getattr(rule, "drugs", []) if d not in comps]
            blocked: list[Verdict] = []
            for drug in comps:
                verdicts = verdicts_of(drug)
                blocked.extend(v for v in verdicts if v.level == "contraindicated")
                give_way = [v for v in verdicts if v.level == "caution" and v.check is not None and v.check.prefer_alternative]
                if give_way:
                    cautioned.setdefault(id(f), []).extend(give_way)
                if drug not in done_drugs:
                    extra.extend(self._notes(f, [v for v in verdicts if v.level != "contraindicated"]))
            for drug in partners:
                # A co-administered or alternative drug the rule names: its contraindication is a warning on
                # the option (the regimen may be given with a substitute), not a silent pass.
                if drug in done_drugs:
                    continue
                extra.extend(self._notes(f, verdicts_of(drug), partner=True))
                done_drugs.add(drug)
            done_drugs.update(comps)
            if blocked:
                names = " + ".join(self._name(c) for c in comps)
                out.append(_label_exclusion(f.therapy, names, blocked, domain=f.domain, refs=f.refs))
            else:
                out.append(f)
        return self._prefer_unburdened_sibling(out, cautioned) + _dedupe(extra)

    def _primary_class(self, therapy: str) -> str | None:
        classes = self.lexicon.classes_of(therapy.split("+")[0])
        return classes[0] if classes else None

    def _prefer_unburdened_sibling(self, out: list[Finding], cautioned: dict[int, list[Verdict]]) -> list[Finding]:
        """A drug whose label warning for this patient says to prefer an alternative (`prefer_alternative`) gives
        way to a sibling of its own class,
        offered for the same question, that carries no such warning (enzalutamide after a seizure when
        darolutamide is on offer): a careful prescriber takes the alternative; the warning stays visible."""
        if not cautioned:
            return out
        offers = [f for f in out if f.kind in ("recommend", "consider") and f.therapy]
        result: list[Finding] = []
        for f in out:
            burdens = cautioned.get(id(f))
            cls = self._primary_class(f.therapy or "") if burdens else None
            alt = next(
                (
                    g
                    for g in offers
                    if g is not f
                    and id(g) not in cautioned
                    and g.domain == f.domain
                    and g.therapy != f.therapy
                    and cls is not None
                    and self._primary_class(g.therapy or "") == cls
                ),
                None,
            )
            if not burdens or alt is None:
                result.append(f)
                continue
            v = burdens[0]
            result.append(
                Finding(
                    rule_id=v.rule_id,
                    domain=f.domain,
                    kind="exclude",
                    therapy=f.therapy,
                    title=f"{self._name(f.therapy or '')}: a same-class alternative avoids a label warning",
                    reason=(
                        f"{v.reason.rstrip('.')}. {self._name(alt.therapy or '')}, of the same class and offered for "
                        "this situation, carries no such warning for this patient."
                    ),
                    strength="FDA label",
                    refs=list(dict.fromkeys([*v.refs, *f.refs])),
                    unverified=v.profile is not None and v.profile.unverified,
                    severity="label",
                )
            )
        return result

    def _notes(self, f: Finding, verdicts: Iterable[Verdict], *, partner: bool = False) -> list[Finding]:
        out: list[Finding] = []
        for v in verdicts:
            name = self._name(v.drug)
            if v.level == "ask":
                out.append(
                    Finding(
                        rule_id=v.rule_id, domain=f.domain, kind="ask", therapy=f.therapy,
                        title=(v.facts[0] if v.facts else v.rule_id),
                        reason=f"{v.reason} (decides whether {name} can be used)",
                        refs=list(v.refs),
                        unverified=v.profile is not None and v.profile.unverified,
                    )
                )  # fmt: skip
            else:
                sev = "high" if v.level == "contraindicated" else (v.check.severity if v.check else "moderate")
                prefix = f"{name} (part of {f.title or f.therapy})" if partner else name
                verb = "is contraindicated for this patient" if v.level == "contraindicated" else "needs caution"
                out.append(
                    Finding(
                        rule_id=v.rule_id, domain=f.domain, kind="warn", therapy=v.drug,
                        title=f"{name}: label {('contraindication' if v.level == 'contraindicated' else 'caution')}",
                        reason=f"{prefix} {verb}: {v.reason}",
                        severity=sev, refs=list(v.refs),
                        unverified=v.profile is not None and v.profile.unverified,
                    )
                )  # fmt: skip
        return out

    # ------------------------------------------------------------ drugs named outside the rules
    def screen(self, drugs: Iterable[str], view: PatientView, *, known: Iterable[str] = ()) -> list[Finding]:
        """Exclusions for drugs an answer could name (passages, question, LLM draft) that the label forbids here.

        `known` holds therapies the findings already decide (offered or excluded): they are not repeated."""
        seen = set(known)
        out: list[Finding] = []
        for drug in dict.fromkeys(drugs):
            if drug in seen or (not self.knowledge.profiles_for(drug) and not view.ctx.allergies and not view.ctx.declined):
                continue
            seen.add(drug)
            blocked = [v for v in self.assess(drug, view) if v.level == "contraindicated"]
            if view.declines([drug]):
                out.append(
                    Finding(
                        rule_id=f"{DECLINED_PREFIX}{drug}", kind="exclude", therapy=drug,
                        title=f"{self._name(drug)}: declined", reason="The patient declines this option.",
                        severity="declined",
                    )
                )  # fmt: skip
                continue
            if not blocked:
                continue
            out.append(_label_exclusion(drug, self._name(drug), blocked))
        return out


def _label_exclusion(
    therapy: str, shown: str, blocked: Sequence[Verdict], *, domain: str | None = None, refs: Sequence[str] = ()
) -> Finding:
    """The exclusion a label contraindication makes of an offer (or of a drug named elsewhere)."""
    return Finding(
        rule_id=blocked[0].rule_id,
        domain=domain,
        kind="exclude",
        therapy=therapy,
        title=f"{shown}: label contraindication for this patient",
        reason=" ".join(dict.fromkeys(x.reason for x in blocked)),
        strength="FDA label",
        refs=list(dict.fromkeys([*(r for x in blocked for r in x.refs), *refs])),
        unverified=any(x.profile is not None and x.profile.unverified for x in blocked),
        severity="label",
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str | None]] = set()
    out = []
    for f in findings:
        key = (f.kind, f.reason, f.therapy)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
