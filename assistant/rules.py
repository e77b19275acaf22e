"""The rule engine: corpus rule records + a PatientContext → typed findings.

Pure and fast (no I/O; a few hundred microseconds for the whole rule set). Conditions use
three-valued logic: every atom is true, false or unknown (None) per the table in corpus/README.md,
and `all`/`any`/`not` keep "unknown" unless the answer is already decided. Outcomes:

* therapy rule: scope (`applies_when`) false/unknown → nothing; an exclusion true → `exclude`;
  progression on the very same therapy → `exclude` (not repeated) unless the rule allows it;
  `eligible_when` false → `exclude` with `ineligible_reason`; true → `recommend`/`consider`;
  unknown → `ask` for the facts that would decide it.
* warning rule: `when` true → `warn`.
* question rule: `when` true and the `missing` fact unknown → `ask`.

Disagreements (one rule offers a therapy another hard-excludes) are never resolved silently: a
`warn` names both rules and the exclusion wins for the answer plan.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from assistant import calculators
from assistant.knowledge import (
    VISCERAL_SITES,
    AskItem,
    Condition,
    Knowledge,
    Lexicon,
    QuestionRule,
    Rule,
    TherapyRule,
    WarningRule,
)
from assistant.models import Finding, PatientContext
from assistant.oncology.match import OncologyMatch, match_approvals

Tri = bool | None

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

# Condition atoms (and ask facts) that read one stated patient field: atom name → PatientContext field.
_STATED_FIELDS = {
    "volume": "disease_volume",
    "presentation": "presentation",
    "imaging": "metastasis_imaging",
    "phase": "care_phase",
}

_LAB_LABELS = {
    "psa": "PSA",
    "psadt_months": "PSA doubling time",
    "egfr": "eGFR",
    "crcl": "creatinine clearance",
    "creatinine": "serum creatinine",
    "testosterone": "serum testosterone (castrate level?)",
    "hemoglobin": "haemoglobin",
    "platelets": "platelet count",
    "anc": "neutrophil count",
    "potassium": "potassium",
    "inr": "INR",
    "ldl": "LDL cholesterol",
    "hba1c": "HbA1c",
    "sbp": "blood pressure",
}


def and3(values: Iterable[Tri]) -> Tri:
    unknown = False
    for v in values:
        if v is False:
            return False
        if v is None:
            unknown = True
    return None if unknown else True


def or3(values: Iterable[Tri]) -> Tri:
    unknown = False
    for v in values:
        if v is True:
            return True
        if v is None:
            unknown = True
    return None if unknown else False


def not3(value: Tri) -> Tri:
    return None if value is None else not value


def generic_question(fact: str) -> str:
    """Plain question for a missing fact when no rule supplies its own wording."""
    head, _, tail = fact.partition(":")
    if head == "site":
        where = {"visceral": "visceral (liver, lung, adrenal)", "lymph_node": "nodal"}.get(
            tail, tail.replace("_", " ")
        )
        return f"Are there {where} metastases?"
    if head == "lab":
        return f"What is the latest {_LAB_LABELS.get(tail, tail)}?"
    if head == "origin":
        return f"Is the {tail} variant germline or somatic?"
    if head == "tested":
        if tail == "PSMA-PET":
            return "Has a PSMA PET been done, and is the disease PSMA-positive?"
        if tail == "FDG-PET":
            return "Has an FDG PET been done (PSMA-negative, FDG-positive disease)?"
        return f"Has {tail} been tested (germline or tumour)?"
    if head == "comorbidity":
        return f"Does the patient have {tail.replace('_', ' ')}?"
    return {
        "biomarker": "Has germline and tumour genetic testing been done (which genes; germline or somatic)?",
        "ecog": "What is the performance status (ECOG)?",
        "age": "How old is the patient?",
        "weight": "What does the patient weigh?",
        "sex": "What is the patient's sex?",
        "pregnant": "Could the patient be pregnant?",
        "symptomatic": "Is the cancer causing symptoms (for example bone pain)?",
        "state": "What is the disease state (castration-sensitive or -resistant; metastatic or not)?",
        "castration": "Is castration maintained (testosterone at castrate level)?",
        "gestational_weeks": "How many weeks pregnant is she?",
        "trimester": "How many weeks pregnant is she?",
        "lactating": "Is she breastfeeding?",
        "postpartum": "Has she delivered recently (postpartum)?",
        "diabetes_type": "Is it type 1 or type 2 diabetes?",
        "child_pugh": "What is the Child-Pugh class of the liver disease?",
        "infection_site": "Is it cystitis only, or are there signs of pyelonephritis (fever, flank pain, CVA tenderness)?",
        "volume": "Is the metastatic disease high or low volume (visceral metastases, or 4 or more bone lesions with one outside the spine and pelvis)?",
        "presentation": "Was the cancer metastatic at diagnosis (de novo), or did metastases appear after earlier local treatment?",
        "imaging": "Are the metastases seen on conventional imaging (CT, MRI, bone scan), or on PSMA PET only?",
        "phase": "Is this the initial treatment phase, or a decision about extended (long-term) therapy?",
        "allergy": "Does the patient have any drug allergies (what reaction)?",
        "kidney": "What is the kidney function (creatinine with age and weight, CrCl or eGFR)?",
    }.get(head, f"Please give: {fact}.")


# ------------------------------------------------------------------ the patient, indexed once per evaluation
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

    @classmethod
    def build(cls, ctx: PatientContext, lexicon: Lexicon, reference_uln: dict[str, float] | None = None) -> PatientView:
        view = cls(ctx=ctx, lexicon=lexicon, reference_uln=dict(reference_uln or {}))
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


# ------------------------------------------------------------------ conditions
class _Evaluator:
    """Evaluates conditions for one patient; records which facts made an atom unknown."""

    def __init__(self, view: PatientView) -> None:
        self.v = view
        self.unknown: list[str] = []

    def _miss(self, *facts: str) -> None:
        for f in facts:
            if f not in self.unknown:
                self.unknown.append(f)

    def cond(self, c: Condition | None) -> Tri:
        if c is None:
            return True
        result: Tri = True
        for k, val in c.atoms():  # plain loop: this is the engine's hot path
            r = self.atom(k, val)
            if r is False:
                return False
            if r is None:
                result = None
        return result

    def atom(self, key: str, value) -> Tri:
        v, ctx = self.v, self.v.ctx
        if key == "all":
            res: Tri = True
            for x in value:
                r = self.cond(x)
                if r is False:
                    return False
                if r is None:
                    res = None
            return res
        if key == "any":
            res = False
            for x in value:
                r = self.cond(x)
                if r is True:
                    return True
                if r is None:
                    res = None
            return res
        if key == "not":
            return not3(self.cond(value))
        if key == "state":
            if ctx.disease_state is None:
                self._miss("state")
                return None
            return ctx.disease_state in value
        if key in ("diagnosis", "comorbidity"):
            states = [v.conditions.get(x) for x in value]
            if "present" in states:
                return True
            if "possible" in states:
                self._miss(*(f"comorbidity:{x}" for x in value if v.conditions.get(x) == "possible"))
                return None
            return False
        if key == "received":
            return v.any_match(
                ("progressed", "intolerant", "completed", "ongoing", "received", "stopped"), value
            )
        if key == "progressed_on":
            return v.any_match(("progressed",), value)
        if key == "current":
            return v.any_match(("ongoing",), value, extra=[*v.medications, *v.still_taking])
        if key == "planned":
            return v.any_match(("planned",), value)
        if key == "intolerant_to":
            return v.any_match(("intolerant",), value)
        if key == "allergy":
            return v.allergic(value.to, value.severity, value.reaction)
        if key == "biomarker":
            return self._biomarker(value)
        if key == "tested_negative":
            results = [b.result for b in ctx.biomarkers if b.name in value]
            if "negative" in results:
                return True
            if any(r in ("pathogenic", "likely_pathogenic", "positive") for r in results):
                return False
            self._miss("biomarker")
            return None
        if key == "site":
            res = or3(v.site(s) for s in value)
            if res is None:
                self._miss(*(f"site:{s}" for s in value if v.site(s) is None))
            return res
        if key == "lab":
            got = v.lab(value.name)
            if got is None:
                self._miss(f"lab:{value.name}")
                return None
            return _OPS[value.op](got, value.value)
        if key in ("age", "ecog", "weight"):
            got = {"age": ctx.age, "ecog": ctx.ecog, "weight": ctx.weight_kg}[key]
            if got is None:
                self._miss(key)
                return None
            return _OPS[value.op](float(got), value.value)
        if key == "sex":
            if ctx.sex is None:
                self._miss("sex")
                return None
            return ctx.sex == value
        if key == "pregnant":
            preg = v.pregnant()
            if preg is None:
                self._miss("pregnant")
                return None
            return preg == value
        if key == "symptomatic":
            if ctx.symptomatic is None:
                self._miss("symptomatic")
                return None
            return ctx.symptomatic == value
        if key == "castration":
            castrated = ctx.castration is not None or v.any_match(
                ("ongoing", "completed", "received"), ["orchiectomy"]
            )
            if not castrated and ctx.disease_state in ("nmCRPC", "mCRPC"):
                castrated = True  # CRPC is defined on castrate testosterone
            if not castrated:
                self._miss("castration")
                return None
            return value is True
        if key == "calc":
            return self._calc(value)
        if key in ("trimester", "gestational_weeks"):
            return self._gestation(key, value)
        if key in ("lactating", "postpartum"):
            got = False if ctx.sex == "male" else getattr(ctx, key)
            if got is None:
                self._miss(key)
                return None
            return got == value
        if key == "diabetes_type":
            if ctx.diabetes_type is not None:
                return ctx.diabetes_type in value
            if v.conditions.get("diabetes") in ("present", "possible"):
                self._miss("diabetes_type")
                return None
            return False  # no diabetes: no type of it
        if key == "uln":
            got = v.uln_multiple(value.name)
            if got is None:
                self._miss(f"lab:{value.name}")
                return None
            return _OPS[value.op](got, value.value)
        if key == "child_pugh":
            if ctx.child_pugh is not None:
                return ctx.child_pugh in value
            if any(v.conditions.get(c) in ("present", "possible") for c in ("cirrhosis", "liver_disease")):
                self._miss("child_pugh")
                return None
            return False  # no liver disease stated: not Child-Pugh B or C
        if key == "infection_site":
            if ctx.infection_site is not None:
                return ctx.infection_site in value
            if v.conditions.get("uti") in ("present", "possible"):
                self._miss("infection_site")
                return None
            return False
        if key == "phase" and ctx.care_phase is None and not v.any_match(
            ("ongoing", "received", "completed", "progressed", "stopped", "intolerant"), ["anticoagulant"],
            extra=v.medications,
        ):
            # No phase stated and no anticoagulant yet: this is the start of treatment (the initial phase).
            return "initial" in value
        if key in ("volume", "presentation", "imaging", "phase"):
            got = getattr(ctx, _STATED_FIELDS[key])
            if got is None:
                self._miss(key)
                return None
            return got in value
        if key == "declined":
            return v.declines(value)
        if key == "resistance":
            rates = [
                pct for tok, pct in ctx.local_resistance.items()
                if tok == value.to or v.lexicon.matches(tok, value.to) or v.lexicon.matches(value.to, tok)
            ]  # fmt: skip
            if not rates:
                self._miss("resistance")
                return None
            return _OPS[value.op](max(rates), value.value)
        raise ValueError(f"unknown condition atom {key!r}")  # the loader rejects these; a guard for tests

    def _biomarker(self, spec) -> Tri:
        ctx = self.v.ctx
        genes = set(spec.genes)
        # "BRCA mutation" without a number counts for a rule naming BRCA1 or BRCA2.
        found = [
            b for b in ctx.biomarkers if b.name in genes or (b.name == "BRCA" and genes & {"BRCA1", "BRCA2"})
        ]
        # Non-gene markers (MSI-H, PSMA PET …) are reported "positive"; genes "pathogenic": same meaning here.
        results = set(spec.results)
        if results & {"pathogenic", "positive"}:
            results |= {"pathogenic", "positive"}
        origin_unknown: list[str] = []
        for b in found:
            if b.result not in results:
                continue
            if not spec.origins or b.origin in spec.origins:
                return True
            if b.origin == "unknown":
                origin_unknown.append(b.name)
        if origin_unknown:
            self._miss(*(f"origin:{g}" for g in origin_unknown))
            return None
        known = [b for b in found if b.result != "unknown"]
        if known:
            return False
        imaging = genes & {"PSMA-PET", "FDG-PET"}
        if imaging:
            # A scan, not a genetic test: ask for the scan by name.
            self._miss(*(f"tested:{g}" for g in sorted(imaging)))
            return None
        # A panel that reported an alteration in another HRR gene covered these genes too (every HRR
        # panel includes BRCA1/2): read them as not altered, so "ATM mutation" fails a BRCA-only label.
        # The question rules still ask to confirm the panel's coverage.
        if genes <= _HRR_GENES and any(
            b.name in _HRR_GENES and b.result in ("pathogenic", "likely_pathogenic", "negative")
            for b in ctx.biomarkers
        ):
            return False
        # A broad "HRR panel negative" without gene names is recorded as name "HRR".
        if any(b.name == "HRR" and b.result == "negative" for b in ctx.biomarkers) and not genes & {
            "PSMA-PET",
            "FDG-PET",
            "MSI-H",
            "dMMR",
            "TMB-high",
            "PD-L1",
        }:
            return False
        self._miss("biomarker")
        return None

    def _gestation(self, key: str, value) -> Tri:
        ctx = self.v.ctx
        preg = self.v.pregnant()
        if preg is None:
            self._miss("pregnant")
            return None
        if not preg:
            return False
        weeks = ctx.gestational_weeks
        trimester = ctx.trimester or (None if weeks is None else 1 if weeks < 14 else 2 if weeks < 28 else 3)
        if key == "trimester":
            if trimester is None:
                self._miss("gestational_weeks")
                return None
            return trimester in value
        if weeks is not None:
            return _OPS[value.op](weeks, value.value)
        if trimester is not None:
            # The trimester bounds the weeks: decide when both ends of the range agree.
            lo, hi = {1: (0.0, 13.9), 2: (14.0, 27.9), 3: (28.0, 42.0)}[trimester]
            at_lo, at_hi = _OPS[value.op](lo, value.value), _OPS[value.op](hi, value.value)
            if at_lo == at_hi:
                return at_lo
        self._miss("gestational_weeks")
        return None

    def _calc(self, spec) -> Tri:
        if spec.name == "apixaban_dose_criteria":
            low, high = calculators.apixaban_dose_bounds(self.v.ctx)
            at_low, at_high = _OPS[spec.op](low, spec.value), _OPS[spec.op](high, spec.value)
            if low == high or at_low == at_high:
                return at_low
            self._miss(*self.v.calc(spec.name)[1])
            return None
        value, missing = self.v.calc(spec.name)
        if value is None:
            self._miss(*missing)
            return None
        return _OPS[spec.op](value, spec.value)


# ------------------------------------------------------------------ the engine
_HRR_GENES = frozenset(
    [
        "BRCA1",
        "BRCA2",
        "ATM",
        "ATR",
        "BARD1",
        "BRIP1",
        "CDK12",
        "CHEK1",
        "CHEK2",
        "FANCA",
        "FANCD2",
        "FANCL",
        "PALB2",
        "RAD51",
        "RAD51B",
        "RAD51C",
        "RAD51D",
        "RAD54L",
        "NBN",
        "MRE11A",
        "MRE11",
        "RAD50",
        "PPP2R2A",
        "MLH1",
        "MSH2",
        "MSH6",
        "PMS2",
        "GEN1",
        "ERCC2",
    ]
)
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
        from assistant.safety import SafetyPass

        self.knowledge = knowledge
        self.lexicon = knowledge.lexicon
        self.rules: list[Rule] = list(knowledge.rules)
        # Every offer passes the drug's label profile for this patient before anyone sees it.
        self.safety: SafetyPass | None = SafetyPass(knowledge) if safety else None

    def view(self, ctx: PatientContext) -> PatientView:
        return PatientView.build(ctx, self.lexicon, getattr(self.knowledge, "reference_uln", None))

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


_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "has",
        "have",
        "been",
        "done",
        "be",
        "of",
        "on",
        "or",
        "and",
        "to",
        "for",
        "in",
        "it",
        "its",
        "this",
        "that",
        "what",
        "which",
        "with",
    ]
)


def _ask_words(text: str) -> frozenset[str]:
    head = text.split("?")[0]  # the question itself, not the explanation after it
    return frozenset(w for w in re.findall(r"[a-z0-9]+", head.lower()) if w not in _STOP)


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a and b) and len(a & b) / len(a | b) >= 0.6


@dataclass
class BenchResult:
    rules: int
    patients: int
    runs: int
    mean_ms: float
    p95_ms: float
    max_ms: float


def benchmark(knowledge: Knowledge, contexts: list[PatientContext], repeat: int = 50) -> BenchResult:
    """Time `evaluate` over the given patients (after one warm-up pass that imports the calculators)."""
    engine = RuleEngine(knowledge)
    for ctx in contexts:
        engine.evaluate(ctx)
    times: list[float] = []
    for _ in range(repeat):
        for ctx in contexts:
            t0 = time.perf_counter()
            engine.evaluate(ctx)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return BenchResult(
        rules=len(engine.rules),
        patients=len(contexts),
        runs=len(times),
        mean_ms=sum(times) / len(times) if times else 0.0,
        p95_ms=times[int(0.95 * (len(times) - 1))] if times else 0.0,
        max_ms=times[-1] if times else 0.0,
    )
