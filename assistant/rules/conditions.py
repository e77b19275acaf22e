"""Rule conditions evaluated for one patient, and the plain question for each fact that was missing.

Sits between the patient view (`view.py`) and the engine (`engine.py`, and the safety pass's label
checks): `_Evaluator.cond` answers a corpus `Condition` with three-valued logic (`tri.py`) and records
which rule facts (`lab:crcl`, `pregnant`, `origin:BRCA2` …) left it unknown; `generic_question` words a
question for such a fact when no rule supplies its own. Pure and fast: this is the engine's hot path.
"""

from __future__ import annotations

from assistant.knowledge import Condition
from assistant.patient.infer import castration_of
from assistant.rules import calculators
from assistant.rules.tri import _OPS, Tri, not3, or3
from assistant.rules.view import _STATED_FIELDS, PatientView

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


# Genes an HRR panel reports on (read by `_Evaluator._biomarker`).
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
            if castration_of(ctx, v.lexicon) is None:  # declared once, with the extractor's inference
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
        # A broad "HRR panel negative" without gene names is recorded as name "HRR"; it says nothing of the
        # markers that are not genes (MSI-H, PSMA-PET …).
        if any(b.name == "HRR" and b.result == "negative" for b in ctx.biomarkers) and not (
            genes & self.v.non_gene_markers
        ):
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
