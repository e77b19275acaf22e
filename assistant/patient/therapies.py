"""Therapies named in a clause and how they stand: given, progressed on, stopped, ongoing or proposed.

Part of the per-turn reading (`extract.PatientExtractor.extract_turn` calls `TherapyMatcher.read` per clause):
therapy names come from the therapy lexicon (corpus/lexicon/therapies.yaml); the tables below are grammar — the
words around a name that say what happened with it.
"""

from __future__ import annotations

import itertools
import re

from assistant.knowledge import Lexicon
from assistant.models import TherapyExposure
from assistant.patient.allergies import allergy_kind
from assistant.patient.care import declined_span
from assistant.patient.clauses import Clause
from assistant.patient.facts import TurnFacts
from ingest.text import NameMatcher

_STATUS_CUES: list[tuple[str, re.Pattern[str]]] = [
    (s, re.compile(p, re.IGNORECASE))
    for s, p in [
        (
            "progressed",
            r"\b(?:progress(?:ed|ing|ion)|(?:biochemical|radiographic|clinical|psa) progression|rising (?:psa|prostate[- ]specific antigen)(?: \(psa\))?(?: levels?)?|"
            r"psa (?:is |was |has been |kept )?(?:rising|rose|risen|increas\w*|climb\w*|went up|going up|doubl\w*|up)|rise in (?:psa|prostate[- ]specific antigen)(?: \(psa\))?|"
            r"fail(?:ed|ing|ure)(?: of)?|refractory|resistan(?:t|ce)|relapsed|no (?:psa )?response|did not respond|not respond\w*|worsen\w*|grew|growing)"
            r"(?:[^.;?]{0,25}?\b(?:on|during|while on|despite|after|following|to|through|with|of|under|in spite of)\b)?",
        ),
        ("progressed", r"\bdespite\b"),
        (
            "intolerant",
            r"\b(?:intoleran(?:t|ce)(?: (?:to|of))?|could ?n[o']t tolerate|did not tolerate|unable to tolerate|toxicity (?:from|with|on)|allergic reaction to)\b",
        ),
        (
            "completed",
            r"\b(?:completed|finished|after (?:\d+|four|five|six|eight|ten) cycles of|(?:\d+|six) cycles of|course of)\b",
        ),
        ("stopped", r"\b(?:stopped|discontinued|came off|off)\b"),
        # "progressed on docetaxel and then on abiraterone": the earlier cue carries on.
        (
            "continue",
            r"\b(?:and then|then|and later|later|subsequently|and subsequently|followed by)(?: on)?\b",
        ),
        (
            "ongoing",
            r"\b(?:(?:just |recently |newly )?started(?: on)?|(?:has been|was) started on|currently (?:on|taking|receiving|getting)|still (?:on|taking|receiving)|remains on|continu(?:es|ing|ed) (?:on )?|"
            r"is (?:now )?on|are on|now on|taking|takes|receiving|maintained on|on (?:long[- ]term|chronic|maintenance)|on|and now|"
            r"(?:\d+|one|two|three|four|six|nine|twelve) (?:days?|weeks?|months?|years?) into)\b",
        ),
        (
            "planned",
            r"\b(?:needs?|requires?|needing|due to start|going to start|will need|asks? about|asking about|thinking about|interested in|wants?|requests?|enquir\w*|inquir\w*|prescribed|newly prescribed|about to start|to start|will start|consider\w*|plan(?:ned|ning)?(?: to (?:start|give|use|add))?|start(?:ing)?|initiat\w*|add(?:ing)?|switch(?:ing)? to|"
            r"candidate for|eligible for|offer(?:ing)?|recommend\w*|give|use|try|re-?challenge(?: with)?|re-?treat\w*(?: with)?|"
            r"what about|how about|role (?:of|for)|option of|should (?:we|i|he|she) (?:give|start|use|add|try|get)|can (?:he|she|we|they) (?:get|have|receive|start|use)|"
            r"is|would|could|next)\b",
        ),
        (
            "received",
            r"\b(?:prior|previous(?:ly)?|history of|treated (?:for [^.;,]{1,30}? )?with|treatments? with|received|had|has had|s/p|status post|post[- ]|after|following|underwent|"
            r"exposed to|pre-?treated with|given|was on|were on|used to take|then)\b",
        ),
    ]
]
_POST_STATUS: list[tuple[str, re.Pattern[str]]] = [
    (s, re.compile(p, re.IGNORECASE))
    for s, p in [
        (
            "intolerant",
            r"^[^.;]{0,40}?\b(?:stopped|discontinued|held|withdrawn|ceased|switched)\b[^.;]{0,25}\b(?:due to|because of|for|after)\b[^.;]{0,20}"
            r"(?:toxicit|side[- ]effects?|adverse|intoleran|neuropath|fatigue|rash|neutropeni|hepatotox|liver|diarrh|bleed|allerg|pneumonitis|seizure|fall)",
        ),
        ("intolerant", r"^\W{0,3}(?:[-\w]+ ){0,2}(?:toxicity|intolerance|induced)"),
        (
            "intolerant",
            r"^[^.;]{0,40}?\b(?:due to|because of|owing to)\b[^.;]{0,20}(?:toxicit|side[- ]effects?|adverse|intoleran|neuropath|fatigue|rash|neutropeni|hepatotox|diarrh|pneumonitis|seizure|falls?\b)",
        ),
        (
            "progressed",
            r"^[^.;]{0,40}?\b(?:failed|stopped working|no longer work\w*|progress\w*|with (?:rising|increasing) psa|and (?:the )?psa (?:is |has |was )?(?:rising|rose|risen|up|climbing|increas\w*))",
        ),
        ("completed", r"^[^.;]{0,30}?\b(?:completed|finished|x ?\d+ cycles|for \d+ cycles)\b"),
        ("stopped", r"^[^.;]{0,30}?\b(?:stopped|discontinued|held)\b"),
        ("ongoing", r"^[^.;]{0,20}?\b(?:ongoing|currently|continues|continuing|at present)\b"),
        # "ADT started two weeks ago": begun and not said to have ended.
        (
            "ongoing",
            r"^\W{0,3}(?:was |were |has been |had been )?(?:started|commenced|begun|initiated)\b[^.;]{0,30}\b(?:ago|last (?:week|month)|yesterday|recently)\b",
        ),
        # "ADT only so far": history, not a plan.
        ("received", r"^[^.;]{0,12}?\b(?:so far|to date|until now|thus far)\b"),
        # "Docetaxel given for mHSPC two years ago": a past-tense participle after the drug is history, not a plan.
        (
            "received",
            r"^\W{0,3}(?:was |were |had been )?(?:given|received|administered|used)\b[^.;]{0,40}"
            r"\b(?:ago|in (?:19|20)\d\d|previously|earlier|before|last (?:year|month)|for (?:m?HSPC|mCSPC|nmCRPC|BCR|CSPC))\b",
        ),
    ]
]
_SETTING_NEAR = re.compile(
    r"^[^.;]{0,30}?\b(?:for|in|during|as part of)\s+(?:(?:the|his|her|de novo|high[- ]volume|low[- ]volume)\s+)*"
    r"(m?HSPC|mCSPC|CSPC|nmCRPC|mCRPC|BCR|(?:metastatic )?(?:hormone|castration|castrate)[- ]sensitive)",
    re.IGNORECASE,
)
SENSITIVE_SETTINGS = {"mHSPC", "nmHSPC", "BCR", "localized"}


