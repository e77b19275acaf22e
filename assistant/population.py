"""Population scope: a passage written for one population is never quoted as advice for a patient outside it.

A recommendation block states its population ("non-pregnant adult women with acute uncomplicated cystitis");
other passages carry it in their heading path ("Stepwise Pharmacotherapy for Adults and Adolescents",
"Adults > 75 Years", "Children and Adolescents"). Pure: text + patient context → the reason it does not fit,
or None. Unknown facts never exclude (a patient of unstated age can read adult guidance).
"""

from __future__ import annotations

import re

from assistant.models import PatientContext

_ADULT = re.compile(r"\badults?\b", re.I)
_CHILD = re.compile(
    r"\b(?:child(?:ren|hood)?(?![- ]pugh)|paediatric|pediatric|infants?|neonat\w*|newborns?|adolescen\w*|youth)\b",
    re.I,
)
_NON_PREGNANT = re.compile(r"\bnon-?pregnant\b|\bnot pregnant\b", re.I)
_WOMEN_ONLY = re.compile(r"\b(?:women|woman|female)\b", re.I)
_MEN_ONLY = re.compile(r"\b(?:men|man|male)\b", re.I)
# "(>=12 years)", "aged 18-59", "Age 60+", "> 75 Years", "≥ 18 years"
_LOWER = re.compile(
    r"(?:>=|≥|>|\bover\b|\baged?\b)\s*(\d{1,2})\s*\+?\s*(?:y|years?)?|\b(\d{1,2})\s*\+\s*(?:y|years?)?|"
    r"\b(\d{1,2})\s*(?:-|–|to)\s*(\d{1,2})\s*(?:y|years?)\b|\bage\s*(\d{1,2})\s*(?:-|–)\s*(\d{1,2})\b",
    re.I,
)


def _age_bounds(text: str) -> tuple[float | None, float | None]:
    lo: float | None = None
    hi: float | None = None
    for m in _LOWER.finditer(text):
        g = m.groups()
        if g[2] and g[3]:
            lo, hi = float(g[2]), float(g[3])
        elif g[4] and g[5]:
            lo, hi = float(g[4]), float(g[5])
        else:
            val = g[0] or g[1]
            if val:
                bound = float(val) + (1 if m.group(0).lstrip().startswith(">") and "=" not in m.group(0) else 0)
                lo = bound if lo is None else min(lo, bound)
    return lo, hi


def population_mismatch(population: str, ctx: PatientContext) -> str | None:
    """Why a passage written for `population` (its stated population and heading path) does not fit the patient."""
    text = population or ""
    if not text.strip():
        return None
    age = ctx.age
    if age is not None:
        lo, hi = _age_bounds(text)
        if lo is not None and age < lo:
            return f"written for patients aged {lo:g} or older"
        if hi is not None and age > hi:
            return f"written for patients aged up to {hi:g}"
        if age < 18 and _ADULT.search(text) and not _CHILD.search(text):
            return "written for adults"
        if age < 12 and _ADULT.search(text) and re.search(r"adolescen", text, re.I) and lo is None:
            return "written for adults and adolescents"
        if age >= 18 and _CHILD.search(text) and not _ADULT.search(text):
            return "written for children"
    pregnant = False if ctx.sex == "male" else ctx.pregnant
    if pregnant is True and _NON_PREGNANT.search(text):
        return "written for non-pregnant patients"
    if ctx.sex == "male" and _WOMEN_ONLY.search(text) and not _MEN_ONLY.search(text.replace("women", "")):
        return "written for women"
    if ctx.sex == "female" and _MEN_ONLY.search(re.sub(r"\bwo(?:men|man)\b", "", text, flags=re.I)) and not _WOMEN_ONLY.search(text):
        return "written for men"
    return None
