"""Deterministic patient-context extraction from a clinician's question and earlier turns.

Lexicons and patterns only (no model): therapy names come from corpus/lexicon/therapies.yaml, condition
ids and their patterns from corpus/lexicon/clinical.yaml, the grammar from the tables below; the facts that
decide drug safety (pregnancy, allergies, diabetes type, liver tests, infection site …) are read by
`assistant/patient_facts.py`. Each user turn is read on its own, then merged in order;
a later statement replaces an earlier one and the replacement is recorded in `changes` so the UI
can show it ("liver metastases: absent → present, turn 2").

Negation and uncertainty are handled per clause (NegEx-style): a trigger ("no", "without",
"negative for", "possible", "?") covers the next few words up to a scope breaker ("but", a comma
before a new finding …). An optional LLM extractor may add facts the patterns missed; it never
overrides a fact the patterns found (a disagreement becomes a note).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from assistant import patient_facts as pf
from assistant.knowledge import Lexicon, load_lexicon
from assistant.models import Biomarker, FactChange, LabValue, PatientContext, TherapyExposure
from assistant.oncology.context import with_tumour
from assistant.oncology.vocab import load_vocab as load_oncology_vocab
from assistant.patient_facts import SafetyFacts

log = logging.getLogger(__name__)

# ------------------------------------------------------------------ vocabularies
# Classes of anticancer or procedural therapies; everything else taken now counts as a "medication".
_ONCOLOGY_CLASSES = {
    "ADT", "GnRH_agonist", "GnRH_antagonist", "surgical_castration", "first_gen_antiandrogen", "ARPI",
    "CYP17_inhibitor", "AR_inhibitor", "taxane", "chemotherapy", "platinum", "PARPi", "PSMA_radioligand",
    "radiopharmaceutical", "bone_targeted_radionuclide", "immunotherapy", "cell_therapy", "PD1_inhibitor",
    "checkpoint_inhibitor", "radiotherapy", "radiation_therapy", "palliative_radiation", "surgery",
}  # fmt: skip
# Prior systemic lines whose unstated outcome is read as progression once the disease is castration-resistant.
_LINE_CLASSES = {
    "ARPI",
    "taxane",
    "PARPi",
    "PSMA_radioligand",
    "platinum",
    "first_gen_antiandrogen",
    "immunotherapy",
}

_GENE_RE = re.compile(
    r"(?<![\w-])(BRCA1/2|BRCA ?1|BRCA ?2|BRCA|ATM|ATR|BARD1|BRIP1|CDK12|CHEK1|CHEK2|FANCA|FANCD2|FANCL|PALB2|RAD51B|RAD51C|"
    r"RAD51D|RAD54L|RAD51|NBN|MRE11A?|RAD50|PPP2R2A|MLH1|MSH2|MSH6|PMS2|EPCAM|HOXB13|TP53|PTEN|RB1|AR-V7|SPOP|HRR|HRD|"
    r"MSI[- ]?H(?:igh)?|MSI|microsatellite[- ]instab\w*(?:[- ]high)?|microsatellite[- ]unstable|dMMR|MMR[- ]deficien\w*|"
    r"MSS|microsatellite[- ]stable|mismatch[- ]repair[- ]deficien\w*|mismatch repair|TMB[- ]?H(?:igh)?|TMB|tumou?r mutational burden|PSMA[- ]PET|PSMA scan|"
    r"PSMA[- ](?:avid|positive|negative|expression|uptake)|PSMA\+|FDG[- ]PET)(?![\w])",
    re.IGNORECASE,
)
_RESULT_WORDS = [
    ("vus", r"\bVUS\b|variant of (?:uncertain|unknown) significance|uncertain significance"),
    ("likely_pathogenic", r"likely pathogenic|likely deleterious"),
    ("negative", r"\bnegative\b|wild[- ]?type|\bWT\b|not detected|no (?:pathogenic |deleterious |actionable )?(?:mutations?|variants?|alterations?)|"
     r"tested negative|\bnormal\b|\bMSS\b|microsatellite stable|\bpMMR\b|proficient|\blow\b|non[- ]?avid|absent"),
    ("pathogenic", r"pathogenic|deleterious|mutat\w*|alteration|variant|carrier|\bpositive\b|\bdeficien|\bhigh\b|detected|loss|"
     r"\bavid\b|\bH\b|\+|\bfound\b|harbou?rs?"),
]  # fmt: skip

_SITES: list[tuple[str, str]] = [
    (
        "bone",
        r"bone[- ]only|bone[- ](?:mets?\b|metastas[ie]s|metastatic|lesions?|disease|involvement|predominant)|osseous|skeletal (?:mets|metastas[ie]s)|bony (?:mets|metastas[ie]s|lesions?)|(?:spine|spinal|vertebral|rib|pelvic) (?:mets|metastas[ie]s|lesions?)|metastases? (?:to|in) (?:the )?bones?|sclerotic lesions?",
    ),
    (
        "lymph_node",
        r"(?:lymph )?nod(?:al|es?) (?:mets|metastas[ie]s|disease|involvement)|lymph nodes?|lymphadenopathy|adenopathy|nodal|\bLN\b|(?:retroperitoneal|pelvic|para-?aortic|iliac|obturator|inguinal|mediastinal|supraclavicular) (?:lymph )?nodes?",
    ),
    (
        "liver",
        r"liver (?:mets|metastas[ie]s|lesions?|disease|involvement|deposits?)|hepatic (?:mets|metastas[ie]s|lesions?)|metastases? (?:to|in) (?:the )?liver",
    ),
    (
        "lung",
        r"lung (?:mets|metastas[ie]s|nodules?|lesions?)|pulmonary (?:mets|metastas[ie]s|nodules?|lesions?)|metastases? (?:to|in) (?:the )?lungs?",
    ),
    (
        "brain",
        r"brain (?:mets|metastas[ie]s|lesions?)|cerebral (?:mets|metastas[ie]s)|intracranial (?:mets|metastas[ie]s)",
    ),
    ("adrenal", r"adrenal (?:mets|metastas[ie]s|lesions?|nodules?)"),
    ("visceral", r"visceral (?:mets|metastas[ie]s|disease|involvement|lesions?|spread)|viscera\b"),
]

_NEG_PRE = re.compile(
    r"\b(?:no|not|without|denies|denied|negative for|free of|absence of|ruled out|never|nor|neither|lacks?)\b[^.;:]*$",
    re.IGNORECASE,
)
_UNC_PRE = re.compile(
    r"(?:\b(?:possible|possibly|probable|probably|suspected|suspicious (?:for|of)|suspicion of|query|questionable|equivocal|"
    r"indeterminate|cannot (?:be )?(?:excluded?|ruled? out)|can't rule out|may have|might have|concern(?:ing)? for|"
    r"likely|unclear|uncertain|small|tiny|subcentimet\w+)\b|(?:^|\s)\?\s*)[^.;:]*$",
    re.IGNORECASE,
)
_NEG_POST = re.compile(
    r"^\s{0,3}(?:(?:is|are|was|were|has been|have been)\s+)?(?:ruled out|excluded|absent|negative|not (?:seen|present|found)|resolved)\b",
    re.IGNORECASE,
)
_UNC_POST = re.compile(
    r"^\s{0,2}\?|^[^.;,]{0,15}\b(?:suspected|possible|equivocal|indeterminate|cannot be excluded|not excluded)\b",
    re.IGNORECASE,
)
# Words that end a negation's reach ("no pain but liver metastases").
_SCOPE_BREAK = re.compile(
    r"\b(?:but|however|although|though|except|apart from|(?<!not )(?<!never )yet|whereas|with|now|and has|has|shows?|showed|revealed|new)\b",
    re.IGNORECASE,
)

_CLOSED_FINDING = re.compile(
    r"\b(?:negative|positive|normal|unremarkable|confirmed|ruled out|excluded|absent|present)\s*,", re.IGNORECASE
)

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
_SENSITIVE_SETTINGS = {"mHSPC", "nmHSPC", "BCR", "localized"}


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
_HISTORY_BEFORE = re.compile(
    r"\b(?:for|during|in|at|after|from|previously|prior|initially|originally|was|were|had|earlier|then|when)\b[^.;]{0,25}$",
    re.IGNORECASE,
)
# "mHSPC treated with ADT, now mCRPC": the sensitive state came first and the disease moved on.
_PROGRESSION_BETWEEN = re.compile(
    r"\b(?:now|then|later|subsequently|progress\w*|became|become|developed|evolved|treated|after|until)\b", re.IGNORECASE
)
_POSITIVE_RESULTS = {"pathogenic", "likely_pathogenic", "positive"}


def _opposite_results(a: str, b: str) -> bool:
    return (a in _POSITIVE_RESULTS and b == "negative") or (b in _POSITIVE_RESULTS and a == "negative")


def _conflict(facts: _TurnFacts, what: str, detail: str) -> None:
    """Two values of one fact in the same message: keep one (as before) but never silently — say so."""
    note = f"Conflicting statements about {what} in one message: {detail}; please confirm."
    if note not in facts.notes:
        facts.notes.append(note)


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
_NUM = r"(\d+(?:[.,]\d+)?)"
# "breastfeeding mother, baby 3 weeks old": the age right after a word for the child is the child's.
_CHILD_AGE = re.compile(
    r"(\b(?:baby|son|daughter|child|infant|newborn|toddler|kid)(?:\s+(?:is|was|now|aged?))?\s+)"
    r"(?:\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s*(?:days?|weeks?|months?|years?)(?:[- ]old)?\b",
    re.IGNORECASE,
)
# An age phrase about a child, partner or parent rather than the patient ("mother of a 6-year-old").
_OTHERS_AGE = re.compile(
    r"((?:\b(?:mother|father|parent|mum|mom|carer|caregiver)\s+of(?:\s+(?:her|his|their|a|an))?|\b(?:breast-?feed\w*|nursing|feeding|"
    r"caring for|looks after|delivered|gave birth to|has|with)\s+(?:her|his|their|a|an)|\b(?:her|his|their|whose)\b)\s+)"
    r"(?:\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)[- ](?:day|week|month|year)s?[- ]old\b"
    r"(?=\s*(?:son|daughter|child|kid|baby|infant|toddler|boy|girl|twins?|newborn|sibling|brother|sister|mother|father|husband|wife|partner|,|\.|;|$))",
    re.IGNORECASE,
)
_NON_GENE_MARKERS = {"MSI-H", "dMMR", "TMB-high", "PSMA-PET", "FDG-PET", "HRD", "PD-L1"}
# Antimicrobial resistance rates name a drug without giving it ("E. coli resistance to TMP-SMX is 30%").
_RESISTANCE_BEFORE = re.compile(
    r"\b(?:resistan(?:ce|t)|susceptib\w*|sensitiv\w*)\s+(?:rates?\s+)?(?:to|for|of)\s+(?:[\w-]+\s+){0,1}$", re.IGNORECASE
)
_RESISTANCE_AFTER = re.compile(
    r"^[- ](?:resistan(?:ce|t)|susceptib\w*|sensitiv\w*|non-?susceptib\w*)\b", re.IGNORECASE
)
# Radiotherapy aimed at a metastasis or given for symptoms is palliative, not radical treatment of the prostate.
_PALLIATIVE_BEFORE = re.compile(
    r"\b(?:palliative|single[- ]fraction|symptomatic|analgesic|pain[- ]relieving|emergency)\s+(?:[\w-]+\s+){0,1}$", re.IGNORECASE
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
    if re.match(r"^[- ]?(?:oncolog\w*|exposure|protection|safety|physic\w*|department|team)\b", after, re.IGNORECASE):
        return None  # "seen by radiation oncology": a specialty, not a treatment
    if re.match(r"^\s*(?:\([^)]{0,30}\)\s*)?(?:to|of)\s+(?:the\s+)?(?:prostate|prostatic|pelvi\w*|primary)", after, re.IGNORECASE):
        return tid
    if _PALLIATIVE_BEFORE.search(text[max(0, start - 40) : start]) or _PALLIATIVE_AFTER.match(after):
        # Metastasis-directed RT (SBRT to a node) is recorded the same way: it did not treat the primary.
        return "palliative_radiotherapy" if "palliative_radiotherapy" in lexicon.entries else None
    return tid


# ------------------------------------------------------------------ helpers
@dataclass(frozen=True)
class _Clause:
    text: str
    start: int
    is_question: bool
    turn_question: bool = False


def _clauses(text: str) -> list[_Clause]:
    """Sentences/clauses: split on . ; ! newlines and on '?' that ends a question (not '? liver lesion')."""
    out: list[_Clause] = []
    asked = "?" in text
    start = 0
    for m in re.finditer(r"\.(?=\s|$)|[;!\n]|\?(?=\s*(?:$|[A-Z(]))", text):
        piece = text[start : m.end()]
        if piece.strip():
            out.append(_Clause(piece, start, piece.rstrip().endswith("?"), asked))
        start = m.end()
    if text[start:].strip():
        out.append(_Clause(text[start:], start, text.rstrip().endswith("?"), asked))
    return out


_ASSERT_POST = re.compile(r"^\s*(?:are |is |were )?(?:present|seen|found|confirmed|noted|visible|demonstrated)\b", re.IGNORECASE)


def _polarity(clause: str, start: int, end: int) -> str:
    """present / absent / possible for the phrase at clause[start:end] (NegEx-style scope)."""
    before = clause[max(0, start - 70) : start]
    # Scope: only the words since the last breaker before the phrase.
    breaks = list(_SCOPE_BREAK.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    # "not breastfeeding, pregnancy test negative, PE": a finding closed by its own status word ends the scope.
    closed = list(_CLOSED_FINDING.finditer(before))
    if closed:
        before = before[closed[-1].end() :]
    # A comma followed by a new clause also stops it: "no pain, liver metastases present".
    after = clause[end : end + 40]
    neg = _NEG_PRE.search(before)
    if neg and not re.search(r"\bnot only\b", before, re.IGNORECASE):
        # "no pain, bone metastases present on scan": an explicit assertion after a comma starts a new clause.
        if "," in before[neg.start() :] and _ASSERT_POST.match(after):
            return "present"
        return "absent"
    if _UNC_PRE.search(before):
        return "possible"
    if _NEG_POST.search(after):
        return "absent"
    if _UNC_POST.search(after):
        return "possible"
    return "present"


def _num(s: str) -> float:
    return float(s.replace(",", "."))


@dataclass
class _TurnFacts(SafetyFacts):
    """What one turn said (None/empty = said nothing about it); the safety facts come from SafetyFacts."""

    diagnoses: dict[str, str] = field(default_factory=dict)
    disease_state: str | None = None
    castration: str | None = None
    therapies: dict[tuple[str, bool], TherapyExposure] = field(
        default_factory=dict
    )  # (id, planned?) → exposure
    biomarkers: dict[str, Biomarker] = field(default_factory=dict)
    sites: dict[str, str] = field(default_factory=dict)
    labs: dict[str, LabValue] = field(default_factory=dict)
    ecog: int | None = None
    symptomatic: bool | None = None
    symptoms: list[str] = field(default_factory=list)
    age: int | None = None
    sex: str | None = None
    weight_kg: float | None = None
    dx_positions: list[tuple[int, str, bool]] = field(default_factory=list)  # (offset, id, in a question)
    question_text: str = ""  # the interrogative clauses of the turn
    castration_resistant: bool = False
    metastatic: bool | None = None
    sensitive: bool = False


# ------------------------------------------------------------------ the extractor
class PatientExtractor:
    """Compiled patterns for one lexicon and clinical vocabulary; `extract_turn(text)` reads one user turn."""

    def __init__(self, lexicon: Lexicon, corpus_dir: str | None = None) -> None:
        self.lexicon = lexicon
        vocab = pf.load_clinical_vocab(str(corpus_dir or pf.corpus_dir_of(lexicon)))
        try:
            self.oncology = load_oncology_vocab(str(corpus_dir or pf.corpus_dir_of(lexicon)))
        except (OSError, ValueError, yaml.YAMLError) as exc:  # the corpus validator names the broken file
            log.warning("oncology vocabulary unreadable: %s", exc)
            self.oncology = None
        self.primary = vocab.primary
        names_ci: list[str] = []
        names_cs: list[str] = []
        for name in lexicon.by_name:
            entry = lexicon.entries[lexicon.by_name[name]]
            original = next((n for n in [entry.id, *entry.names] if n.lower() == name), name)
            # Short all-caps abbreviations (ADT, RP, SRT, ASA) only count when written in capitals.
            if len(original) <= 4 and original.upper() == original and any(c.isalpha() for c in original):
                names_cs.append(original)
            else:
                names_ci.append(name)

        def alt(names: Iterable[str]) -> str:
            return "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))

        self._therapy_ci = (
            re.compile(rf"(?<![\w])(?:{alt(names_ci)})(?![\w])", re.IGNORECASE) if names_ci else None
        )
        self._therapy_cs = re.compile(rf"(?<![\w])(?:{alt(names_cs)})(?![\w])") if names_cs else None
        self._conditions = [(cid, _compile_mixed_case(p)) for cid, p in vocab.conditions]
        self._sites = [(s, re.compile(p, re.IGNORECASE)) for s, p in _SITES]

    # -- therapies
    def _therapy_mentions(self, text: str) -> list[tuple[int, int, str]]:
        hits: list[tuple[int, int, str]] = []
        for rx in (self._therapy_ci, self._therapy_cs):
            if rx is None:
                continue
            for m in rx.finditer(text):
                tid = self.lexicon.by_name.get(m.group(0).lower())
                if tid:
                    hits.append((m.start(), m.end(), tid))
        hits.sort(key=lambda h: (h[0], -(h[1] - h[0])))
        out: list[tuple[int, int, str]] = []
        for h in hits:
            if out and h[0] < out[-1][1]:
                continue  # overlapping shorter name inside a longer one
            out.append(h)
        return out

    def _status(self, clause: _Clause, start: int, end: int, prev_end: int) -> str:
        text = clause.text
        after = text[end:]
        # Skip a parenthetical synonym: "Pluvicto (Lu-177) was stopped …".
        after = re.sub(r"^\s*\([^)]{0,40}\)", "", after)
        for status, rx in _POST_STATUS:
            if rx.search(after):
                # A post cue belongs to this mention only when no other therapy sits in between.
                cut = after[: rx.search(after).end()]
                if not self._therapy_mentions(cut):
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
        inner = self._therapy_mentions(gap)
        if not inner:
            return True
        pieces = [gap[a[1] : b[0]] for a, b in itertools.pairwise(inner)] + [gap[inner[-1][1] :]]
        return all(_LIST_GAP.match(p) for p in pieces)

    # -- one turn
    def extract_turn(self, text: str) -> _TurnFacts:
        facts = _TurnFacts()
        text = (
            text.replace("µ", "u")
            .replace("μ", "u")
            .replace("–", "-")
            .replace("—", " - ")
            .replace("≥", ">=")
            .replace("≤", "<=")
        )
        clauses = _clauses(text)
        facts.question_text = " ".join(c.text for c in clauses if c.is_question)
        low = text.lower()

        for cl in clauses:
            mentions = self._therapy_mentions(cl.text)
            prev_end = 0
            for s, e, tid in mentions:
                kind = pf.allergy_kind(cl.text, s, e)
                if kind == "reaction" and set(self.lexicon.classes_of(tid)) & _ONCOLOGY_CLASSES:
                    # "severe rash on apalutamide": the allergy is recorded, and the line still counts as given.
                    facts.therapies.setdefault(
                        (tid, False),
                        TherapyExposure(
                            therapy=tid, classes=self.lexicon.classes_of(tid), status="intolerant", mention=cl.text[s:e]
                        ),
                    )
                    continue
                if kind is not None or pf.declined_span(cl.text, s):
                    continue  # "allergic to penicillin", "anaphylaxis after amoxicillin", "refuses docetaxel"
                if "antibiotic" in self.lexicon.classes_of(tid) and (
                    _RESISTANCE_BEFORE.search(cl.text[max(0, s - 40) : s]) or _RESISTANCE_AFTER.match(cl.text[e : e + 25])
                ):
                    continue  # "local resistance to TMP-SMX is 30%": a resistance rate, not a treatment given
                tid = _palliative_rt(tid, cl.text, s, e, self.lexicon)
                if tid is None:
                    continue
                if _THERAPY_NEG.search(cl.text[max(0, s - 45) : s]) or re.match(
                    r"^[- ](?:naive|naïve|free)\b", cl.text[e : e + 8], re.IGNORECASE
                ):
                    continue  # "no prior ARPI or docetaxel", "docetaxel-naive": not given
                status = self._status(cl, s, e, prev_end)
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
            self._conditions_in(cl, facts)
            self._sites_in(cl, facts)
            self._biomarkers_in(cl, facts)

        self._disease_state(text, facts)
        self._castration(facts, low)
        self._labs(text, facts)
        self._demographics(text, facts)
        self._performance(text, facts)
        self._symptoms(clauses, facts)
        pf.read_turn(text, clauses, self.lexicon, _polarity, self._therapy_mentions, facts)
        facts.labs.update(facts.liver_labs)  # a ULN multiple replaces a bare number read as units
        for cid, pol in facts.extra_conditions.items():
            facts.diagnoses.setdefault(cid, pol)
        return facts

    def _conditions_in(self, cl: _Clause, facts: _TurnFacts) -> None:
        for cid, (rx_ci, rx_cs) in self._conditions:
            m = (rx_ci.search(cl.text) if rx_ci else None) or (rx_cs.search(cl.text) if rx_cs else None)
            if not m:
                continue
            if cid == "bleeding_history" and re.search(
                r"bleed(?:ing)? risk|risk of bleed", cl.text, re.IGNORECASE
            ):
                continue
            pol = _polarity(cl.text, m.start(), m.end())
            if cid == "ckd" and re.search(r"\bAKI\b|acute kidney", cl.text):
                continue
            prev = facts.diagnoses.get(cid)
            if prev is None or prev == "possible":
                facts.diagnoses[cid] = pol
            if pol == "present":
                facts.dx_positions.append((cl.start + m.start(), cid, cl.is_question))

    def _sites_in(self, cl: _Clause, facts: _TurnFacts) -> None:
        t = cl.text
        if re.search(
            r"bone[- ]only|only (?:in )?(?:the )?bones?|confined to (?:the )?bones?|exclusively (?:in )?bone",
            t,
            re.IGNORECASE,
        ):
            facts.sites.update({"bone": "present", "visceral": "absent"})
            facts.sites.setdefault("lymph_node", "absent")
        if re.search(
            r"\b(?:CT|bone scan|imaging|PET|scans?|staging)\b[^.;]{0,30}\b(?:negative|clear|unremarkable|no (?:evidence of )?(?:metasta\w+|disease))\b",
            t,
            re.IGNORECASE,
        ):
            facts.metastatic = False
        if re.search(
            r"\b(?:no|without|negative for)\b[^.;]{0,30}\b(?:distant )?metasta(?:ses|sis|tic disease)\b|\bM0\b|non-?metastatic|\bnm(?:CRPC|HSPC|CSPC)\b",
            t,
            re.IGNORECASE,
        ):
            facts.metastatic = False
        for site, rx in self._sites:
            for m in rx.finditer(t):
                pol = _polarity(t, m.start(), m.end())
                matched = m.group(0).lower()
                if (
                    site in ("liver", "lung", "adrenal")
                    and pol == "present"
                    and re.search(r"lesion|nodule", matched)
                    and not re.search(r"metasta|mets", t[m.start() - 30 : m.end() + 30], re.IGNORECASE)
                ):
                    pol = "possible"  # a lesion is not yet a metastasis
                if site == "bone" and "bone-only" in matched.replace(" ", "-"):
                    continue
                prev = facts.sites.get(site)
                if {prev, pol} == {"present", "absent"}:
                    _conflict(facts, f"{site.replace('_', ' ')} metastases", "stated both present and absent")
                facts.sites[site] = _stronger(prev, pol)
                if pol == "present" and site in ("liver", "lung", "brain", "adrenal"):
                    facts.sites["visceral"] = "present"
                if pol == "present":
                    facts.metastatic = True

    def _biomarkers_in(self, cl: _Clause, facts: _TurnFacts) -> None:
        t = cl.text
        hits = list(_GENE_RE.finditer(t))
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
                result = _result_in(post, marker) or _result_in(pre, marker, pre_only=True)
            if result is None:
                # A list shares the words after its last member: "BRCA1, BRCA2 and ATM negative".
                tail = t[m.end() : m.end() + 120]
                result = _list_result(tail, marker) or _default_result(marker, t[prev_end:nxt])
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
                if name in _NON_GENE_MARKERS and res in ("pathogenic", "likely_pathogenic"):
                    res = "positive"
                val = value
                if name == "TMB-high":
                    num = re.search(r"^[^.;\d]{0,25}(\d+(?:\.\d+)?)", post)
                    val = num.group(1) if num else val
                prev_bm = facts.biomarkers.get(name)
                if prev_bm is not None and _opposite_results(prev_bm.result, res):
                    _conflict(facts, name, f"reported both {prev_bm.result} and {res}")
                facts.biomarkers[name] = Biomarker(
                    name=name, result=res, origin=origin, value=val, mention=m.group(0)
                )
        if re.search(
            r"\b(?:HRR|germline|genetic|genomic|NGS)\b[^.;]{0,30}\b(?:testing|panel|tests?)\b[^.;]{0,20}\b(?:negative|unremarkable|normal|no (?:pathogenic|actionable))",
            t,
            re.IGNORECASE,
        ):
            facts.biomarkers.setdefault(
                "HRR", Biomarker(name="HRR", result="negative", mention="panel negative")
            )

    def _disease_state(self, text: str, facts: _TurnFacts) -> None:
        crpc = re.search(
            r"\bm?CRPC\b|castrat(?:e|ion)[- ](?:resistant|refractory)|hormone[- ](?:refractory|resistant|independent)|androgen[- ]independent",
            text,
            re.IGNORECASE,
        )
        sensitive = re.search(
            r"\bm?(?:HSPC|CSPC)\b|(?:hormone|castrat(?:e|ion))[- ](?:sensitive|naive|naïve)|hormone[- ]responsive|de novo metastatic|newly diagnosed metastatic",
            text,
            re.IGNORECASE,
        )
        state: str | None = None
        if re.search(r"\bmCRPC\b", text) or (
            crpc
            and re.search(r"\bmetasta", text[max(0, crpc.start() - 40) : crpc.end() + 10], re.IGNORECASE)
            and not re.search(r"non-?metasta", text[max(0, crpc.start() - 40) : crpc.end()], re.IGNORECASE)
        ):
            state = "mCRPC"
        elif re.search(r"\bnm-?CRPC\b|\bM0 CRPC\b|non-?metastatic castrat", text, re.IGNORECASE):
            state = "nmCRPC"
        elif (
            re.search(r"\bm(?:HSPC|CSPC)\b", text)
            or (
                sensitive
                and re.search(
                    r"metasta", text[max(0, sensitive.start() - 40) : sensitive.end() + 10], re.IGNORECASE
                )
                and not re.search(r"non-?metasta", text, re.IGNORECASE)
            )
            or re.search(r"de novo metastatic|newly diagnosed metastatic", text, re.IGNORECASE)
        ):
            state = "mHSPC"
        elif re.search(
            r"\bnm(?:HSPC|CSPC)\b|non-?metastatic (?:hormone|castrat(?:e|ion))[- ]sensitive",
            text,
            re.IGNORECASE,
        ):
            state = "nmHSPC"
        elif re.search(
            r"\bBCR\b|biochemical(?:ly)? (?:recurrence|relapse|failure|recurrent)|PSA (?:recurrence|relapse|persistence)",
            text,
            re.IGNORECASE,
        ):
            state = "BCR"
        elif re.search(r"\blocali[sz]ed prostate|organ[- ]confined|\bT[12][abc]?N0M0\b", text, re.IGNORECASE):
            state = "localized"
        between = text[sensitive.end() : crpc.start()] if crpc and sensitive and sensitive.end() <= crpc.start() else ""
        if (
            crpc
            and sensitive
            and not _HISTORY_BEFORE.search(text[max(0, sensitive.start() - 30) : sensitive.start()])
            and not _PROGRESSION_BETWEEN.search(between)
        ):
            _conflict(facts, "disease state", "castration-resistant and castration-sensitive both stated")
        facts.castration_resistant = bool(crpc) or state in ("mCRPC", "nmCRPC")
        facts.sensitive = bool(sensitive) and not crpc
        facts.disease_state = state

    def _castration(self, facts: _TurnFacts, low: str) -> None:
        for (tid, planned), exp in facts.therapies.items():
            if planned:
                continue
            if tid == "orchiectomy":
                facts.castration = "orchiectomy"
            elif (
                "ADT" in exp.classes
                and exp.status in ("ongoing", "received", "progressed")
                and facts.castration != "orchiectomy"
            ):
                facts.castration = "ADT"
        if facts.castration is None and re.search(
            r"castrate (?:level|testosterone)|testosterone (?:is |at |in the )?castrate", low
        ):
            facts.castration = "castrate"

    def _labs(self, text: str, facts: _TurnFacts) -> None:
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
            + _NUM
            + r"(?:\s*ng/ml)?((?:\s*(?:->|→|to|,|and|then|>)\s*"
            + _NUM
            + r"(?:\s*ng/ml)?){0,8})",
            re.IGNORECASE,
        )
        m = psa_rx.search(text)
        if m and not re.search(r"doubling|velocity|psadt", text[m.start() : m.start(1)], re.IGNORECASE):
            values = [_num(m.group(1))] + [_num(v) for v in re.findall(_NUM, m.group(2) or "")]
            values = [v for v in values if v < 100000]
            between = text[m.start() : m.start(1)].lower()
            trend = "unknown"
            if len(values) > 1:
                trend = (
                    "rising" if values[-1] > values[0] else "falling" if values[-1] < values[0] else "stable"
                )
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
            + _NUM
            + r"\s*(months?|mo|weeks?|wks?|years?|yrs?)?",
            text,
            re.IGNORECASE,
        )
        if dt:
            v = _num(dt.group(1))
            unit = (dt.group(2) or "months").lower()
            months = v / 4.345 if unit.startswith("w") else v * 12 if unit.startswith("y") else v
            put("psadt_months", months, "months", dt.group(0))
        elif "psa" in facts.labs and len(facts.labs["psa"].series) >= 2:
            span = re.search(
                r"over (?:the (?:last|past) )?" + _NUM + r"\s*(months?|weeks?|years?)", text, re.IGNORECASE
            )
            series = facts.labs["psa"].series
            if span and series[0] > 0 and series[-1] > series[0]:
                v = _num(span.group(1))
                unit = span.group(2).lower()
                months = v / 4.345 if unit.startswith("w") else v * 12 if unit.startswith("y") else v
                put(
                    "psadt_months",
                    months * math.log(2) / math.log(series[-1] / series[0]),
                    "months",
                    span.group(0) + " (computed)",
                )

        simple = [
            (
                "egfr",
                r"\beGFR\b(?:\s*(?:is|of|=|was|:|~|about|around|<|>|has|have|had|fallen|dropped|declined|decreased|risen|rose|increased|gone|come|down|up|now|to|at|currently|level|value|today))*\s*"
                + _NUM,
                "mL/min/1.73m2",
            ),
            (
                "crcl",
                r"\b(?:CrCl|CrCL|CLcr|creatinine clearance)\b(?:\s*(?:is|of|=|was|:|~|about|around|<|>|has|have|had|fallen|dropped|declined|decreased|risen|rose|increased|gone|come|down|up|now|to|at|currently|level|value|today))*\s*"
                + _NUM,
                "mL/min",
            ),
            (
                "testosterone",
                r"\btestosterone\b(?:\s*(?:level|is|of|=|was|:|<|>))*\s*"
                + _NUM
                + r"\s*(ng/dl|nmol/l|ng/ml)?",
                "ng/dL",
            ),
            (
                "hemoglobin",
                r"\b(?:Hb|Hgb|h(?:a)?emoglobin)\b(?:\s*(?:is|of|=|was|:))*\s*" + _NUM + r"\s*(g/dl|g/l)?",
                "g/dL",
            ),
            (
                "platelets",
                r"\b(?:platelets?|plts?|PLT)\b(?:\s*(?:count|are|is|of|=|was|:))*\s*" + _NUM,
                "x10^9/L",
            ),
            (
                "anc",
                r"\b(?:ANC|neutrophils?(?: count)?|absolute neutrophil count)\b(?:\s*(?:is|of|=|was|:))*\s*"
                + _NUM,
                "x10^9/L",
            ),
            ("potassium", r"\b(?:K\+?|potassium)\b(?:\s*(?:is|of|=|was|:))*\s*" + _NUM, "mmol/L"),
            ("inr", r"\bINR\b(?:\s*(?:is|of|=|was|:))*\s*" + _NUM, ""),
            ("alt", r"\bALT\b(?:\s*(?:is|of|=|was|:))*\s*" + _NUM, "U/L"),
            ("ast", r"\bAST\b(?:\s*(?:is|of|=|was|:))*\s*" + _NUM, "U/L"),
            ("alp", r"\b(?:ALP|alk(?:aline)? phos(?:phatase)?)\b(?:\s*(?:is|of|=|was|:))*\s*" + _NUM, "U/L"),
            (
                "bilirubin",
                r"\bbilirubin\b(?:\s*(?:is|of|=|was|:))*\s*" + _NUM + r"\s*(mg/dl|umol/l)?",
                "mg/dL",
            ),
            (
                "ldl",
                r"\bLDL(?:-C)?\b(?:\s*(?:cholesterol|is|of|=|was|:))*\s*" + _NUM + r"\s*(mg/dl|mmol/l)?",
                "mg/dL",
            ),
            (
                "hba1c",
                r"\b(?:HbA1c|A1c|haemoglobin A1c|hemoglobin A1c)\b(?:\s*(?:is|of|=|was|:))*\s*"
                + _NUM
                + r"\s*(%|mmol/mol)?",
                "%",
            ),
        ]
        for name, pattern, unit in simple:
            m = re.search(pattern, text, re.IGNORECASE if name not in ("potassium", "alt", "ast") else 0)
            if not m and name in ("potassium",):
                m = re.search(r"\bpotassium\b(?:\s*(?:is|of|=|was|:))*\s*" + _NUM, text, re.IGNORECASE)
            if not m:
                continue
            v = _num(m.group(1))
            u = m.group(2).lower() if m.lastindex and m.lastindex >= 2 and m.group(2) else ""
            if name == "testosterone":
                if u == "nmol/l" or (not u and v < 5 and "ng/ml" not in u):
                    v, u = v * 28.85, "ng/dL"
                elif u == "ng/ml":
                    v = v * 100
            elif name == "hemoglobin" and (u == "g/l" or v > 25):
                v = v / 10
            elif name == "platelets" and v > 2000:
                v = v / 1000  # written per µL
            elif name == "anc" and v >= 100:
                v = v / 1000  # written per mm³ (e.g. "ANC 1200"); no real count is ≥ 100 x10^9/L
            elif name == "bilirubin" and (u == "umol/l" or v > 30):
                v = v / 17.1
            elif name == "ldl" and (u == "mmol/l" or v < 15):
                v = v * 38.67
            elif name == "hba1c" and (u == "mmol/mol" or v > 20):
                v = v / 10.929 + 2.15
            put(name, v, unit, m.group(0))
        for name, pattern in (
            ("cha2ds2_vasc", r"CHA2?DS2?-?VAS[Cc]\s*(?:score)?\s*(?:of|is|=|:)?\s*(\d)\b"),
            ("has_bled", r"HAS-?BLED\s*(?:score)?\s*(?:of|is|=|:)?\s*(\d)\b"),
            (
                "uacr",
                r"\b(?:UACR|uACR|ACR|albumin[- ](?:to[- ])?creatinine ratio)\b[^\d]{0,15}(\d+(?:\.\d+)?)",
            ),
        ):
            sm = re.search(pattern, text, re.IGNORECASE)
            if sm:
                put(name, _num(sm.group(1)), "mg/g" if name == "uacr" else "points", sm.group(0))
        cr = re.search(
            r"\b(?:serum )?(?:creatinine|Cr|SCr)\b(?!\s*clearance)(?:\s*(?:is|of|=|was|:|level))*\s*"
            + _NUM
            + r"\s*(mg/dl|umol/l|mmol/l)?",
            text,
            re.IGNORECASE,
        )
        if cr:
            v = _num(cr.group(1))
            u = (cr.group(2) or "").lower()
            if u == "umol/l" or (not u and v > 20):
                v = v / 88.42
            put("creatinine", v, "mg/dL", cr.group(0))
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

    def _demographics(self, text: str, facts: _TurnFacts) -> None:
        # "mother of a 6-year-old", "breastfeeding her 3-month-old": an age that belongs to someone else is blanked
        # (same length keeps offsets) before the patient's age is read.
        text = _OTHERS_AGE.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), text)
        text = _CHILD_AGE.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), text)
        infant = re.search(
            r"\b(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)[- ](day|week|month)s?[- ]old\b",
            text,
            re.IGNORECASE,
        )
        if infant:
            n = pf._n(infant.group(1))
            unit = infant.group(2).lower()
            years = n // 12 if unit == "month" else 0
            facts.age = years
            facts.notes.append(f"Age {n} {unit}s (read as {years} year{'s' if years != 1 else ''}); child dosing applies.")
        age = re.search(
            r"\b(\d{1,3})[- ]?(?:year|yr)s?[- ]?old\b|\b(\d{1,3})\s?(?:yo|y/o|y\.o\.|yrs?)\b|\baged? (\d{1,3})\b|\b(\d{2})\s?([MF])\b|\bage(?: is|:)? (\d{1,3})\b",
            text,
            re.IGNORECASE,
        )
        ages = {
            int(g)
            for a in re.finditer(
                r"\b(\d{1,3})[- ]?(?:year|yr)s?[- ]?old\b|\baged? (\d{1,3})\b|\bage(?: is|:)? (\d{1,3})\b", text, re.IGNORECASE
            )
            for g in a.groups()
            if g and 0 < int(g) < 120
        }
        if len(ages) > 1:
            _conflict(facts, "age", "different ages stated (" + ", ".join(str(a) for a in sorted(ages)) + ")")
        if age:
            value = next(
                int(g) for g in (age.group(1), age.group(2), age.group(3), age.group(4), age.group(6)) if g
            )
            if 0 < value < 120 and not (infant and infant.start() < age.start()):
                facts.age = value
            if age.group(5):
                facts.sex = "male" if age.group(5).upper() == "M" else "female"
        if facts.sex is None:
            # Nouns before pronouns: "a 68-year-old man whose wife is pregnant" is a man.
            female_noun = re.search(r"\b(?:woman|female|lady|girl|mrs|ms)\b", text, re.IGNORECASE)
            male_noun = re.search(r"\b(?:man|male|gentleman|boy|mr)\b", text, re.IGNORECASE)
            if female_noun and not male_noun:
                facts.sex = "female"
            elif male_noun and not female_noun:
                facts.sex = "male"
            elif re.search(
                r"\b(?:she|her|pregnan\w*|postmenopausal|breast-?feeding|postpartum)\b", text, re.IGNORECASE
            ) and not re.search(r"\b(?:wife|partner|girlfriend|daughter)\b", text, re.IGNORECASE):
                facts.sex = "female"
            elif re.search(r"\b(?:he|his|him)\b", text, re.IGNORECASE):
                facts.sex = "male"
        w = re.search(r"\b" + _NUM + r"\s?(kg|kilograms?|lbs?|pounds)\b", text, re.IGNORECASE)
        if w:
            v = _num(w.group(1))
            facts.weight_kg = round(v * 0.4536, 1) if w.group(2).lower().startswith(("lb", "pound")) else v

    def _performance(self, text: str, facts: _TurnFacts) -> None:
        m = re.search(
            r"\b(?:ECOG|WHO)(?: PS| performance status)?(?: score)?(?: of| is|:|=)?\s*([0-4])(?:\s*[-/]\s*([0-4]))?|\b(?:performance status|PS)(?: of| is|:|=)?\s*([0-4])(?:\s*[-/]\s*([0-4]))?",
            text,
            re.IGNORECASE,
        )
        if m:
            singles = {
                int(x.group(1))
                for x in re.finditer(r"\b(?:ECOG|WHO)(?: PS| performance status)?(?: score)?(?: of| is|:|=)?\s*([0-4])\b(?!\s*[-/]\s*[0-4])", text, re.IGNORECASE)
            }
            if len(singles) > 1:
                _conflict(facts, "ECOG", "different values stated (" + ", ".join(map(str, sorted(singles))) + ")")
            lo, hi = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            facts.ecog = int(hi or lo)  # a range ("ECOG 0-1") is read at its worse end
            return
        k = re.search(r"\b(?:KPS|Karnofsky)(?: score)?(?: of| is|:)?\s*(\d{2,3})", text, re.IGNORECASE)
        if k:
            kps = int(k.group(1))
            facts.ecog = 0 if kps >= 100 else 1 if kps >= 80 else 2 if kps >= 60 else 3 if kps >= 40 else 4
        elif re.search(r"\bbed[- ]?bound\b|\bbedridden\b", text, re.IGNORECASE):
            facts.ecog = 4
        elif re.search(
            r"\b(?:good|excellent) (?:performance status|PS)\b|\bfully active\b", text, re.IGNORECASE
        ):
            facts.notes.append("Performance status described as good (no ECOG number).")

    def _symptoms(self, clauses: list[_Clause], facts: _TurnFacts) -> None:
        for cl in clauses:
            t = cl.text
            if re.search(
                r"\basymptomatic\b|\bminimally symptomatic\b|\bno symptoms\b|\bsymptom[- ]free\b|\bpain[- ]free\b",
                t,
                re.IGNORECASE,
            ):
                facts.symptomatic = False
            m = re.search(r"(?<!a)symptomatic", t, re.IGNORECASE)
            if (
                m
                and not re.search(r"\b(?:asymptomatic|minimally symptomatic)\b", t, re.IGNORECASE)
                and _polarity(t, m.start(), m.end()) == "present"
            ):
                facts.symptomatic = True
            for sm in re.finditer(
                r"bone pain|(?:back|hip|pelvic|rib) pain|\bpain\b|cord compression|opioids?|analgesi\w+|fatigue|weight loss|urinary retention|haematuria|hematuria|fracture",
                t,
                re.IGNORECASE,
            ):
                pol = _polarity(t, sm.start(), sm.end())
                word = sm.group(0).lower()
                if pol == "present":
                    if word not in facts.symptoms:
                        facts.symptoms.append(word)
                    if (
                        word
                        in (
                            "bone pain",
                            "back pain",
                            "hip pain",
                            "pelvic pain",
                            "rib pain",
                            "pain",
                            "cord compression",
                            "opioids",
                            "opioid",
                        )
                        and facts.symptomatic is not False
                    ):
                        facts.symptomatic = True
                elif pol == "absent" and word in ("pain", "bone pain") and facts.symptomatic is None:
                    facts.symptomatic = False


def _split_top(pattern: str) -> list[str]:
    """Top-level alternatives of a regex (splits on '|' outside groups)."""
    parts, depth, cur = [], 0, []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            cur.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _compile_mixed_case(pattern: str) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(case-insensitive, case-sensitive) regexes: alternatives holding an all-caps abbreviation
    (\\bAF\\b, \\bPE\\b, \\bMI\\b) must match in capitals so "af"/"pe"/"mi" in prose do not count."""
    ci, cs = [], []
    for alt in _split_top(pattern):
        (cs if re.search(r"\\b[A-Z]{2,}|(?<![A-Za-z\\])[A-Z]{2,}|\\b[A-Z][a-z]?[A-Z]", alt) else ci).append(
            alt
        )
    return (
        re.compile("|".join(ci), re.IGNORECASE) if ci else None,
        re.compile("|".join(cs)) if cs else None,
    )


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


