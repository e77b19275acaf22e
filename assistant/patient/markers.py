"""Biomarkers named in a clause: marker, result (pathogenic, negative, VUS …) and origin (germline or somatic).

Part of the per-turn reading (`extract.PatientExtractor.extract_turn` calls `read_biomarkers` per clause). The
oncology pack's markers are read separately by `assistant/oncology/extract.py`.
"""

from __future__ import annotations

import re

from assistant.models import Biomarker
from assistant.patient.clauses import Clause
from assistant.patient.facts import TurnFacts, conflict
from assistant.patient.vocab import ClinicalVocab

_RESULT_WORDS = [
    ("vus", r"\bVUS\b|variant of (?:uncertain|unknown) significance|uncertain significance"),
    ("likely_pathogenic", r"likely pathogenic|likely deleterious"),
    ("negative", r"\bnegative\b|wild[- ]?type|\bWT\b|not detected|no (?:pathogenic |deleterious |actionable )?(?:mutations?|variants?|alterations?)|"
     r"tested negative|\bnormal\b|\bMSS\b|microsatellite stable|\bpMMR\b|proficient|\blow\b|non[- ]?avid|absent"),
    ("pathogenic", r"pathogenic|deleterious|mutat\w*|alteration|variant|carrier|\bpositive\b|\bdeficien|\bhigh\b|detected|loss|"
     r"frameshift|nonsense|truncating|stop[- ]gain|splice[- ]site|"
     r"\bavid\b|\bH\b|\+|\bfound\b|harbou?rs?"),
]  # fmt: skip

_POSITIVE_RESULTS = {"pathogenic", "likely_pathogenic", "positive"}


def _opposite_results(a: str, b: str) -> bool:
    return (a in _POSITIVE_RESULTS and b == "negative") or (b in _POSITIVE_RESULTS and a == "negative")


def read_biomarkers(cl: Clause, facts: TurnFacts, vocab: ClinicalVocab) -> None:
    """Every marker named in the clause with its result and origin, into `facts.biomarkers`."""
    t = cl.text
    hits = list(vocab.markers.finditer(t)) if vocab.markers is not None else []
    for i, m in enumerate(hits):
        names = _canonical_markers(m.group(0))
        if not names:
            continue
        nxt = hits[i + 1].start() if i + 1 < len(hits) else len(t)
        post = t[m.end() : nxt]
        prev_end = hits[i - 1].end() if i > 0 else 0
        pre = t[max(0, m.start() - 60) : m.start()]
        marker = names[0]
        raw = m.group(0).lower()
        negated = re.search(
            r"\b(?:no|not|without|negative for|absence of)\s+(?:[-\w]+\s+){0,2}$", pre, re.IGNORECASE
        )
        if marker == "PSMA-PET" and negated and re.search(r"negative|no uptake", raw):
            continue  # "no PSMA-negative lesions" says nothing against PSMA positivity
        if negated and marker != "PSMA-PET":
            result = "negative"  # "no HRR alterations", "negative for BRCA2"
        elif raw in ("mss",) or "stable" in raw:
            result = "negative"  # microsatellite stable = not MSI-high
        elif marker == "PSMA-PET" and re.search(r"negative", raw):
            result = "negative"
        elif marker == "PSMA-PET" and re.search(r"positive|avid|\+", raw):
            result = "positive"
        else:
            non_gene = vocab.non_gene_markers
            result = _result_in(post, marker, non_gene) or _result_in(pre, marker, non_gene, pre_only=True)
        if result is None:
            # A list shares the words after its last member: "BRCA1, BRCA2 and ATM negative".
            tail = t[m.end() : m.end() + 120]
            result = _list_result(tail, marker, vocab.non_gene_markers) or _default_result(marker, t[prev_end:nxt])
        if marker == "TMB-high":
            num = re.search(r"^[^.;\d]{0,25}(\d+(?:\.\d+)?)", post)
            if num:
                result = "positive" if float(num.group(1)) >= 10 else "negative"
        if result is None:
            continue
        if marker == "PSMA-PET" and re.search(
            r"heterogen|discordan|mixed|some lesions[^.;]{0,30}negative|(?<!no )psma[- ]negative (?:lesion|disease|metasta)|"
            r"no psma (?:uptake|expression)|without psma (?:uptake|expression)|fdg[- ]avid|fdg[- ]positive",
            t,
            re.IGNORECASE,
        ):
            result = "negative"
            value = "heterogeneous: PSMA-negative lesions present"
        else:
            value = None
        origin = _origin_near(t, m.start(), m.end())
        for name in names:
            res = result
            if name in vocab.non_gene_markers and res in ("pathogenic", "likely_pathogenic"):
                res = "positive"
            val = value
            if name == "TMB-high":
                num = re.search(r"^[^.;\d]{0,25}(\d+(?:\.\d+)?)", post)
                val = num.group(1) if num else val
            prev_bm = facts.biomarkers.get(name)
            if prev_bm is not None and _opposite_results(prev_bm.result, res):
                conflict(facts, name, f"reported both {prev_bm.result} and {res}")
            facts.biomarkers[name] = Biomarker(
                name=name, result=res, origin=origin, value=val, mention=m.group(0)
            )
    if re.search(
        r"\b(?:HRR|germline|genetic|genomic|NGS)\b[^.;]{0,30}\b(?:testing|panel|tests?)\b[^.;]{0,20}\b(?:negative|unremarkable|normal|no (?:pathogenic|actionable))",
        t,
        re.IGNORECASE,
    ):
        facts.biomarkers.setdefault("HRR", Biomarker(name="HRR", result="negative", mention="panel negative"))


