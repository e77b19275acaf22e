"""Details of stated conditions that change drug safety: diabetes type, Child-Pugh class and urinary infection
site (cystitis, pyelonephritis, urosepsis).

Safety readers, called by `extract.PatientExtractor.extract_turn` for each turn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.patient.facts import (
    ClauseLike,
    Polarity,
    SafetyFacts,
    add_note,
)
from assistant.patient.vocab import load_cues

_DM_TYPES: list[tuple[str, re.Pattern[str]]] = [
    (t, re.compile(p, flags))
    for t, p, flags in [
        ("type1", r"\btype\s*(?:1|i|one)\s+(?:diabet\w*|DM)\b|\bjuvenile[- ](?:onset )?diabet\w*|(?<!non-)(?<!non )\binsulin[- ]dependent diabet\w*|"
                  r"\bautoimmune diabet\w*|latent autoimmune diabet\w*", re.I),
        ("type1", r"\bT1DM?\b|\bIDDM\b|\bDM ?(?:1|I)\b(?!I)|\bLADA\b", 0),
        ("type2", r"\btype\s*(?:2|ii|two)\s+(?:diabet\w*|DM)\b|non[- ]insulin[- ]dependent diabet\w*", re.I),
        ("type2", r"\bT2DM?\b|\bNIDDM\b|\bDM ?(?:2|II)\b", 0),
        ("gestational", r"\bgestational diabet\w*", re.I),
        ("gestational", r"\bGDM\b", 0),
        ("other", r"maturity[- ]onset diabetes of the young|\btype\s*3c\b|\bpancrea(?:togenic|tic) diabet\w*|cystic fibrosis[- ]related diabet\w*|"
                  r"\b(?:steroid|glucocorticoid)[- ]induced diabet\w*|\bsecondary diabet\w*", re.I),
        ("other", r"\bMODY\b|\bCFRD\b", 0),
    ]
]  # fmt: skip
_PAST = re.compile(
    r"\b(?:history of|previous|prior|past|in (?:a|her) (?:previous|prior|last) pregnancy|resolved)\b[^.;]{0,25}$",
    re.I,
)


def read_diabetes_type(clauses: Sequence[ClauseLike], polarity: Polarity, out: SafetyFacts) -> None:
    found: dict[str, str] = {}
    for cl in clauses:
        for dtype, rx in _DM_TYPES:
            for m in rx.finditer(cl.text):
                if polarity(cl.text, m.start(), m.end()) != "present":
                    continue
                if dtype == "gestational" and _PAST.search(cl.text[max(0, m.start() - 50) : m.start()]):
                    add_note(out, "History of gestational diabetes (not current diabetes).")
                    continue
                found.setdefault(dtype, m.group(0))
    if not found:
        return
    if len(found) > 1:
        add_note(
            out,
            "Conflicting statements about diabetes type in one message: "
            + ", ".join(found.values())
            + "; please confirm.",
        )
    order = ("type1", "gestational", "type2", "other")  # the safety-critical reading first when both are said
    dtype = next(t for t in order if t in found)
    out.diabetes_type = dtype
    if dtype != "gestational":
        out.extra_conditions["diabetes"] = "present"
    if re.search(r"\bLADA\b|latent autoimmune", found[dtype]):
        add_note(out, "LADA read as autoimmune (type 1) diabetes for drug safety.")


_CHILD_PUGH = [
    re.compile(
        r"\bchild(?:'s)?[- ](?:pugh|turcotte[- ]pugh)(?:[- ]turcotte)?\s*(?:class|grade|category|stage)?\s*[:=]?\s*\(?([ABC])(?:\b|(?=\s*\(?\d))",
        re.I,
    ),
    re.compile(r"\bChild(?:'s)?[- ]([ABC])(?:\b|(?=\d))"),
    re.compile(r"\bCP[- ]?([ABC])(?:\b(?![- ]?\d)|(?=\d{1,2}\b))"),
]
_CHILD_SCORE = re.compile(
    r"\bchild[- ]pugh(?:[- ]turcotte)?\s*(?:score)?\s*(?:of|is|=|:)?\s*(\d{1,2})\b", re.I
)


def read_child_pugh(text: str, out: SafetyFacts) -> None:
    for rx in _CHILD_PUGH:
        m = rx.search(text)
        if m:
            out.child_pugh = m.group(1).upper()
            break
    else:
        m = _CHILD_SCORE.search(text)
        if m and 5 <= int(m.group(1)) <= 15:
            score = int(m.group(1))
            out.child_pugh = "A" if score <= 6 else "B" if score <= 9 else "C"
            add_note(out, f"Child-Pugh class {out.child_pugh} from the stated score {score}.")
    if out.child_pugh:
        out.extra_conditions.setdefault("liver_disease", "present")


# ------------------------------------------------------------------ urinary infection site
_UTI_WORDS = re.compile(
    r"urinary tract infection|\bUTIs?\b|cystitis|pyelonephritis|\bpyelo\b|urosepsis|dysuria|\bbladder infection|"
    r"\b(?:urinary|urine|water|kidney|renal) infection|pyuria (?:and|with) nitrites?|nitrite[- ]positive",
    re.I,
)
_UPPER = re.compile(
    r"pyelonephritis|\bpyelo\b|upper (?:urinary )?(?:tract )?(?:UTI|infection)|upper urinary tract infection|kidney infection|"
    r"\bflank pain|\bloin pain|\b(?:CVA|CVAT|costovertebral(?:[- ]angle)?|renal angle)\s*(?:tenderness|pain|tender)|\bCVAT\b|"
    r"\brigou?rs\b|\bfevers?\b|\bfebrile\b|\bpyrexi\w*|\btemp(?:erature)?\s*(?:of\s*)?3(?:8(?:\.\d)?|9(?:\.\d)?|[4-9]\d(?:\.\d)?)",
    re.I,
)
_LOWER = re.compile(
    r"\bcystitis\b|lower (?:urinary )?(?:tract )?(?:UTI|infection)|lower urinary tract infection|bladder infection|uncomplicated (?:UTI|cystitis)|"
    r"\bdysuria\b|\bfrequency\b|\burgency\b|\bsuprapubic\b",
    re.I,
)
_SEPSIS = re.compile(
    r"\burosepsis\b|\bseptic\b|\bsepsis\b|\bhypotensi\w+|\bshock\b|\bSIRS\b|\bqSOFA\s*(?:of\s*)?[23]", re.I
)
_HISTORY = load_cues().compile(r"\b{w}\b[^.;]{0,20}$", w="patient_infection_history")


def read_infection_site(clauses: Sequence[ClauseLike], polarity: Polarity, out: SafetyFacts) -> None:
    """Cystitis vs pyelonephritis vs urosepsis from the words and signs; negated signs do not count."""
    text = " ".join(c.text for c in clauses)
    about_uti = bool(_UTI_WORDS.search(text))
    upper: list[str] = []
    lower: list[str] = []
    sepsis: list[str] = []
    for cl in clauses:
        t = cl.text
        for rx, bucket in ((_UPPER, upper), (_LOWER, lower), (_SEPSIS, sepsis)):
            for m in rx.finditer(t):
                if _HISTORY.search(t[max(0, m.start() - 40) : m.start()]):
                    continue
                pol = polarity(t, m.start(), m.end())
                if pol == "present" and not (
                    cl.is_question
                    and re.search(
                        r"\bor\b", t[m.end() : m.end() + 25] + t[max(0, m.start() - 20) : m.start()]
                    )
                ):
                    bucket.append(m.group(0).lower())
    if not about_uti:
        # A later turn without UTI words can still upgrade an earlier UTI (merge decides, knowing the context).
        out.upper_tract_signs = [s for s in upper if not re.match(r"fever|febrile|pyrex|temp|rigo", s)]
        return
    if sepsis:
        out.infection_site = "urosepsis"
        add_note(out, f"Urinary infection read as urosepsis ({', '.join(dict.fromkeys(sepsis))}).")
    elif upper:
        out.infection_site = "pyelonephritis"
        if not any("pyelo" in s for s in upper):
            add_note(
                out,
                f"Upper urinary tract infection (pyelonephritis) read from: {', '.join(dict.fromkeys(upper))}.",
            )
    elif lower:
        out.infection_site = "cystitis"