def _stronger(old: str | None, new: str) -> str:
    if old is None:
        return new
    order = {"present": 0, "absent": 1, "possible": 2}
    return new if order[new] < order[old] else old


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


def _result_in(segment: str, marker: str, pre_only: bool = False) -> str | None:
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
                and marker not in ("PSMA-PET", "MSI-H", "TMB-high", "dMMR", "FDG-PET")
                and re.search(r"\blow\b|\bnormal\b", seg, re.IGNORECASE)
                and not re.search(r"negative|wild|not detected|no ", seg, re.IGNORECASE)
            ):
                continue
            return result
    return None


def _list_result(tail: str, marker: str) -> str | None:
    m = re.match(
        r"^(?:\s*(?:,|and|or|/)\s*(?:BRCA1/2|BRCA ?[12]|[A-Z0-9]{2,7}))+\s*(?:genes?\s*)?(?:were|was|are|is|all)?\s*",
        tail,
    )
    if m:
        return _result_in(tail[m.end() :], marker)
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


# ------------------------------------------------------------------ merging turns
_SCALARS = (
    "disease_state", "castration", "ecog", "symptomatic", "age", "sex", "weight_kg", "pregnant", *pf.SAFETY_SCALARS,
)  # fmt: skip


def _merge(
    ctx: PatientContext, facts: _TurnFacts, turn: int, lexicon: Lexicon, primary: frozenset[str] = frozenset()
) -> PatientContext:
    data = ctx.model_copy(deep=True)
    changes = list(data.changes)

    def change(field_name: str, old: Any, new: Any) -> None:
        if old not in (None, "", "unknown") and old != new:
            changes.append(FactChange(field=field_name, old=str(old), new=str(new), turn=turn))

    for name in _SCALARS:
        new = getattr(facts, name)
        if new is None:
            continue
        old = getattr(data, name)
        change(name, old, new)
        setattr(data, name, new)
    # Conditions.
    for cid, pol in facts.diagnoses.items():
        old = data.comorbidities.get(cid)
        if old is not None and old != pol:
            change(f"condition:{cid}", old, pol)
        data.comorbidities[cid] = pol
    data.diagnoses = [c for c in data.diagnoses if data.comorbidities.get(c, "present") == "present"]
    for cid, pol in data.comorbidities.items():
        if pol == "present" and cid in primary and cid not in data.diagnoses:
            data.diagnoses.append(cid)
    # Sites.
    for site, pol in facts.sites.items():
        old = data.sites.get(site)
        change(f"site:{site}", old, pol)
        data.sites[site] = pol
    if facts.sites.get("visceral") == "absent":
        for s in ("liver", "lung", "brain", "adrenal"):
            if data.sites.get(s) == "present" and s not in facts.sites:
                change(f"site:{s}", "present", "absent")
                data.sites[s] = "absent"
    if (
        any(data.sites.get(s) == "present" for s in ("liver", "lung", "brain", "adrenal"))
        and data.sites.get("visceral") != "present"
    ):
        change("site:visceral", data.sites.get("visceral"), "present")
        data.sites["visceral"] = "present"
    # Biomarkers (keyed by marker name).
    current = {b.name: b for b in data.biomarkers}
    for name, bm in facts.biomarkers.items():
        old = current.get(name)
        if old is not None:
            if old.result != bm.result:
                change(f"biomarker:{name}", old.result, bm.result)
            origin = bm.origin if bm.origin != "unknown" else old.origin
            if old.origin != "unknown" and bm.origin != "unknown" and old.origin != bm.origin:
                change(f"biomarker:{name}:origin", old.origin, bm.origin)
            # "It's germline" refines the origin without restating the result.
            result = (
                bm.result
                if not (bm.result == "pathogenic" and old.result in ("likely_pathogenic",))
                else old.result
            )
            bm = bm.model_copy(update={"origin": origin, "result": result})
        current[name] = bm
    data.biomarkers = list(current.values())
    # Labs: a new value of the same lab extends its series.
    for name, lab in facts.labs.items():
        old = data.labs.get(name)
        if old is not None and old.value is not None and lab.value is not None and old.value != lab.value:
            change(f"lab:{name}", old.value, lab.value)
            series = (old.series or [old.value]) + (
                lab.series[1:] if lab.series and lab.series[0] == old.value else lab.series or [lab.value]
            )
            trend = (
                lab.trend if lab.trend != "unknown" else ("rising" if lab.value > old.value else "falling")
            )
            lab = lab.model_copy(update={"series": series, "trend": trend})
        elif old is not None and lab.uln_multiple is not None and lab.uln_multiple != old.uln_multiple:
            change(f"lab:{name}:xULN", old.uln_multiple if old.uln_multiple is not None else old.value, lab.uln_multiple)
        elif old is not None and lab.value is None:
            lab = old.model_copy(update={"trend": lab.trend if lab.trend != "unknown" else old.trend})
        data.labs[name] = lab
    # Therapies: one history entry and at most one planned entry per therapy id.
    history = {t.therapy: t for t in data.therapies if t.status != "planned"}
    planned = {t.therapy: t for t in data.therapies if t.status == "planned"}
    for (tid, is_planned), exp in facts.therapies.items():
        if is_planned:
            if tid not in history or history[tid].status == "ongoing":
                planned[tid] = exp
            else:
                # Asking about something already given (re-challenge) keeps both facts.
                planned[tid] = exp
            continue
        old = history.get(tid)
        if old is not None and old.status != exp.status:
            if exp.status == "received":
                continue  # a bare later mention does not erase how it ended
            change(f"therapy:{tid}", old.status, exp.status)
        history[tid] = exp
        planned.pop(tid, None) if exp.status == "ongoing" else None
    data.therapies = list(history.values()) + list(planned.values())
    pf.merge_turn(data, facts, change, other_infection=facts.diagnoses.get("pneumonia") == "present")
    data.symptoms = list(dict.fromkeys(data.symptoms + facts.symptoms))
    data.notes = list(dict.fromkeys(data.notes + facts.notes))
    data.changes = changes
    return data