def _setting_near(after: str) -> str | None:
    """The disease state a therapy was given in, when the words right after its name say so."""
    m = _SETTING_NEAR.search(after)
    if not m:
        return None
    word = m.group(1).lower()
    if "sensitive" in word or word in ("mhspc", "hspc", "mcspc", "cspc"):
        return "mHSPC"
    return {"nmcrpc": "nmCRPC", "mcrpc": "mCRPC", "bcr": "BCR"}[word]


# Words before a disease-state term that place it in the past ("docetaxel for mHSPC", "progressed from mHSPC").
_LIST_GAP = re.compile(
    r"^(?:[\s,/&+().-]|\([^)]{0,40}\)|\b(?:and|or|then|plus|with|chemotherapy|therapy|treatments?|tablets|injections?|"
    r"cycles?|combination|regimen|and then|then|later|subsequently|on|\d+(?:[.,]\d+)?|"
    # a dose between two drugs keeps the list: "on metformin 500 mg twice daily and maximum-dose lisinopril"
    r"mg|mcg|g|units?|IU|mg/kg|(?:once|twice|three times|four times) (?:a )?(?:day|daily|weekly)|daily|weekly|monthly|nightly|"
    r"bd|bid|tds|tid|qds|qid|od|qd|prn|maximum|max|maximal|full|low|high|standard|dose|doses|maximum-dose|max-dose|"
    r"maximally tolerated|tolerated|oral|IV|SC|subcutaneous|extended-release|ER|XR)\b)*$",
    re.IGNORECASE,
)
_STATUS_RANK = {
    "progressed": 0,
    "intolerant": 1,
    "completed": 2,
    "stopped": 3,
    "ongoing": 4,
    "received": 5,
    "planned": 6,
}

