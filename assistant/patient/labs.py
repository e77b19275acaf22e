"""Lab values in one turn's text: PSA with its series and trend, PSA doubling time, kidney, blood, liver, lipid
and glucose tests, scores (CHA2DS2-VASc, HAS-BLED), UACR and blood pressure, converted to one unit each.

Part of the per-turn reading (`extract.PatientExtractor.extract_turn` calls `read_labs`, and `read_liver_labs` for
liver tests written as multiples of the upper limit of normal).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from assistant.models import LabValue
from assistant.patient.facts import NUM, SafetyFacts, TurnFacts, add_note, num
from assistant.patient.vocab import LabSpec


def read_labs(text: str, facts: TurnFacts, labs: Sequence[LabSpec]) -> None:
    """Every lab value the turn states, into `facts.labs` (a later statement of the same lab wins)."""

    def put(
        name: str,
        value: float,
        unit: str,
        mention: str,
        series: list[float] | None = None,
        trend: str = "unknown",
    ) -> None:
        facts.labs[name] = LabValue(
            name=name, value=round(value, 3), unit=unit, series=series or [], trend=trend, mention=mention
        )  # type: ignore[arg-type]

    # PSA: a series ("2.1 → 4.3 → 9.8", "rose from 3 to 12", "PSA 1.2, 3.4 and 8") or a single value.
    psa_rx = re.compile(
        r"\bPSA\b(?:\s+(?:level|levels|value|of|is|was|now|at|has|have|had|risen|rose|rising|increased|increasing|climbed|climbing|gone|went|up|from|to|been|currently|today|recently|nadir|doubled|measured)|\s*[:=~(]|\s*ng/ml\)?)*\s*"
        + NUM
        + r"(?:\s*ng/ml)?((?:\s*(?:->|→|to|,|and|then|>)\s*"
        + NUM
        + r"(?:\s*ng/ml)?){0,8})",
        re.IGNORECASE,
    )
    m = psa_rx.search(text)
    if m and not re.search(r"doubling|velocity|psadt", text[m.start() : m.start(1)], re.IGNORECASE):
        values = [num(m.group(1))] + [num(v) for v in re.findall(NUM, m.group(2) or "")]
        values = [v for v in values if v < 100000]
        between = text[m.start() : m.start(1)].lower()
        trend = "unknown"
        if len(values) > 1:
            trend = "rising" if values[-1] > values[0] else "falling" if values[-1] < values[0] else "stable"
            if re.search(r"\bfrom\b", between) is None and re.search(
                r"(?:fell|dropped|declined|decreased)", between
            ):
                trend = "falling"
        put("psa", values[-1], "ng/mL", m.group(0), values if len(values) > 1 else [], trend)
    trend_m = re.search(
        r"(rising|increasing|climbing|rise in|doubling|going up|went up|rose|falling|declining|decreasing|dropp\w+|fell|stable|undetectable)[^.;]{0,30}\bPSA\b|\bPSA\b(?:[^.;]|\.(?=\d)){0,25}\b(rising|rose|increas\w*|climb\w*|doubl\w*|went up|going up|up|falling|fell|declin\w*|decreas\w*|dropp\w*|stable|undetectable)",
        text,
        re.IGNORECASE,
    )
    if trend_m:
        word = (trend_m.group(1) or trend_m.group(2)).lower()
        trend = (
            "falling"
            if re.match(r"fall|fell|declin|decreas|dropp", word)
            else "stable"
            if word in ("stable",)
            else "unknown"
            if word == "undetectable"
            else "rising"
        )
        lab = facts.labs.get("psa") or LabValue(name="psa", mention=trend_m.group(0))
        if lab.trend == "unknown":
            facts.labs["psa"] = lab.model_copy(update={"trend": trend})
        if word == "undetectable" and "psa" not in facts.labs:
            put("psa", 0.0, "ng/mL", trend_m.group(0))
    dt = re.search(
        r"(?:PSA ?DT|PSA doubling time|doubling time)[^.;\d]{0,20}"
        + NUM
        + r"\s*(months?|mo|weeks?|wks?|years?|yrs?)?",
        text,
        re.IGNORECASE,
    )
    if dt:
        v = num(dt.group(1))
        unit = (dt.group(2) or "months").lower()
        months = v / 4.345 if unit.startswith("w") else v * 12 if unit.startswith("y") else v
        put("psadt_months", months, "months", dt.group(0))
    elif "psa" in facts.labs and len(facts.labs["psa"].series) >= 2:
        span = re.search(
            r"over (?:the (?:last|past) )?" + NUM + r"\s*(months?|weeks?|years?)", text, re.IGNORECASE
        )
        series = facts.labs["psa"].series
        if span and series[0] > 0 and series[-1] > series[0]:
            v = num(span.group(1))
            unit = span.group(2).lower()
            months = v / 4.345 if unit.startswith("w") else v * 12 if unit.startswith("y") else v
            put(
                "psadt_months",
                months * math.log(2) / math.log(series[-1] / series[0]),
                "months",
                span.group(0) + " (computed)",
            )

    # The lab table (corpus/lexicon/clinical.yaml): one pattern per lab, the value converted to the lab's unit.
    for spec in labs:
        m = next((found for rx in spec.patterns if (found := rx.search(text))), None)
        if m is None:
            continue
        v = num(m.group(1))
        written = m.group(2).lower() if m.lastindex and m.lastindex >= 2 and m.group(2) else ""
        put(spec.id, spec.to_unit(v, written), spec.unit, m.group(0))
    bp = re.search(r"\b(?:BP|blood pressure)\b[^\d]{0,15}(\d{2,3})\s*/\s*(\d{2,3})", text, re.IGNORECASE)
    if bp:
        put("sbp", float(bp.group(1)), "mmHg", bp.group(0))
        put("dbp", float(bp.group(2)), "mmHg", bp.group(0))
    else:
        sbp = re.search(
            r"\b(?:SBP|systolic(?: BP| blood pressure)?)\b[^\d]{0,10}(\d{2,3})", text, re.IGNORECASE
        )
        if sbp:
            put("sbp", float(sbp.group(1)), "mmHg", sbp.group(0))


_LIVER_NAMES = r"(bilirubin|total bilirubin|T\.? ?bili|AST|ALT|SGOT|SGPT|ALP|alk(?:aline)? phos(?:phatase)?|transaminases|aminotransferases|LFTs|liver enzymes)"
_ULN_MULT = re.compile(
    _LIVER_NAMES
    + r"((?:\s*(?:,|and|&|/)\s*(?:AST|ALT|ALP|bilirubin))*)\s*(?:is|are|of|=|was|were|:|at|now|elevated|raised|up|to|>|>=|above|about|around|~|\s)*\s*"
    r"(\d+(?:\.\d+)?|twice|two|three|four|five|six|eight|ten)\s*(?:x|×|times|-fold|fold)?\s*(?:the\s+)?(?:ULN|upper limit(?:s)? of normal|upper limit|normal)",
    re.IGNORECASE,
)
_MULT_WORDS = {
    "twice": 2.0,
    "two": 2.0,
    "three": 3.0,
    "four": 4.0,
    "five": 5.0,
    "six": 6.0,
    "eight": 8.0,
    "ten": 10.0,
}
_ULN_STATED = re.compile(
    _LIVER_NAMES
    + r"\s*(?:is|of|=|was|:|at|now)?\s*(\d+(?:\.\d+)?)\s*(mg/dl|umol/l|u/l|iu/l)?\s*\(\s*(?:ULN|upper limit(?: of normal)?|normal\s*(?:<|<=|up to)|ref(?:erence)?(?: range)?\s*(?:\d+(?:\.\d+)?\s*-\s*)?)\s*[:=]?\s*(\d+(?:\.\d+)?)",
    re.IGNORECASE,
)
_LIVER_NORMAL = re.compile(
    r"\b(?:normal|unremarkable) (?:LFTs|liver (?:function(?: tests)?|tests|enzymes|panel)|bilirubin|transaminases)\b|"
    r"\b(?:LFTs|liver (?:function(?: tests)?|tests|enzymes|panel)|bilirubin|transaminases) (?:are |is |were |was )?(?:normal|within normal limits|WNL|unremarkable)\b",
    re.IGNORECASE,
)


def _liver_key(word: str) -> list[str]:
    w = word.lower().replace(".", "").replace(" ", "")
    if "bili" in w:
        return ["bilirubin"]
    if w in ("ast", "sgot"):
        return ["ast"]
    if w in ("alt", "sgpt"):
        return ["alt"]
    if w.startswith("alk") or w == "alp":
        return ["alp"]
    if w in ("transaminases", "aminotransferases", "liverenzymes"):
        return ["ast", "alt"]
    return []


def read_liver_labs(text: str, out: SafetyFacts) -> None:
    """Liver tests given as multiples of ULN, or with their ULN stated (absolute values come from the lab table, `read_labs`)."""
    for m in _ULN_MULT.finditer(text):
        names = _liver_key(m.group(1)) + [
            k for w in re.findall(r"AST|ALT|ALP|bilirubin", m.group(2) or "", re.I) for k in _liver_key(w)
        ]
        word = m.group(3).lower()
        if word in _MULT_WORDS:
            mult = _MULT_WORDS[word]
        elif re.search(
            r"(?:x|×|times|fold)\s*(?:the\s+)?(?:ULN|upper|normal)", m.group(0)[m.end(3) - m.start(0) :], re.I
        ):
            mult = float(word)
        else:
            continue  # "bilirubin 2 normal" is not a multiple
        if re.search(r"\b(?:ALT|AST)\b", m.group(1)) is None and m.group(1).upper() in ("ALT", "AST"):
            continue
        for name in dict.fromkeys(names):
            out.liver_labs[name] = LabValue(
                name=name, value=None, unit="x ULN", uln_multiple=mult, mention=m.group(0)
            )
    for m in _ULN_STATED.finditer(text):
        for name in _liver_key(m.group(1)):
            value, uln = float(m.group(2)), float(m.group(4))
            if uln <= 0:
                continue
            unit = (m.group(3) or "").lower()
            lab_unit = (
                "mg/dL"
                if name == "bilirubin" and unit != "umol/l"
                else "umol/L"
                if unit == "umol/l"
                else "U/L"
            )
            out.liver_labs[name] = LabValue(
                name=name, value=value if lab_unit != "umol/L" else round(value / 17.1, 3),
                unit="mg/dL" if lab_unit == "umol/L" else lab_unit, uln_multiple=round(value / uln, 2), mention=m.group(0),
            )  # fmt: skip
    if _LIVER_NORMAL.search(text):
        word = _LIVER_NORMAL.search(text).group(0).lower()  # type: ignore[union-attr]
        names = (
            ["bilirubin"]
            if "bilirubin" in word
            else ["ast", "alt"]
            if "transaminases" in word
            else ["bilirubin", "ast", "alt"]
        )
        for name in names:
            out.liver_labs.setdefault(name, LabValue(name=name, value=None, uln_multiple=1.0, mention=word))
        add_note(out, "Liver tests described as normal: read as at most the upper limit of normal.")