def _infer(ctx: PatientContext, facts_all: list[_TurnFacts], lexicon: Lexicon) -> PatientContext:
    """Cross-fact inferences, each recorded in notes so the clinician sees what was assumed."""
    data = ctx.model_copy(deep=True)
    notes = list(data.notes)
    prostate_drugs = any(
        set(t.classes) & {"ADT", "ARPI", "first_gen_antiandrogen", "PSMA_radioligand"}
        or t.therapy in ("radical_prostatectomy", "salvage_radiotherapy")
        for t in data.therapies
    )
    if (
        (data.disease_state or prostate_drugs)
        and "prostate_cancer" not in data.diagnoses
        and data.comorbidities.get("prostate_cancer") != "absent"
    ):
        data.diagnoses.insert(0, "prostate_cancer")
        data.comorbidities["prostate_cancer"] = "present"
    if "prostate_cancer" in data.diagnoses and data.sex is None:
        data.sex = "male"
    castrated = data.castration is not None
    crpc = any(f.castration_resistant for f in facts_all)
    metastatic = next((f.metastatic for f in reversed(facts_all) if f.metastatic is not None), None)
    any_site = any(v == "present" for k, v in data.sites.items())
    if data.disease_state is None and "prostate_cancer" in data.diagnoses:
        psa = data.labs.get("psa")
        rising = psa is not None and psa.trend == "rising"
        progressing_on_castration = castrated and (
            rising or any(t.status == "progressed" and "ADT" in t.classes for t in data.therapies)
        )
        if crpc or progressing_on_castration:
            if any_site or metastatic:
                data.disease_state = "mCRPC"
                notes.append("Disease state read as mCRPC (castration-resistant with metastases).")
            elif metastatic is False:
                data.disease_state = "nmCRPC"
                notes.append("Disease state read as nmCRPC (castration-resistant, no metastases stated).")
            else:
                notes.append("Castration-resistant, but whether there are metastases was not stated.")
        elif any_site or metastatic:
            data.disease_state = "mHSPC"
            notes.append("Disease state read as mHSPC (metastatic, not stated to be castration-resistant).")
        elif (
            rising
            and not castrated
            and any(
                t.therapy in ("radical_prostatectomy", "salvage_radiotherapy", "radiotherapy")
                and t.status != "planned"
                for t in data.therapies
            )
        ):
            data.disease_state = "BCR"
            notes.append(
                "Disease state read as biochemical recurrence (rising PSA after local treatment, no metastases stated)."
            )
    if data.disease_state in ("mCRPC", "nmCRPC") and data.castration is None:
        data.castration = "ADT"
        notes.append("Castration assumed to be maintained (CRPC is defined on castrate testosterone).")
    if data.disease_state in ("mCRPC", "nmCRPC"):
        therapies = []
        for t in data.therapies:
            # A line given in the hormone-sensitive setting ("docetaxel for mHSPC") did not fail in CRPC.
            if t.status == "received" and set(t.classes) & _LINE_CLASSES and t.setting not in _SENSITIVE_SETTINGS:
                notes.append(
                    f"{t.therapy}: outcome not stated; read as progression (a previous line in castration-resistant disease)."
                )
                t = t.model_copy(update={"status": "progressed"})
            therapies.append(t)
        data.therapies = therapies
    # KDIGO: eGFR < 60 or albuminuria (UACR >= 30 mg/g) marks CKD; a clinician quoting either means it.
    egfr = data.labs.get("egfr")
    uacr = data.labs.get("uacr")
    if data.comorbidities.get("ckd") is None and (
        (egfr is not None and egfr.value is not None and egfr.value < 60)
        or (uacr is not None and uacr.value is not None and uacr.value >= 30)
        or data.comorbidities.get("albuminuria") == "present"
        or data.comorbidities.get("dialysis") == "present"
    ):
        data.comorbidities["ckd"] = "present"
        if "ckd" not in data.diagnoses:
            data.diagnoses.append("ckd")
        notes.append("Chronic kidney disease read from the kidney values given (eGFR < 60 or albuminuria).")
    if (
        any("Planning a pregnancy" in n for n in notes)
        and data.comorbidities.get("planning_pregnancy") is None
    ):
        data.comorbidities["planning_pregnancy"] = "present"
    # "Albuminuria despite lisinopril" means still on it, not a treatment that failed and must not be repeated:
    # progression is a cancer concept.
    fixed = []
    for t in data.therapies:
        if t.status == "progressed" and not (set(t.classes) & _ONCOLOGY_CLASSES):
            t = t.model_copy(update={"status": "ongoing"})
        fixed.append(t)
    data.therapies = fixed
    # Medications: what is taken now and is not anticancer treatment.
    meds = []
    for t in data.therapies:
        if t.status == "ongoing" and not (set(t.classes) & _ONCOLOGY_CLASSES) and t.therapy not in meds:
            meds.append(t.therapy)
    data.medications = list(dict.fromkeys(list(ctx.medications) + meds))
    pf.infer(data, facts_all, lexicon, notes)
    for site, state in data.sites.items():
        if state == "possible":
            notes.append(f"{site.replace('_', ' ')} involvement is uncertain (possible, not confirmed).")
    for b in data.biomarkers:
        if b.result == "vus":
            notes.append(
                f"{b.name}: variant of uncertain significance — not actionable for label indications."
            )
    data.notes = list(dict.fromkeys(notes))
    return data