_THERAPY_NEG = re.compile(
    r"\b(?:no|not|never|without|nor|neither)\b(?:\s+(?:prior|previous|previously|yet|any|further|other|had|received|"
    r"given|treated with|been|exposure to|an?|the))*\s+(?:[-\w]+(?:\s*,\s*|\s+or\s+|\s+and\s+|\s+nor\s+)){0,3}$",
    re.IGNORECASE,
)
# Antimicrobial resistance rates name a drug without giving it ("E. coli resistance to TMP-SMX is 30%").
_RESISTANCE_BEFORE = re.compile(
    r"\b(?:resistan(?:ce|t)|susceptib\w*|sensitiv\w*)\s+(?:rates?\s+)?(?:to|for|of)\s+(?:[\w-]+\s+){0,1}$",
    re.IGNORECASE,
)
_RESISTANCE_AFTER = re.compile(
    r"^[- ](?:resistan(?:ce|t)|susceptib\w*|sensitiv\w*|non-?susceptib\w*)\b", re.IGNORECASE
)
# Radiotherapy aimed at a metastasis or given for symptoms is palliative, not radical treatment of the prostate.
_PALLIATIVE_BEFORE = re.compile(
    r"\b(?:palliative|single[- ]fraction|symptomatic|analgesic|pain[- ]relieving|emergency)\s+(?:[\w-]+\s+){0,1}$",
    re.IGNORECASE,
)
_PALLIATIVE_AFTER = re.compile(
    r"^\s*(?:\([^)]{0,30}\)\s*)?(?:\d+\s*Gy\s*(?:in|x)\s*(?:1|one|a single)\s*(?:fraction|#)|(?:for|to|of)\s+(?:an?\s+|the\s+|his\s+|her\s+)?"
    r"(?:(?:painful|symptomatic|solitary|single|spinal|vertebral|bony|bone|oligometastatic|\w+)\s+){0,2}"
    r"(?:ribs?|spine|vertebra\w*|femur|femoral|humer\w*|hip|skull|sternum|scapula|bones?|bony|osseous|(?:bone |bony )?met(?:s|astas[ie]s|astatic)?\b|"
    r"lesions?|deposits?|oligometasta\w*|(?:[CTLS]\d{1,2})\b|cord compression|brain|liver|lung|nodes?)|for (?:bone )?pain|for cord compression)",
    re.IGNORECASE,
)


def _palliative_rt(tid: str, text: str, start: int, end: int, lexicon: Lexicon) -> str | None:
    """Radiotherapy aimed at a metastasis (or called palliative) is recorded as palliative_radiotherapy.

    "palliative RT to a rib", "SBRT to a painful bone met": not radical treatment of the prostate, so it must not
    count as prior radiotherapy of the primary (rules read `received: radiation_therapy` that way). "Radiotherapy to
    the prostate" / "to the prostate bed" / "to the pelvis" stays radiotherapy. Returns the id to record.
    """
    if tid != "radiotherapy":
        return tid
    after = text[end : end + 80]
    if re.match(
        r"^[- ]?(?:oncolog\w*|exposure|protection|safety|physic\w*|department|team)\b", after, re.IGNORECASE
    ):
        return None  # "seen by radiation oncology": a specialty, not a treatment
    if re.match(
        r"^\s*(?:\([^)]{0,30}\)\s*)?(?:to|of)\s+(?:the\s+)?(?:prostate|prostatic|pelvi\w*|primary)",
        after,
        re.IGNORECASE,
    ):
        return tid
    if _PALLIATIVE_BEFORE.search(text[max(0, start - 40) : start]) or _PALLIATIVE_AFTER.match(after):
        # Metastasis-directed RT (SBRT to a node) is recorded the same way: it did not treat the primary.
        return "palliative_radiotherapy" if "palliative_radiotherapy" in lexicon.entries else None
    return tid


