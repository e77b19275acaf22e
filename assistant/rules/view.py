"""The patient as the rule engine reads it: a `PatientContext` indexed once per evaluation.

Built by `RuleEngine.view` (and by the safety pass for planned co-medications) before any condition is
evaluated; `conditions.py` asks it for therapies by status, sites, labs (computing CrCl/eGFR through
`calculators.py` when only creatinine is given), pregnancy, allergies, refusals and × ULN values, and
asks it whether a rule fact is still missing. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from assistant.knowledge import VISCERAL_SITES, Lexicon
from assistant.knowledge.schema import shipped_non_gene_markers
from assistant.models import PatientContext
from assistant.rules import calculators
from assistant.rules.tri import Tri

# Condition atoms (and ask facts) that read one stated patient field: atom name → PatientContext field.
_STATED_FIELDS = {
    "volume": "disease_volume",
    "presentation": "presentation",
    "imaging": "metastasis_imaging",
    "phase": "care_phase",
}


@dataclass
class PatientView:
    """The context indexed for fast atom lookups (built once per `evaluate`)."""

    ctx: PatientContext
    lexicon: Lexicon
    by_status: dict[str, list[str]] = field(default_factory=dict)  # status → therapy ids
    medications: list[str] = field(default_factory=list)
    still_taking: list[str] = field(default_factory=list)  # progressing on it but not stopped
    conditions: dict[str, str] = field(
        default_factory=dict
    )  # diagnosis/comorbidity id → present/possible/absent
    calc_cache: dict[str, tuple[float | None, list[str]]] = field(default_factory=dict)
    reference_uln: dict[str, float] = field(default_factory=dict)
    # Markers that are not genes (MSI-H, PSMA-PET …: clinical.yaml biomarkers.non_gene, via Knowledge).
    non_gene_markers: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls,
        ctx: PatientContext,
        lexicon: Lexicon,
        reference_uln: dict[str, float] | None = None,
        non_gene_markers: Iterable[str] | None = None,
    ) -> PatientView:
        """Index ``ctx``; without ``non_gene_markers`` the shipped corpus's list (a view built outside an engine)."""
        markers = shipped_non_gene_markers() if non_gene_markers is None else non_gene_markers
        view = cls(
            ctx=ctx, lexicon=lexicon, reference_uln=dict(reference_uln or {}), non_gene_markers=frozenset(markers)
        )
        for t in ctx.therapies:
            view.by_status.setdefault(t.status, []).append(t.therapy)
            if t.still_taking:
                view.still_taking.append(t.therapy)
        view.medications = list(ctx.medications)
        for d in ctx.diagnoses:
            view.conditions[d] = "present"
        for k, v in ctx.comorbidities.items():
            # A diagnosis stated outright wins over a weaker comorbidity mention of the same thing.
            if view.conditions.get(k) != "present":
                view.conditions[k] = v
        return view

    def any_match(self, statuses: Iterable[str], tokens: list[str], extra: Iterable[str] = ()) -> bool:
        ids = [tid for s in statuses for tid in self.by_status.get(s, [])]
        ids.extend(extra)
        return any(self.lexicon.matches(tid, tok) for tid in ids for tok in tokens)

    def calc(self, name: str) -> tuple[float | None, list[str]]:
        if name not in self.calc_cache:
            self.calc_cache[name] = calculators.CALCULATORS[name](self.ctx)
        return self.calc_cache[name]

    def site(self, name: str) -> Tri:
        sites = self.ctx.sites
        names = [name] + (list(VISCERAL_SITES) if name == "visceral" else [])
        states = [sites.get(n) for n in names]
        if "present" in states:
            return True
        if name == "visceral":
            # "No visceral disease" or "bone-only" settles every visceral site at once.
            if sites.get("visceral") == "absent":
                return False
        elif sites.get(name) == "absent":
            return False
        return None

    def lab(self, name: str) -> float | None:
        lab = self.ctx.labs.get(name)
        if lab is not None and lab.value is not None:
            return lab.value
        # On dialysis the kidney's own clearance is below every dosing threshold (ESKD, < 15 mL/min);
        # rule thresholds are written for clearance, so read it as such rather than asking.
        if name in ("crcl", "egfr") and self.conditions.get("dialysis") == "present":
            return 10.0
        # Kidney function may be given as creatinine only: compute it rather than ask.
        if name == "crcl":
            return self.calc("crcl")[0]
        if name == "egfr":
            return self.calc("egfr_ckd_epi_2021")[0]
        return None

    def pregnant(self) -> Tri:
        """Pregnancy status; men, and women outside child-bearing age (< 10 or >= 55) are read as not pregnant."""
        ctx = self.ctx
        if ctx.sex == "male":
            return False
        if ctx.pregnant is not None:
            return ctx.pregnant
        if ctx.age is not None and (ctx.age >= 55 or ctx.age < 10):
            return False
        return None

    def allergic(self, tokens: Iterable[str], severities: Iterable[str] = (), reactions: Iterable[str] = ()) -> bool:
        """An allergy to one of `tokens` (ids or classes) with the given severities (default: any but intolerance)."""
        tokens = list(tokens)
        sev = set(severities) or {"severe", "non-severe", "unknown"}
        words = [r.lower() for r in reactions]
        details = {d.substance.lower(): d for d in self.ctx.allergy_details}
        for raw in self.ctx.allergies:
            a = raw.lower()
            d = details.get(a)
            severity = d.severity if d is not None else "unknown"
            if severity not in sev:
                continue
            if words and not (d is not None and any(w in d.reaction.lower() for w in words)):
                continue
            classes = {c.lower() for c in (d.classes if d is not None else [])}
            for tok in tokens:
                t = tok.lower()
                if a == t or t in classes or self.lexicon.matches(a, tok) or self.lexicon.matches(a, t):
                    return True
        return False

    def declines(self, tokens: Iterable[str]) -> bool:
        """The patient declines one of `tokens`, or a class a token belongs to ('declines chemotherapy')."""
        for d in self.ctx.declined:
            for tok in tokens:
                if d == tok or self.lexicon.matches(tok, d) or self.lexicon.matches(d, tok):
                    return True
        return False

    def uln_multiple(self, name: str) -> float | None:
        """A liver test as a multiple of ULN: stated that way, or the value over the reference ULN."""
        lab = self.ctx.labs.get(name)
        if lab is None:
            return None
        if lab.uln_multiple is not None:
            return lab.uln_multiple
        if lab.value is None:
            return None
        ref = self.reference_uln.get(name)
        if not ref:
            return None
        value = lab.value
        if name == "bilirubin" and "mol" in lab.unit.lower():
            value = value / 17.1  # µmol/L → mg/dL
        return value / ref

    def fact_unknown(self, fact: str) -> bool:
        """Is this rule fact missing from the context (used by question rules and `ask_if_unknown`)?"""
        ctx = self.ctx
        head, _, tail = fact.partition(":")
        if head == "biomarker":
            return not any(
                b.result != "unknown" for b in ctx.biomarkers if b.name not in ("PSMA-PET", "FDG-PET")
            )
        if head == "site":
            return self.site(tail) is None
        if head == "lab":
            return self.lab(tail) is None
        if head == "origin":
            hits = [
                b
                for b in ctx.biomarkers
                if b.name == tail and b.result in ("pathogenic", "likely_pathogenic")
            ]
            return bool(hits) and all(b.origin == "unknown" for b in hits)
        if head == "tested":
            return not any(b.name == tail and b.result != "unknown" for b in ctx.biomarkers)
        if head == "comorbidity":
            return self.conditions.get(tail) == "possible"
        if head == "state":
            return ctx.disease_state is None
        if head == "castration":
            return ctx.castration is None
        if head == "weight":
            return ctx.weight_kg is None
        if head == "pregnant":
            return self.pregnant() is None
        if head in ("gestational_weeks", "trimester"):
            return self.pregnant() is True and ctx.gestational_weeks is None and ctx.trimester is None
        if head in ("lactating", "postpartum"):
            return ctx.sex != "male" and getattr(ctx, head) is None
        if head == "kidney":
            return self.lab("crcl") is None and self.lab("egfr") is None
        if head == "allergy":
            return not ctx.allergies
        if head in ("volume", "presentation", "imaging", "phase"):
            return getattr(ctx, _STATED_FIELDS[head]) is None
        value = getattr(ctx, head, None)
        return value is None