# ------------------------------------------------------------------ public API
@functools.lru_cache(maxsize=4)
def _default_extractor(corpus_dir: str) -> PatientExtractor:
    return PatientExtractor(load_lexicon(corpus_dir), corpus_dir)


_EXTRACTORS: dict[int, tuple[Lexicon, PatientExtractor]] = {}


def _extractor_for(lexicon: Lexicon) -> PatientExtractor:
    """Compiled patterns per lexicon object (compiling takes a few ms; questions come many per lexicon)."""
    hit = _EXTRACTORS.get(id(lexicon))
    if hit is None or hit[0] is not lexicon:
        if len(_EXTRACTORS) > 8:
            _EXTRACTORS.clear()
        hit = (lexicon, PatientExtractor(lexicon))
        _EXTRACTORS[id(lexicon)] = hit
    return hit[1]


def _user_turns(history: Sequence[Any] | None) -> list[str]:
    out = []
    for turn in history or []:
        if isinstance(turn, str):
            out.append(turn)
        elif isinstance(turn, dict):
            if turn.get("role", "user") == "user" and turn.get("content"):
                out.append(str(turn["content"]))
        else:
            role = getattr(turn, "role", "user")
            content = getattr(turn, "content", "")
            if role == "user" and content:
                out.append(str(content))
    return out