class TherapyMatcher:
    """Therapy names of one lexicon compiled into two patterns; reads the therapies of a clause."""

    def __init__(self, lexicon: Lexicon, anticancer_classes: frozenset[str] = frozenset()) -> None:
        self.lexicon = lexicon
        self.anticancer_classes = anticancer_classes
        exact_case: list[str] = []
        for name, tid in lexicon.by_name.items():
            original = next((n for n in [tid, *lexicon.entries[tid].names] if n.lower() == name), name)
            # Short all-caps abbreviations (ADT, RP, SRT, ASA) only count when written in capitals.
            if len(original) <= 4 and original.upper() == original and any(c.isalpha() for c in original):
                exact_case.append(original)
        # Hyphens do not join: patients write "docetaxel-naive", "post-docetaxel".
        self._names = NameMatcher(lexicon.by_name, exact_case=exact_case, hyphen_joins=False)

    def mentions(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, therapy id) of every therapy name in `text`; a longer name wins over one inside it."""
        return [(s, e, tid) for tid, s, e in self._names.find(text)]

    def status(self, clause: Clause, start: int, end: int, prev_end: int) -> str:
        """How the therapy named at clause.text[start:end] stands, from the cue words after and before it."""
        text = clause.text
        after = text[end:]
        # Skip a parenthetical synonym: "Pluvicto (Lu-177) was stopped …".
        after = re.sub(r"^\s*\([^)]{0,40}\)", "", after)
        for status, rx in _POST_STATUS:
            if rx.search(after):
                # A post cue belongs to this mention only when no other therapy sits in between.
                cut = after[: rx.search(after).end()]
                if not self.mentions(cut):
                    return status
        before = text[max(0, start - 90) : start]
        cues: list[tuple[int, int, str]] = []
        for status, rx in _STATUS_CUES:
            for m in rx.finditer(before):
                cues.append((m.start(), m.end(), status))
        # Longest cue wins where cues overlap ("progressed on" beats "on").
        cues.sort(key=lambda c: (c[0], -(c[1] - c[0])))
        kept: list[tuple[int, int, str]] = []
        for c in cues:
            if kept and c[0] < kept[-1][1]:
                continue
            kept.append(c)
        while len(kept) > 1 and kept[-1][2] == "continue":
            kept.pop()
        if kept and kept[-1][2] == "continue":
            kept = []
        if kept and self._cue_reaches(before[kept[-1][1] :]):
            status = kept[-1][2]
            if status == "planned" and not clause.is_question and kept[-1][0] < len(before) - 60:
                status = "received"
            return status
        if clause.is_question or (clause.turn_question and clause.start + start < 25):
            # "Apixaban for AF in an 82-year-old: which dose?" — the drug the question opens with is proposed.
            return "planned"
        return "received"

    def _cue_reaches(self, gap: str) -> bool:
        """A cue covers a therapy unless another therapy stands between them outside a plain list.

        "after docetaxel, Zytiga (abiraterone) and orchiectomy" — one cue for all three;
        "after enzalutamide and docetaxel, MSS, TMB 3, pembrolizumab?" — the cue stops at "MSS".
        """
        inner = self.mentions(gap)
        if not inner:
            return True
        pieces = [gap[a[1] : b[0]] for a, b in itertools.pairwise(inner)] + [gap[inner[-1][1] :]]
        return all(_LIST_GAP.match(p) for p in pieces)

    def read(self, cl: Clause, facts: TurnFacts) -> None:
        """Every therapy named in the clause, with its status, into `facts.therapies` (the strongest reading wins)."""
        mentions = self.mentions(cl.text)
        prev_end = 0
        for s, e, tid in mentions:
            kind = allergy_kind(cl.text, s, e)
            if kind == "reaction" and set(self.lexicon.classes_of(tid)) & self.anticancer_classes:
                # "severe rash on apalutamide": the allergy is recorded, and the line still counts as given.
                facts.therapies.setdefault(
                    (tid, False),
                    TherapyExposure(
                        therapy=tid,
                        classes=self.lexicon.classes_of(tid),
                        status="intolerant",
                        mention=cl.text[s:e],
                    ),
                )
                continue
            if kind is not None or declined_span(cl.text, s):
                continue  # "allergic to penicillin", "anaphylaxis after amoxicillin", "refuses docetaxel"
            if "antibiotic" in self.lexicon.classes_of(tid) and (
                _RESISTANCE_BEFORE.search(cl.text[max(0, s - 40) : s])
                or _RESISTANCE_AFTER.match(cl.text[e : e + 25])
            ):
                continue  # "local resistance to TMP-SMX is 30%": a resistance rate, not a treatment given
            tid = _palliative_rt(tid, cl.text, s, e, self.lexicon)
            if tid is None:
                continue
            if _THERAPY_NEG.search(cl.text[max(0, s - 45) : s]) or re.match(
                r"^[- ](?:naive|naïve|free)\b", cl.text[e : e + 8], re.IGNORECASE
            ):
                continue  # "no prior ARPI or docetaxel", "docetaxel-naive": not given
            status = self.status(cl, s, e, prev_end)
            prev_end = e
            planned = status == "planned"
            key = (tid, planned)
            still = status == "progressed" and bool(
                re.search(
                    r"(?:progressing|rising|climbing|increasing|going up)\b[^.;]{0,40}\b(?:on|while on|despite)\s*$|"
                    r"\b(?:currently|still|now) on\b[^.;]{0,30}$|\bwhile (?:on|taking)\s*$",
                    cl.text[max(0, s - 60) : s],
                    re.IGNORECASE,
                )
            )
            exp = TherapyExposure(
                therapy=tid,
                classes=self.lexicon.classes_of(tid),
                status=status,
                setting=_setting_near(cl.text[e : e + 60]),
                mention=cl.text[s:e],
                still_taking=still,
            )
            old = facts.therapies.get(key)
            if old is None or _STATUS_RANK[status] < _STATUS_RANK[old.status]:
                facts.therapies[key] = exp
