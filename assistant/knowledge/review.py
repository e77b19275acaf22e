"""The clinician review sheet: every rule and every drug safety check in plain language, for sign-off.

Last step of the knowledge stage, read by people only: it takes a loaded `Knowledge` and returns Markdown.

`python -m assistant.knowledge review --out review.md` writes it. A reviewer reads scope, what excludes an
option, sources, strength and the last review date without opening YAML. Conditions are translated by
`describe`, which walks the same condition tree the engine evaluates (so the sheet cannot drift from the
logic it describes).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

from assistant.knowledge import Knowledge
from assistant.knowledge.schema import Condition, QuestionRule, SafetyProfile, TherapyRule, WarningRule

_OPS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least", "==": "equal to", "!=": "not"}
_CALC = {
    "cha2ds2_vasc": "CHA2DS2-VASc score",
    "has_bled": "HAS-BLED score",
    "crcl": "creatinine clearance (Cockcroft–Gault, mL/min)",
    "egfr_ckd_epi_2021": "eGFR (CKD-EPI 2021)",
    "apixaban_dose_criteria": "apixaban dose-reduction criteria met",
}


def _words(items: Iterable[str]) -> str:
    items = [str(i).replace("_", " ") for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def describe(cond: Condition | None) -> str:
    """A condition in plain clinical English ('disease state is mCRPC and progressed on an ARPI')."""
    if cond is None:
        return "always"
    parts = [_atom(k, v) for k, v in cond.atoms()]
    return " and ".join(p for p in parts if p)


def _atom(key: str, v) -> str:
    if key == "all":
        return "(" + " and ".join(describe(c) for c in v) + ")"
    if key == "any":
        return "(" + " or ".join(describe(c) for c in v) + ")"
    if key == "not":
        return f"not ({describe(v)})"
    if key in ("state", "diagnosis", "comorbidity"):
        return {"state": "disease state is ", "diagnosis": "has ", "comorbidity": "has "}[key] + _words(v)
    if key in ("received", "progressed_on", "current", "planned", "intolerant_to", "declined"):
        verb = {"received": "has received", "progressed_on": "progressed on", "current": "currently takes",
                "planned": "is planned to start", "intolerant_to": "stopped for toxicity",
                "declined": "declines"}[key]  # fmt: skip
        return f"{verb} {_words(v)}"
    if key == "biomarker":
        origin = f" ({_words(v.origins)})" if v.origins else ""
        return f"{_words(v.genes)} result is {_words(v.results)}{origin}"
    if key == "tested_negative":
        return f"tested negative for {_words(v)}"
    if key == "site":
        return f"metastases in {_words(v)}"
    if key == "lab":
        return f"{v.name} {_OPS[v.op]} {v.value:g}"
    if key == "uln":
        return f"{v.name} {_OPS[v.op]} {v.value:g} × upper limit of normal"
    if key == "calc":
        return f"{_CALC.get(v.name, v.name)} {_OPS[v.op]} {v.value:g}"
    if key in ("age", "ecog", "weight", "gestational_weeks"):
        label = {"age": "age", "ecog": "ECOG", "weight": "weight (kg)", "gestational_weeks": "weeks of pregnancy"}[key]
        return f"{label} {_OPS[v.op]} {v.value:g}"
    if key in ("sex",):
        return f"sex is {v}"
    if key in ("pregnant", "lactating", "postpartum", "symptomatic", "castration"):
        word = {"pregnant": "pregnant", "lactating": "breastfeeding", "postpartum": "postpartum",
                "symptomatic": "symptomatic", "castration": "castrate"}[key]  # fmt: skip
        return word if v else f"not {word}"
    if key == "allergy":
        sev = f" ({_words(v.severity)} reaction)" if v.severity else ""
        return f"allergic to {_words(v.to)}{sev}"
    if key == "resistance":
        return f"local resistance to {v.to.replace('_', ' ')} {_OPS[v.op]} {v.value:g} %"
    if key == "trimester":
        return f"in trimester {_words(str(t) for t in v)}"
    labels = {"diabetes_type": "diabetes type is ", "child_pugh": "Child-Pugh class ", "infection_site": "infection site is ",
              "volume": "metastatic volume is ", "presentation": "presentation is ", "imaging": "metastases seen on ",
              "phase": "treatment phase is "}  # fmt: skip
    return labels.get(key, f"{key}: ") + _words(v)


def _sources(k: Knowledge, refs: Iterable[str]) -> list[str]:
    out = []
    for r in dict.fromkeys(refs):
        ref = k.resolve(r)
        if ref is None:
            out.append(f"`{r}` (unresolved)")
            continue
        src = ref.source or ref.doc_title
        flag = " — **unverified**" if ref.unverified else ""
        url = f" <{ref.url}>" if ref.url else ""
        out.append(f"`{r}`: {src}{url}{flag}")
    return out


def review_sheet(k: Knowledge, today: _dt.date | None = None) -> str:
    today = today or _dt.date.today()
    # By the record's `type`, the key the loader dispatches on.
    therapy: list[TherapyRule] = [r for r in k.rules if r.type == "therapy"]  # type: ignore[misc]
    warn: list[WarningRule] = [r for r in k.rules if r.type == "warning"]  # type: ignore[misc]
    ask: list[QuestionRule] = [r for r in k.rules if r.type == "question"]  # type: ignore[misc]
    unverified = sum(1 for r in k.rules if r.unverified or k.is_unverified(r.cite))
    lines = [
        "# GuideRail knowledge — clinician review sheet",
        "",
        f"Generated {today.isoformat()} from corpus version `{k.version}`. {len(therapy)} therapy rules, {len(warn)} "
        f"warnings, {len(ask)} questions, {len(k.safety_profiles)} drug safety profiles "
        f"({sum(len(p.contraindicated) + len(p.caution) for p in k.safety_profiles)} checks). "
        f"{unverified} rules rest on at least one unverified source.",
        "",
        "Sign off each item: scope, what excludes it, sources, strength, last reviewed. Safety checks apply to every "
        "answer that would name the drug, whatever rule or passage produced it.",
        "",
        "## Therapy rules",
        "",
    ]
    for r in therapy:
        lines += [
            f"### {r.id} — {r.title or r.therapy}",
            "",
            f"- **Offers:** {r.therapy.replace('_', ' ').replace('+', ' + ')} ({r.finding}"
            f"{f', preference {r.preference}' if r.preference is not None else ''}); strength: {r.strength or 'not graded'}",
            f"- **Applies when:** {describe(r.applies_when)}",
        ]
        if r.eligible_when is not None:
            lines.append(f"- **Eligible when:** {describe(r.eligible_when)} — otherwise: {r.ineligible_reason.strip()}")
        for ex in r.exclusions:
            lines.append(f"- **Excluded when** {describe(ex.when)}: {ex.reason.strip()}")
        if not r.repeat_after_progression:
            lines.append("- **Not repeated** after progression on it.")
        lines.append(f"- **Why:** {r.reason.strip()}")
        lines += [f"- **Source:** {s}" for s in _sources(k, r.cite)]
        lines.append(
            f"- **Last reviewed:** {r.last_reviewed.isoformat()}; verified from: {r.verified_from or '—'}"
            f"{'; **rule marked unverified**' if r.unverified else ''}"
        )
        lines += ["- [ ] signed off by: ______  date: ______", ""]
    lines += ["## Warnings", ""]
    for r in warn:
        lines += [
            f"### {r.id} — {r.title or r.message[:60]} ({r.severity})",
            "",
            f"- **When:** {describe(r.when)}",
            f"- **Says:** {r.message.strip()}",
            *[f"- **Source:** {s}" for s in _sources(k, r.cite)],
            f"- **Last reviewed:** {r.last_reviewed.isoformat()}",
            "- [ ] signed off by: ______  date: ______",
            "",
        ]
    lines += ["## Questions asked when a deciding fact is missing", ""]
    for r in ask:
        lines.append(f"- **{r.id}** — when {describe(r.when)} and `{r.missing}` is unknown: “{r.question.strip()}”")
    lines += ["", "## Drug safety profiles (FDA labels)", ""]
    for p in k.safety_profiles:
        lines += _profile(p)
    return "\n".join(lines) + "\n"


def _profile(p: SafetyProfile) -> list[str]:
    out = [
        f"### {p.id} — {', '.join(a.replace('_', ' ') for a in p.applies_to)}",
        "",
        f"- **Label:** {p.label}{f' (revised {p.revised})' if p.revised else ''}{f' <{p.url}>' if p.url else ''}",
        f"- **Last reviewed:** {p.last_reviewed.isoformat()}; verified from: {p.verified_from or '—'}"
        f"{'; **UNVERIFIED**' if p.unverified else ''}",
        "- **Always:** a documented allergy to the drug or its class excludes it (an intolerance is a caution).",
    ]
    for c in p.contraindicated:
        ask = f" If unknown, asks: “{c.ask}”" if c.ask else ""
        out.append(f"- **Do not use when** {describe(c.when)} — {c.reason.strip()} (§ {c.section}).{ask}")
    for c in p.caution:
        ask = f" If unknown, asks: “{c.ask}”" if c.ask else ""
        out.append(f"- **Caution ({c.severity}) when** {describe(c.when)} — {c.reason.strip()} (§ {c.section}).{ask}")
    out += [f"- **Monitor:** {m}" for m in p.monitor]
    out += ["- [ ] signed off by: ______  date: ______", ""]
    return out