LLMExtractor = Callable[[str], PatientContext | dict[str, Any] | None]


def extract_context(
    question: str,
    history: Sequence[Any] | None = None,
    prior: PatientContext | None = None,
    lexicon: Lexicon | None = None,
    *,
    llm_extractor: LLMExtractor | None = None,
) -> PatientContext:
    """Read the patient's facts from the earlier user turns, then the question (newest wins).

    `history` holds `{"role", "content"}` dicts (or plain strings = user turns); assistant turns are
    ignored. `prior` is a context from earlier (e.g. the UI's patient panel) to build on: it already
    holds what the earlier turns said, so when it is given the history is not replayed over it
    (replaying would turn newer facts back into older ones). Every fact a later turn replaced is
    listed in `changes`. `llm_extractor`, when given, is called on the
    concatenated turns and may only fill facts the patterns left empty.
    """
    if lexicon is None:
        from assistant.settings import PROJECT_ROOT

        extractor = _default_extractor(str(PROJECT_ROOT / "corpus"))
    else:
        extractor = _extractor_for(lexicon)
    lex = extractor.lexicon
    turns = [*(_user_turns(history) if prior is None else []), question or ""]
    ctx = prior.model_copy(deep=True) if prior is not None else PatientContext()
    start_turn = (max((c.turn for c in ctx.changes), default=-1) + 1) if prior is not None else 0
    all_facts: list[_TurnFacts] = []
    for i, text in enumerate(turns):
        if not text.strip():
            continue
        facts = extractor.extract_turn(text)
        all_facts.append(facts)
        ctx = _merge(ctx, facts, start_turn + i, lex, extractor.primary)
    ctx = _infer(ctx, all_facts, lex)
    ctx = ctx.model_copy(update={"focus": _focus(ctx, all_facts, extractor.primary)})
    ctx = with_tumour(ctx, [t for t in turns if t.strip()], getattr(extractor, "oncology", None), extractor.lexicon)
    if llm_extractor is not None:
        ctx = _add_llm_facts(ctx, llm_extractor("\n".join(turns)))
    return ctx


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


