"""Pregnancy (weeks, trimester, term, postpartum) and lactation from one turn, negations respected.

A safety reader: `extract.PatientExtractor.extract_turn` calls `read_pregnancy` with the turn's clauses and the
shared negation scope; `infer` later settles what a male patient's or an older woman's context means.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.patient.facts import (
    NUMW,
    ClauseLike,
    Polarity,
    SafetyFacts,
    add_note,
    count_of,
    trimester_of,
)

_PREG_NEG = re.compile(
    r"\bnot (?:currently |known to be )?pregnant\b|\bnon-?pregnant\b|\bpregnancy (?:test )?(?:is |was |came back )?negative\b|"
    r"\bnegative (?:urine |serum )?(?:pregnancy test|(?:beta-?|b-?)?hcg)\b|\b(?:beta-?|b-?)?hcg (?:is |was )?negative\b|"
    r"\bpregnancy (?:has been |was |is )?(?:ruled out|excluded)\b|\bdenies (?:any )?(?:possibility of )?pregnancy\b|"
    r"\bno (?:chance|possibility) of (?:being )?pregnan\w*",
    re.IGNORECASE,
)
_PREG_PLAN = re.compile(
    r"\bplanning (?:a |her |another )?pregnancy|\btrying to (?:conceive|get pregnant)|\bwants? to (?:become|get) pregnant|"
    r"\bhoping to (?:conceive|become pregnant)",
    re.IGNORECASE,
)
_PREG_PAST = re.compile(
    r"\b(?:previous|prior|past|last|earlier|former|first|second|third|each|every) pregnanc(?:y|ies)|\bpregnancies\b|"
    r"\b(?:was|were|had been|became) pregnant\b[^.;]{0,30}\b(?:ago|in (?:19|20)\d\d|before|previously)|"
    r"\b(?:wife|partner|girlfriend|daughter|sister|mother)(?:'s)? (?:is |was )?(?:currently )?pregnan\w*",
    re.IGNORECASE,
)
_PREG_POS = re.compile(
    r"\bpregnan(?:t|cy)\b|\bgravid\b|\bexpecting (?:a baby|twins)\b|\bantenatal\b|\bantepartum\b|\b(?:primi|multi)gravida\b|"
    r"\bgestation(?:al age)?\b(?! diabet)|\bweeks'? (?:pregnant|gestation)\b|\btrimester\b|\bterm pregnancy\b",
    re.IGNORECASE,
)
_PREG_CUE = re.compile(
    r"pregnan|gestation|gravid|\bG\d+\s*P\d+|trimester|antenatal|obstetric|\bat term\b|pre-?eclampsia|\beclampsia|\bHELLP\b|"
    r"placenta|fetal|foetal|fetus|foetus",
    re.IGNORECASE,
)
_WEEKS_RX = [
    re.compile(
        r"\b(\d{1,2}(?:\.\d)?)(?:\s*\+\s*(\d))?\s*(?:weeks?|wks?|/52)'?\s*(?:pregnant|gestation(?:al age)?|of (?:gestation|pregnancy)|"
        r"GA\b|along|into (?:her|the) pregnancy)",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:GA|gestational age|gestation)(?: of| is|:|=)?\s*(\d{1,2}(?:\.\d)?)(?:\s*\+\s*(\d))?\s*(?:weeks?|wks?|w\b)?",
        re.IGNORECASE,
    ),
    re.compile(r"(?<![\d/.])(\d{1,2})(?:\+(\d))?/40\b"),
    re.compile(r"\b(\d{1,2})\s*w(?:ee)?ks?\s*(?:\+\s*)?(\d)\s*d(?:ays?)?\b", re.IGNORECASE),
]
# "G2P1 at 39 weeks", "she is 30 weeks": bare weeks count only when the turn is about a pregnancy.
_AT_WEEKS = re.compile(
    r"\b(?:at|is|now|currently|about|around|approximately|approx\.?|roughly|~|only|just)\s+(\d{1,2}(?:\.\d)?)(?:\s*\+\s*(\d))?\s*(?:weeks?|wks?)\b"
    r"(?!\s+(?:ago|after|post|postpartum|since|of (?:treatment|therapy|anticoagula\w*)|into))",
    re.IGNORECASE,
)
_TRIMESTER = re.compile(r"\b(first|1st|second|2nd|third|3rd)[- ]trimester\b", re.IGNORECASE)
_TERM = re.compile(r"\b(?:at|full|near)[- ]term\b|\bterm (?:pregnancy|gestation|labou?r)\b", re.IGNORECASE)
_POSTPARTUM = re.compile(
    r"\bpost-?partum\b|\bpuerper\w*|\b(?:recently|just) (?:delivered|gave birth|had (?:a|her) baby)\b|"
    r"\bpost-?natal\b|\bafter (?:delivery|childbirth|giving birth)\b|"
    r"\b(?:delivered|gave birth|had (?:a|her) baby)\s+(?:yesterday|today|last (?:night|week)|this (?:week|morning))",
    re.IGNORECASE,
)
# "3 months after a hip replacement" is not a delivery: after/since/following need a birth word.
_SINCE_DELIVERY = re.compile(
    NUMW + r"\s*(days?|weeks?|wks?|months?)\s*(?:post-?partum|post partum|post-?natal(?:ly)?|post-?delivery|"
    r"(?:after|post|since|following)\s+(?:the\s+)?(?:delivery|childbirth|giving birth|birth|(?:a |her |the )?(?:caesarean|cesarean|"
    r"c-section|section|vaginal delivery|baby)))|"
    r"\b(?:delivered|gave birth|had (?:a|her) baby)\s*" + NUMW + r"\s*(days?|weeks?|wks?|months?) ago",
    re.IGNORECASE,
)
_LACT = re.compile(
    r"\bbreast-?\s?feed(?:s|ing)?\b|\bbreastfed\b|\blactat(?:ing|ion)\b|\bnursing\b(?! (?:home|facility|staff|care|student|assessment))|"
    r"\bexpressing (?:breast )?milk\b",
    re.IGNORECASE,
)
_LACT_STOP = re.compile(
    r"\b(?:stopped|ceased|finished|discontinued|weaned|not|no longer|never)\s+(?:\w+\s+)?(?:breast-?\s?feed\w*|nursing|lactating)|"
    r"\b(?:exclusively )?(?:bottle|formula)[- ]fe(?:e)?d\w*",
    re.IGNORECASE,
)


def _weeks_to_float(m: re.Match[str]) -> float | None:
    w = float(m.group(1))
    d = m.group(2) if m.lastindex and m.lastindex >= 2 else None
    weeks = w + (int(d) / 7 if d else 0)
    return round(weeks, 1) if 2 <= weeks <= 44 else None


def read_pregnancy(text: str, clauses: Sequence[ClauseLike], polarity: Polarity, out: SafetyFacts) -> None:
    """pregnant / gestational weeks / trimester / term / postpartum / lactating, negations respected."""
    # Every stated gestational age; the current one wins over one a past event happened at
    # ("GDM diagnosed at 26 weeks; now 28 weeks").
    found: list[tuple[int, float]] = []
    for rx in _WEEKS_RX:
        for m in rx.finditer(text):
            before = text[max(0, m.start() - 25) : m.start()]
            if rx.pattern.startswith("(?<![\\d/.])") and re.search(
                r"\b(?:BP|blood pressure|mmHg)\b", before, re.I
            ):
                continue  # "BP 90/40" is not 40 weeks
            w = _weeks_to_float(m)
            if w is not None:
                found.append((m.start(), w))
    if _PREG_CUE.search(text):
        for m in _AT_WEEKS.finditer(text):
            w = _weeks_to_float(m)
            if w is not None and not any(abs(p - m.start()) < 12 for p, _ in found):
                found.append((m.start(), w))
    weeks: float | None = None
    if found:
        found.sort()
        current = [
            (p, w)
            for p, w in found
            if re.search(r"\b(?:now|currently|today|presently|is)\s*$", text[max(0, p - 12) : p] + " ", re.I)
            or re.search(r"\b(?:now|currently|today)\b", text[p : p + 30], re.I)
        ]
        past = [
            (p, w) for p, w in found
            if re.search(r"\b(?:diagnosed|detected|found|booked|booking|scan(?:ned)?|started|since|from|until|when|was)\b[^.;]{0,15}$", text[max(0, p - 25) : p], re.I)
        ]  # fmt: skip
        pool = current or [f for f in found if f not in past] or found
        weeks = pool[-1][1] if current else pool[0][1]
        if len({w for _, w in found}) > 1:
            add_note(out, f"Several gestational ages stated; {weeks:g} weeks read as the current one.")
    tri: int | None = None
    tm = _TRIMESTER.search(text)
    if tm:
        tri = {"f": 1, "1": 1, "s": 2, "2": 2, "t": 3, "3": 3}[tm.group(1)[0].lower()]
    term = _TERM.search(text)

    negative = _PREG_NEG.search(text)
    planning = _PREG_PLAN.search(text)
    positive: str | None = None
    for cl in clauses:
        for m in _PREG_POS.finditer(cl.text):
            if _PREG_PAST.search(cl.text[max(0, m.start() - 30) : m.end() + 40]):
                continue
            if _PREG_NEG.search(cl.text[max(0, m.start() - 40) : m.end() + 40]) or _PREG_PLAN.search(
                cl.text[max(0, m.start() - 40) : m.end() + 5]
            ):
                continue
            pol = polarity(cl.text, m.start(), m.end())
            if pol == "present" or positive is None:
                positive = pol
            if pol == "present":
                break
    pp_days: float | None = None
    since = _SINCE_DELIVERY.search(text)
    if since:
        num, unit = (since.group(1), since.group(2)) if since.group(1) else (since.group(3), since.group(4))
        pp_days = count_of(num) * (
            1 if unit.lower().startswith("d") else 7 if unit.lower().startswith("w") else 30.4
        )
    postpartum = bool(_POSTPARTUM.search(text)) or since is not None

    if negative:
        out.pregnant = False
        if weeks is not None or positive == "present":
            add_note(
                out,
                "Conflicting statements about pregnancy in one message; read as not pregnant — please confirm.",
            )
        weeks, tri, term = None, None, None
    elif planning:
        out.pregnant = False
        add_note(out, "Planning a pregnancy (not pregnant now): drugs harmful in pregnancy need review.")
    elif postpartum and weeks is None and tri is None and not term:
        out.pregnant = False
        if pp_days is not None and pp_days > 42:
            out.postpartum = False
            add_note(
                out, f"Delivered about {round(pp_days / 7)} weeks ago: beyond the 6-week postpartum period."
            )
        else:
            out.postpartum = True
    elif weeks is not None or tri is not None or term or positive == "present":
        out.pregnant = True
        out.postpartum = False if not postpartum else None
    elif positive == "possible":
        add_note(
            out,
            "Pregnancy is possible but not confirmed: check before prescribing drugs harmful in pregnancy.",
        )
    if out.pregnant:
        if weeks is not None:
            out.gestational_weeks = weeks
            out.trimester = trimester_of(weeks)
            if tri is not None and tri != out.trimester:
                add_note(
                    out,
                    f"Stated trimester {tri} does not match {weeks:g} weeks; weeks used — please confirm.",
                )
        elif tri is not None:
            out.trimester = tri
        elif term:
            out.trimester = 3
            add_note(out, "At term (37 weeks or more); exact gestational weeks not stated.")
    # Lactation: an explicit stop or formula feeding beats a bare mention.
    if _LACT_STOP.search(text):
        out.lactating = False
    else:
        for cl in clauses:
            m = _LACT.search(cl.text)
            if m:
                pol = polarity(cl.text, m.start(), m.end())
                out.lactating = {"present": True, "absent": False}.get(pol)
                if pol == "possible":
                    add_note(out, "Breastfeeding status uncertain.")
                break
