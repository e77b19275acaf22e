"""Where the patient stands in their care: the phase of VTE treatment, the options they decline or now accept,
and local antimicrobial resistance rates stated for a drug.

Safety readers, called by `extract.PatientExtractor.extract_turn`; `declined_span` also tells the therapy reader
when a drug is refused rather than given.
"""

from __future__ import annotations

import re

from assistant.knowledge import Lexicon
from assistant.patient.allergies import ALLERGEN_ALIASES, class_lookup, class_word_regex
from assistant.patient.facts import (
    NUMW,
    Mentions,
    SafetyFacts,
    add_note,
    count_of,
)

_EXTENDED = re.compile(
    r"\bextended[- ](?:phase|treatment|therapy|anticoagulation|duration|prophylaxis|prevention)\b|\bextend(?:ing|ed)?\s+(?:the\s+)?(?:anticoagula\w*|treatment|therapy|it|beyond)\b|"
    r"\bcontinu(?:e|ing) (?:anticoagula\w*|treatment|therapy|it|\w+ )?(?:beyond|long[- ]term|indefinitely|after)\b|\bbeyond (?:3|three|6|six|12|twelve) months\b|"
    r"\b(?:after|completed?|finished) (?:3|three|6|six|12|twelve) months\b|\b(?:3|three|6|six|12|twelve) months into\b|"
    r"\blong[- ]term (?:anticoagula\w*|treatment|therapy|secondary prevention)|\bindefinite(?:ly)? (?:anticoagula\w*|treatment|therapy|duration)|"
    r"\banticoagula\w* indefinitely\b|\bsecondary prevention\b|\bshould (?:we|I|he|she) (?:continue|extend|stop)\b|"
    r"\breduced[- ]dose (?:apixaban|rivaroxaban|DOAC)\b|\bmaintenance (?:phase|dose)\b",
    re.I,
)
_INITIAL = re.compile(
    r"\b(?:newly|just|recently) diagnosed\b|\bnew(?:ly)? (?:diagnosed )?(?:DVT|PE|VTE|clot|pulmonary embol\w*|deep vein)|"
    r"\bacute (?:DVT|PE|VTE|pulmonary embol\w*|deep vein|proximal DVT|clot)|\bstart(?:ing)? (?:treatment|anticoagula\w*|an anticoagulant)\b|"
    r"\binitial (?:treatment|phase|therapy|management)\b|\bdiagnosed (?:today|yesterday|this (?:week|morning))\b|"
    r"\bpresents? with (?:an? )?(?:DVT|PE|pulmonary embol\w*|swollen)|\bloading dose\b|\bfirst (?:week|7 days|21 days)\b",
    re.I,
)
_DURATION = re.compile(
    NUMW
    + r"\s*(weeks?|months?|years?)\s*(?:ago|into|of (?:treatment|therapy|anticoagula\w*|\w+ therapy)|on \w+)",
    re.I,
)


def read_care_phase(text: str, out: SafetyFacts) -> None:
    ext, ini = _EXTENDED.search(text), _INITIAL.search(text)
    dur = _DURATION.search(text)
    months: float | None = None
    if dur:
        v, unit = count_of(dur.group(1)), dur.group(2).lower()
        months = v / 4.345 if unit.startswith("w") else v * 12 if unit.startswith("y") else float(v)
    if ext:
        out.care_phase = "extended"
    elif months is not None and months >= 3:
        out.care_phase = "extended"
        add_note(
            out,
            f"Treatment phase read as extended ({dur.group(0) if dur else ''}: past the initial 3-6 months).",
        )
    elif ini or (months is not None and months < 3):
        out.care_phase = "initial"


# ------------------------------------------------------------------ declined options
_DECLINE = re.compile(
    r"\b(?:declin(?:es|ed|ing)|refus(?:es|ed|ing)|does(?: not|n't) want|did(?: not|n't) want|do(?: not|n't) want|unwilling to (?:have|take|receive|consider|start|accept|undergo)|"
    r"not willing to (?:have|take|receive|consider|start|accept|undergo)|wants? to avoid|would (?:like|prefer) to avoid|prefers? to avoid|averse to|opposed to|"
    r"reluctant to (?:have|take|start|receive)|won'?t (?:have|take|consider|accept)|will not (?:have|take|consider|accept)|prefers? not to (?:have|take|receive|start|undergo)|"
    r"not interested in|against)\b\s*",
    re.I,
)
_ACCEPT = re.compile(
    r"\b(?:now )?(?:agrees? to|accepts?|(?:is |now )?willing to (?:have|take|receive|consider|start|try)|(?:now )?wants? to (?:start|have|try)|changed (?:his|her|their) mind about)\b\s*",
    re.I,
)
# Plain words for classes of treatment (targets are lexicon class tokens where the lexicon has them).
_TREATMENT_WORDS = {
    "chemo": "chemotherapy",
    "chemotherapy": "chemotherapy",
    "radiation": "radiation_therapy",
    "surgery": "surgery",
}
_ROUTE_WORDS = re.compile(
    r"\b(?:injections?|injectables?|IV|intravenous|infusions?|needles?|oral|tablets?|pills?|hospital admission)\b",
    re.I,
)


