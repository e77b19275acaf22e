"""What the question is about: the conditions it names (its focus) and the conditions its topic words point to.

Fifth step of the patient stage (after `infer`): `question_focus` sets `PatientContext.focus`, which the answer
plan uses to keep offers for other conditions as context ("also noted").
"""

from __future__ import annotations

import re

from assistant.models import PatientContext
from assistant.patient.facts import TurnFacts

# Topic words in a question and the conditions they belong to ("which anticoagulant?" → AF, VTE).
_TOPICS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(p, re.IGNORECASE), domains)
    for p, domains in [
        (r"anticoagula|\bDOAC|blood thinner|stroke prevention", ("atrial_fibrillation", "vte")),
        (r"antibiotic|antimicrobial", ("uti", "pneumonia")),
        (
            r"lipid|statin|cholesterol|\bLDL",
            ("hyperlipidemia", "vascular_disease", "coronary_artery_disease"),
        ),
        (r"blood pressure|antihypertensive|\bBP\b", ("hypertension",)),
        (r"glucose|glyc(?:a)?emic|hba1c|diabetes (?:drug|medication)", ("diabetes",)),
        (r"kidney protection|renal protection|albuminuria|\bCKD\b", ("ckd", "diabetes")),
        (r"bone health|bone[- ]targeted|skeletal", ("prostate_cancer",)),
    ]
]


def question_focus(ctx: PatientContext, all_facts: list[TurnFacts], primary: frozenset[str]) -> list[str]:
    """What the question is about: conditions named in the question itself, else the first one named.

    "65-year-old with pneumonia, COPD and diabetes. Which antibiotic?" is about pneumonia; the
    diabetes rules still run (their warnings and exclusions stand) but their offers are context.
    Topic words in the question ("which anticoagulant?") add the conditions they belong to.
    """
    present = {c for c, v in ctx.comorbidities.items() if v == "present"} | set(ctx.diagnoses)
    focus: list[str] = []
    primary_turns = [f for f in all_facts if any(cid in primary for _, cid, _ in f.dx_positions)]
    last = all_facts[-1] if all_facts else None
    if last is not None:
        focus.extend(cid for _, cid, asked in sorted(last.dx_positions) if asked)
    if primary_turns:
        focus.append(min(p for p in primary_turns[0].dx_positions if p[1] in primary)[1])
        if last is not None and any(cid in primary for _, cid, _ in last.dx_positions):
            focus.append(min(p for p in last.dx_positions if p[1] in primary)[1])
    if ctx.disease_state and "prostate_cancer" not in focus and not focus:
        focus.append("prostate_cancer")
    focus = [c for c in dict.fromkeys(focus) if c in present]
    topics: list[str] = []
    for text in (last.question_text if last is not None else "",):
        for rx, domains in _TOPICS:
            if rx.search(text):
                topics.extend(d for d in domains if d in present or d in ("hyperlipidemia",))
    return list(dict.fromkeys(focus + topics))