def _focus(ctx: PatientContext, all_facts: list[_TurnFacts], primary: frozenset[str]) -> list[str]:
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


def _add_llm_facts(ctx: PatientContext, extra: PatientContext | dict[str, Any] | None) -> PatientContext:
    """Fill only what the patterns left empty; a disagreement becomes a note, never an override."""
    if extra is None:
        return ctx
    try:
        other = extra if isinstance(extra, PatientContext) else PatientContext.model_validate(extra)
    except Exception as exc:  # the model's output is untrusted; a bad one is logged and ignored
        log.warning("LLM patient extraction ignored: %s", exc)
        return ctx
    data = ctx.model_copy(deep=True)
    notes = list(data.notes)
    for name in _SCALARS:
        mine, theirs = getattr(data, name), getattr(other, name)
        if theirs is None:
            continue
        if mine is None:
            setattr(data, name, theirs)
            notes.append(f"{name} = {theirs} (added by the language-model reader)")
        elif mine != theirs:
            notes.append(
                f"Language-model reader suggested {name} = {theirs}; kept {mine} from the text patterns."
            )
    for d in other.diagnoses:
        if d not in data.diagnoses and d not in data.comorbidities:
            data.diagnoses.append(d)
    for k, v in other.comorbidities.items():
        data.comorbidities.setdefault(k, v)
    for k, v in other.sites.items():
        if k not in data.sites:
            data.sites[k] = v
        elif data.sites[k] != v:
            notes.append(f"Language-model reader suggested site {k} = {v}; kept {data.sites[k]}.")
    for k, v in other.labs.items():
        data.labs.setdefault(k, v)
    have_t = {(t.therapy, t.status == "planned") for t in data.therapies}
    for t in other.therapies:
        if (t.therapy, t.status == "planned") not in have_t and not any(
            x.therapy == t.therapy for x in data.therapies
        ):
            data.therapies.append(t)
    have_b = {b.name for b in data.biomarkers}
    data.biomarkers.extend(b for b in other.biomarkers if b.name not in have_b)
    data.allergies = list(dict.fromkeys(data.allergies + other.allergies))
    have_a = {d.substance for d in data.allergy_details}
    data.allergy_details.extend(d for d in other.allergy_details if d.substance not in have_a)
    data.declined = list(dict.fromkeys(data.declined + other.declined))
    data.medications = list(dict.fromkeys(data.medications + other.medications))
    data.notes = list(dict.fromkeys(notes))
    return data


def describe(ctx: PatientContext) -> str:
    """One-line summary for logs and the CLI."""
    parts = []
    if ctx.diagnoses:
        parts.append("dx=" + ",".join(ctx.diagnoses))
    if ctx.disease_state:
        parts.append(f"state={ctx.disease_state}")
    if ctx.therapies:
        parts.append("tx=" + ",".join(f"{t.therapy}:{t.status}" for t in ctx.therapies))
    if ctx.biomarkers:
        parts.append("bm=" + ",".join(f"{b.name}:{b.result}/{b.origin}" for b in ctx.biomarkers))
    if ctx.sites:
        parts.append("sites=" + ",".join(f"{k}:{v}" for k, v in ctx.sites.items()))
    if ctx.labs:
        parts.append("labs=" + ",".join(f"{k}:{v.value}" for k, v in ctx.labs.items()))
    parts.extend(pf.describe_safety(ctx))
    return " ".join(parts)