def _origin_near(text: str, start: int, end: int) -> str:
    """germline / somatic from the words nearest the marker (the closer cue wins when both appear)."""
    window_start = max(0, start - 40)
    window = text[window_start : min(len(text), end + 60)].lower()
    germ = [m.start() for m in re.finditer(r"germ[- ]?line|inherited|hereditary|familial", window)]
    som = [
        m.start()
        for m in re.finditer(
            r"somatic|tumou?r (?:tissue|testing|ngs|sequencing|genomic|profil|dna)|ctdna|liquid biopsy|circulating tumou?r",
            window,
        )
    ]
    if not germ and not som:
        return "unknown"
    centre = start - window_start
    dist_g = min((abs(p - centre) for p in germ), default=10**6)
    dist_s = min((abs(p - centre) for p in som), default=10**6)
    return "germline" if dist_g <= dist_s else "somatic"


def _canonical_markers(raw: str) -> list[str]:
    r = raw.upper().replace(" ", "")
    if r in ("BRCA1/2",):
        return ["BRCA1", "BRCA2"]
    if r == "BRCA":
        return ["BRCA"]
    if r.startswith("BRCA"):
        return [r]
    if r.startswith("MSI") or r.startswith("MICROSATELLITE") or r == "MSS":
        return ["MSI-H"]
    if r in ("DMMR",) or "MISMATCH" in r or r.startswith("MMR"):
        return ["dMMR"]
    if r.startswith("TMB") or "MUTATIONALBURDEN" in r:
        return ["TMB-high"]
    if r.startswith("PSMA"):
        return ["PSMA-PET"]
    if r.startswith("FDG"):
        return ["FDG-PET"]
    if r.startswith("MRE11"):
        return ["MRE11A"]
    return [raw.upper()]


def _result_in(segment: str, marker: str, non_gene: frozenset[str], pre_only: bool = False) -> str | None:
    seg = segment
    if pre_only:
        # Only the words right before the marker count ("germline pathogenic BRCA2", "negative for BRCA2").
        seg = segment[-45:]
        if marker == "PSMA-PET" and re.search(r"\bno\b|\bnegative\b", seg, re.IGNORECASE) is None:
            return None
    else:
        seg = segment[:60]
    if marker == "PSMA-PET":
        # "PSMA PET shows nodes with negative CT and bone scan": the result words of other scans are not PSMA's.
        seg = re.sub(
            r"\b(?:negative|positive|clear|normal|unremarkable)\s+(?:on\s+)?(?:CT|bone scan|MRI|conventional|imaging|x-ray)\b.*"
            r"|\b(?:CT|bone scan|MRI|conventional imaging|x-ray|FDG)\b.*",
            "",
            seg,
            flags=re.IGNORECASE,
        )
    for result, pattern in _RESULT_WORDS:
        if (
            marker in ("MSI-H", "TMB-high")
            and result == "pathogenic"
            and not re.search(r"high|\bH\b|positive|unstable|detected|\+", seg, re.IGNORECASE)
        ):
            continue
        if re.search(pattern, seg, re.IGNORECASE):
            if (
                result == "negative"
                and marker not in non_gene  # "low"/"normal" is a gene's wild type, not a marker's result
                and re.search(r"\blow\b|\bnormal\b", seg, re.IGNORECASE)
                and not re.search(r"negative|wild|not detected|no ", seg, re.IGNORECASE)
            ):
                continue
            return result
    return None


def _list_result(tail: str, marker: str, non_gene: frozenset[str]) -> str | None:
    m = re.match(
        r"^(?:\s*(?:,|and|or|/)\s*(?:BRCA1/2|BRCA ?[12]|[A-Z0-9]{2,7}))+\s*(?:genes?\s*)?(?:were|was|are|is|all)?\s*",
        tail,
    )
    if m:
        return _result_in(tail[m.end() :], marker, non_gene)
    return None


def _default_result(marker: str, clause: str) -> str | None:
    if marker in ("MSI-H", "dMMR", "TMB-high"):
        return (
            "positive"
            if re.search(r"MSI-?H|\bdMMR\b|TMB-?H|high|deficien|unstable", clause, re.IGNORECASE)
            else None
        )
    if marker == "PSMA-PET":
        return "positive" if re.search(r"PSMA[- ]?(?:avid|positive|\+)|avid", clause, re.IGNORECASE) else None
    return None