def read_declined(text: str, lexicon: Lexicon, mentions: Mentions, out: SafetyFacts) -> None:
    """Options the patient refuses, as lexicon ids/classes; unmappable words (routes) stay in notes."""
    class_rx = class_word_regex(lexicon)
    classes = class_lookup(lexicon)
    for rx, bucket in ((_DECLINE, out.declined), (_ACCEPT, out.accepted)):
        for m in rx.finditer(text):
            if (
                rx is _DECLINE
                and m.group(0).lower().startswith("against")
                and not re.search(
                    r"\b(?:is|are|was|patient|he|she)\s+$", text[max(0, m.start() - 12) : m.start()], re.I
                )
            ):
                continue
            tail = text[m.end() :]
            stop = re.search(
                r"[.;?!]|\b(?:but|because|as|since|and (?:is|has|wants|prefers|would)|however)\b", tail, re.I
            )
            seg = tail[: stop.start() if stop else min(len(tail), 80)]
            got: list[str] = []
            for _s, _e, tid in mentions(seg):
                got.append(tid)
            if class_rx:
                for cm in class_rx.finditer(seg):
                    w = (
                        cm.group(0).lower().rstrip("s")
                        if cm.group(0).lower().rstrip("s") in classes
                        else cm.group(0).lower()
                    )
                    c = classes.get(w) or ALLERGEN_ALIASES.get(w)
                    if c and c not in got:
                        got.append(c)
            for w, c in _TREATMENT_WORDS.items():
                if (
                    re.search(rf"\b{w}\b", seg, re.I)
                    and (c in lexicon.class_members or c in lexicon.entries)
                    and c not in got
                ):
                    got.append(c)
            for g in got:
                if g not in bucket:
                    bucket.append(g)
            route = _ROUTE_WORDS.search(seg)
            if rx is _DECLINE and (route or not got) and seg.strip():
                add_note(
                    out,
                    f"Patient declines: {seg.strip()[:60]}"
                    + ("" if got else " (not mapped to a therapy)")
                    + ".",
                )
    pref = re.search(
        r"\bprefers? (?:an? )?(oral|tablets?|pills?|injections?|injectable|once[- ]daily|IV|home)\b[^.;]{0,30}",
        text,
        re.I,
    )
    if pref:
        add_note(out, f"Patient preference: {pref.group(0).strip()}.")


def declined_span(text: str, start: int) -> bool:
    """Is the therapy named at text[start:] the object of a refusal ('refuses docetaxel')?"""
    before = text[max(0, start - 60) : start]
    verbs = list(_DECLINE.finditer(before))
    if not verbs:
        return False
    gap = before[verbs[-1].end() :]
    return not re.search(r"[.;?!]|\b(?:but|because|and (?:is|has|wants|prefers))\b", gap, re.I)


# "Local E. coli resistance to TMP-SMX is 30%", "TMP-SMX resistance of 25 %", "30% resistance to levofloxacin".
_RATE = r"(\d{1,3}(?:\.\d+)?)\s?%"
_RES_AFTER = re.compile(
    r"^[\s-]*(?:resistance|resistant)\b[^.;\d]{0,30}?(?:is|of|at|=|:|rate|around|about|~)?\s*" + _RATE, re.I
)
_RES_BEFORE = re.compile(
    r"(?:resistance|resistant)(?:\s+rates?)?\s+(?:to|for|of)\s+(?:[\w-]+\s+){0,1}$", re.I
)
_RES_RATE_NEXT = re.compile(r"^[^.;\d]{0,25}?(?:is|of|at|=|:|around|about|~)?\s*" + _RATE, re.I)
_RES_RATE_PREV = re.compile(
    _RATE + r"\s*(?:local\s+)?(?:[\w.]+\s+)?(?:resistance|resistant)\s+(?:rates?\s+)?(?:to|for|of)\s+$", re.I
)


def read_resistance(text: str, mentions: Mentions, out: SafetyFacts) -> None:
    """Local resistance rates stated for a drug (IDSA thresholds decide empirical choices)."""
    for start, end, tid in mentions(text):
        before, after = text[max(0, start - 60) : start], text[end : end + 60]
        m = _RES_AFTER.match(after)
        if m is None and _RES_BEFORE.search(before):
            m = _RES_RATE_NEXT.match(after) or _RES_RATE_PREV.search(before)
        if m is None:
            m = _RES_RATE_PREV.search(before)
        if m is not None:
            out.resistance[tid] = float(m.group(1))
            out.notes.append(f"Local resistance to {tid.replace('_', ' ')} stated as {m.group(1)}%.")
