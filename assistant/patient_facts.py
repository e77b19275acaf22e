"""The patient facts that change which drugs are safe: read from one user turn, merged across turns, inferred.

Called by `assistant/patient.py` (which owns clauses, negation scope and therapy matching and hands them in):
pregnancy (weeks, trimester, term, postpartum) and lactation; allergies with reaction and severity; diabetes
type; Child-Pugh class and liver tests as multiples of the upper limit of normal; urinary infection site;
metastatic volume (CHAARTED), de novo vs metachronous presentation and the imaging that shows the metastases;
the phase of VTE treatment; the options the patient declines.

Vocabulary is data: condition ids and their patterns come from `corpus/lexicon/clinical.yaml`, therapy names and
classes from the therapy lexicon. What stays here is grammar (how a fact is phrased), not drug names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from assistant.errors import CorpusValidationError
from assistant.knowledge import Lexicon
from assistant.models import Allergy, LabValue, PatientContext

# (clause text, start, end) -> "present" | "absent" | "possible" (patient.py's NegEx-style scope)
Polarity = Callable[[str, int, int], str]
# text -> [(start, end, therapy id)] (patient.py's lexicon matcher)
Mentions = Callable[[str], list[tuple[int, int, str]]]
Change = Callable[[str, Any, Any], None]


class ClauseLike(Protocol):
    text: str
    start: int
    is_question: bool


# ------------------------------------------------------------------ clinical vocabulary (data)
@dataclass(frozen=True)
class ClinicalVocab:
    """Condition ids with their patterns, in file order, and the ids a question can be about."""

    conditions: tuple[tuple[str, str], ...]
    primary: frozenset[str]


@functools.lru_cache(maxsize=8)
def load_clinical_vocab(corpus_dir: str) -> ClinicalVocab:
    """`conditions:` of corpus/lexicon/clinical.yaml, read once per corpus folder."""
    path = Path(corpus_dir) / "lexicon" / "clinical.yaml"
    rel = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusValidationError(rel, None, f"cannot read the clinical vocabulary: {exc}") from exc
    items = data.get("conditions") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise CorpusValidationError(rel, 1, "clinical vocabulary needs a top-level 'conditions:' list")
    conditions: list[tuple[str, str]] = []
    primary: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise CorpusValidationError(rel, None, f"condition entry without an id: {item!r}")
        cid = item["id"]
        patterns = [p for p in item.get("patterns") or [] if isinstance(p, str) and p]
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise CorpusValidationError(rel, None, f"condition {cid}: bad pattern ({exc})") from exc
        if patterns:
            conditions.append((cid, "|".join(patterns)))  # top-level alternatives keep their own case rule
        if item.get("primary"):
            primary.add(cid)
    return ClinicalVocab(tuple(conditions), frozenset(primary))


def corpus_dir_of(lexicon: Lexicon | None) -> Path:
    """The corpus folder a lexicon was loaded from, when it says so; else the shipped corpus."""
    for attr in ("corpus_dir", "source_dir"):
        d = getattr(lexicon, attr, None)
        if d:
            return Path(d)
    src = getattr(lexicon, "source", None) or getattr(lexicon, "path", None)
    if src:
        p = Path(src)
        return p.parent.parent if p.suffix in (".yaml", ".yml") else p
    from assistant.settings import PROJECT_ROOT

    return PROJECT_ROOT / "corpus"


# ------------------------------------------------------------------ what one turn said
@dataclass
class SafetyFacts:
    """Safety-relevant facts of one user turn (None/empty = the turn said nothing about it)."""

    pregnant: bool | None = None
    gestational_weeks: float | None = None
    trimester: int | None = None
    postpartum: bool | None = None
    lactating: bool | None = None
    allergies: list[str] = field(default_factory=list)
    allergy_details: dict[str, Allergy] = field(default_factory=dict)
    allergies_denied: list[str] = field(default_factory=list)
    no_known_allergies: bool = False
    diabetes_type: str | None = None
    child_pugh: str | None = None
    infection_site: str | None = None
    upper_tract_signs: list[str] = field(default_factory=list)
    disease_volume: str | None = None
    bone_lesions: int | None = None
    bone_beyond_axial: bool | None = None
    presentation: str | None = None
    prior_local_therapy: bool = False
    metastasis_imaging: str | None = None
    care_phase: str | None = None
    declined: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    resistance: dict[str, float] = field(default_factory=dict)
    liver_labs: dict[str, LabValue] = field(default_factory=dict)
    extra_conditions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


SAFETY_SCALARS = (
    "gestational_weeks", "trimester", "postpartum", "lactating", "diabetes_type", "child_pugh",
    "infection_site", "disease_volume", "presentation", "metastasis_imaging", "care_phase",
)  # fmt: skip

_WORD_NUM = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_NUMW = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"


def _n(word: str) -> int:
    return int(word) if word.isdigit() else _WORD_NUM[word.lower()]


def _note(out: SafetyFacts, text: str) -> None:
    if text not in out.notes:
        out.notes.append(text)


def trimester_of(weeks: float) -> int:
    """1: < 14 weeks, 2: 14 to < 28, 3: >= 28 (the usual obstetric split)."""
    return 1 if weeks < 14 else 2 if weeks < 28 else 3


# ------------------------------------------------------------------ pregnancy and lactation
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
    _NUMW
    + r"\s*(days?|weeks?|wks?|months?)\s*(?:post-?partum|post partum|post-?natal(?:ly)?|post-?delivery|"
    r"(?:after|post|since|following)\s+(?:the\s+)?(?:delivery|childbirth|giving birth|birth|(?:a |her |the )?(?:caesarean|cesarean|"
    r"c-section|section|vaginal delivery|baby)))|"
    r"\b(?:delivered|gave birth|had (?:a|her) baby)\s*" + _NUMW + r"\s*(days?|weeks?|wks?|months?) ago",
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
            (p, w) for p, w in found if re.search(r"\b(?:now|currently|today|presently|is)\s*$", text[max(0, p - 12) : p] + " ", re.I)
            or re.search(r"\b(?:now|currently|today)\b", text[p : p + 30], re.I)
        ]
        past = [
            (p, w) for p, w in found
            if re.search(r"\b(?:diagnosed|detected|found|booked|booking|scan(?:ned)?|started|since|from|until|when|was)\b[^.;]{0,15}$", text[max(0, p - 25) : p], re.I)
        ]  # fmt: skip
        pool = current or [f for f in found if f not in past] or found
        weeks = pool[-1][1] if current else pool[0][1]
        if len({w for _, w in found}) > 1:
            _note(out, f"Several gestational ages stated; {weeks:g} weeks read as the current one.")
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
        pp_days = _n(num) * (
            1 if unit.lower().startswith("d") else 7 if unit.lower().startswith("w") else 30.4
        )
    postpartum = bool(_POSTPARTUM.search(text)) or since is not None

    if negative:
        out.pregnant = False
        if weeks is not None or positive == "present":
            _note(
                out,
                "Conflicting statements about pregnancy in one message; read as not pregnant — please confirm.",
            )
        weeks, tri, term = None, None, None
    elif planning:
        out.pregnant = False
        _note(out, "Planning a pregnancy (not pregnant now): drugs harmful in pregnancy need review.")
    elif postpartum and weeks is None and tri is None and not term:
        out.pregnant = False
        if pp_days is not None and pp_days > 42:
            out.postpartum = False
            _note(
                out, f"Delivered about {round(pp_days / 7)} weeks ago: beyond the 6-week postpartum period."
            )
        else:
            out.postpartum = True
    elif weeks is not None or tri is not None or term or positive == "present":
        out.pregnant = True
        out.postpartum = False if not postpartum else None
    elif positive == "possible":
        _note(
            out,
            "Pregnancy is possible but not confirmed: check before prescribing drugs harmful in pregnancy.",
        )
    if out.pregnant:
        if weeks is not None:
            out.gestational_weeks = weeks
            out.trimester = trimester_of(weeks)
            if tri is not None and tri != out.trimester:
                _note(
                    out,
                    f"Stated trimester {tri} does not match {weeks:g} weeks; weeks used — please confirm.",
                )
        elif tri is not None:
            out.trimester = tri
        elif term:
            out.trimester = 3
            _note(out, "At term (37 weeks or more); exact gestational weeks not stated.")
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
                    _note(out, "Breastfeeding status uncertain.")
                break


# ------------------------------------------------------------------ allergies
_REACTIONS: list[tuple[str, str, re.Pattern[str]]] = [
    (name, sev, re.compile(p, flags))
    for name, sev, p, flags in [
        ("anaphylaxis", "severe", r"\banaphyla\w*", re.I),
        ("angioedema", "severe", r"\bangio-?o?edema|\b(?:lip|tongue|throat|facial|airway) swelling|swelling of (?:the |her |his )?(?:lips?|tongue|throat|face)", re.I),
        ("SJS/TEN", "severe", r"\bSJS\b|\bTEN\b|stevens[- ]johnson|toxic epidermal necrolysis", 0),
        ("SJS/TEN", "severe", r"stevens[- ]johnson|toxic epidermal necrolysis", re.I),
        ("DRESS", "severe", r"\bDRESS\b|drug reaction with eosinophilia", 0),
        ("severe cutaneous reaction", "severe", r"\bblister\w*|\bdesquamat\w*|skin (?:peeling|sloughing)|mucosal (?:involvement|ulcer\w*)", re.I),
        ("bronchospasm", "severe", r"\bbronchospasm|\bwheez\w*|difficulty breathing|respiratory distress|throat (?:closing|tightness)", re.I),
        ("serum sickness", "severe", r"serum sickness", re.I),
        # Serious organ toxicity from the drug itself: not an allergy, but the drug is not given again.
        ("hepatotoxicity", "severe", r"\b(?:drug[- ]induced |cholestatic )?(?:hepatitis|hepatotoxicity|jaundice)\b|\bliver (?:injury|damage|toxicity|failure)\b", re.I),
        ("pancreatitis", "severe", r"\bpancreatitis\b", re.I),
        ("agranulocytosis", "severe", r"\bagranulocytosis\b|\baplastic an(?:a)?emia\b", re.I),
        ("pulmonary toxicity", "severe", r"\bpneumonitis\b|\bpulmonary (?:toxicity|reaction|fibrosis)\b", re.I),
        ("tendon rupture", "severe", r"\btendon rupture\b", re.I),
        ("urticaria", "non-severe", r"\bhives\b|\burticari\w*", re.I),
        ("rash", "non-severe", r"\brash\w*|\bmaculopapular|\bexanthem\w*", re.I),
        ("itch", "non-severe", r"\bitch\w*|\bprurit\w*", re.I),
        ("nausea", "intolerance", r"\bnause\w*|\bvomit\w*|\bsick\b", re.I),
        ("diarrhoea", "intolerance", r"\bdiarrh\w*|\bloose (?:stools?|bowels?|motions)", re.I),
        ("GI upset", "intolerance", r"\bGI upset|(?:upset|sore) stomach|stomach upset|gastrointestinal upset|\bdyspepsia", re.I),
        ("headache", "intolerance", r"\bheadaches?\b", re.I),
    ]
]  # fmt: skip
_SEV_ORDER = {"severe": 0, "non-severe": 1, "intolerance": 2, "unknown": 3}
_SEV_WORDS = [
    ("severe", re.compile(r"\b(?:severe|serious|life[- ]threatening|anaphylactic|true)\b", re.I)),
    ("non-severe", re.compile(r"\b(?:mild|minor|low[- ]risk|non-?severe)\b", re.I)),
    ("intolerance", re.compile(r"\b(?:intoleran\w*|side[- ]effects?|not (?:a )?true allergy)\b", re.I)),
]
# Plain words clinicians use for allergen classes; the targets are class tokens (lexicon classes where they exist).
_ALLERGEN_ALIASES = {
    "pcn": "penicillin", "penicillins": "penicillin", "sulfa": "sulfonamide", "sulpha": "sulfonamide",
    "sulfa drugs": "sulfonamide", "sulpha drugs": "sulfonamide", "sulfonamides": "sulfonamide",
    "sulphonamide": "sulfonamide", "sulphonamides": "sulfonamide", "sulfonamide antibiotics": "sulfonamide",
    "cephalosporins": "cephalosporin", "beta-lactam": "beta_lactam", "beta-lactams": "beta_lactam",
    "beta lactam": "beta_lactam", "beta lactams": "beta_lactam", "β-lactam": "beta_lactam",
    "nsaids": "NSAID", "nsaid": "NSAID", "macrolides": "macrolide", "quinolones": "quinolone",
    "fluoroquinolones": "quinolone", "tetracyclines": "tetracycline", "statins": "statin",
}  # fmt: skip
_ALIAS_CLASSES = set(_ALLERGEN_ALIASES.values())
_ALLERGY_STOP = {
    "reaction", "reactions", "medication", "medications", "meds", "drugs", "drug", "it", "this", "that", "them",
    "some", "various", "multiple", "several", "unknown", "none", "nil", "nothing", "other", "known", "not", "non",
    "severe", "mild", "true", "reported", "possible", "documented", "food", "any", "is", "was", "has", "had", "the",
    "with", "and", "his", "her", "seasonal", "environmental", "no", "denies", "history", "prior", "previous",
}  # fmt: skip
_NKDA = re.compile(
    r"\bNKDA\b|\bNKA\b|\bno known (?:drug |medication )?allerg(?:ies|y)\b|\bno (?:drug |medication )?allergies\b|"
    r"\bdenies (?:any )?(?:drug |medication )?allergies\b|\ballergies\s*:\s*(?:none|nil|nkda)\b|\bnil known allerg\w*",
    re.IGNORECASE,
)
_DELABELLED = re.compile(
    r"^[^.;]{0,60}?\b(?:de-?labell?ed|label (?:was )?removed|removed from (?:the|his|her) (?:record|chart)|disproven|"
    r"negative (?:oral |skin |drug )?(?:challenge|test\w*)|tolerated (?:a )?(?:challenge|\w+ since))",
    re.IGNORECASE,
)
# Reaction words a clinician writes before or after the drug ("anaphylaxis after amoxicillin", "penicillin -> hives").
_REACTION_WORDS = (
    r"(?:anaphyla\w*|angio-?o?edema|(?-i:SJS(?:/TEN)?|TEN|DRESS)|stevens[- ]johnson(?: syndrome)?|toxic epidermal necrolysis|hives|"
    r"urticaria\w*|(?:(?:drug|skin|maculopapular|morbilliform|blistering|urticarial|pruritic) )?rash|bronchospasm|itching|(?:lip|tongue|throat|facial|face|airway) swelling|swelling of (?:the |her |his )?"
    r"(?:lips?|tongue|throat|face)|serum sickness|(?:an? )?(?:allergic|adverse|hypersensitivity|drug|severe|serious) reaction|"
    r"(?:drug[- ]induced |cholestatic )?(?:hepatitis|hepatotoxicity|jaundice)|liver (?:injury|damage|toxicity|failure)|"
    r"pancreatitis|agranulocytosis|pneumonitis|pulmonary (?:toxicity|reaction|fibrosis)|tendon rupture)"
)
# "had anaphylaxis (throat swelling, hypotension) after amoxicillin", "developed SJS on co-trimoxazole":
# a reaction, an optional parenthesis of its signs, then the drug it followed.
_REACTION_FIRST = re.compile(
    r"\b(?:had|has|developed|got|experienced|history of|reported|with)?\s*(?:an? )?(?:severe |serious |mild |itchy |generali[sz]ed |"
    r"widespread |life[- ]threatening )*(?P<r>" + _REACTION_WORDS[3:-1] + r")(?:\s*\([^)]{0,80}\))?\s+"
    r"(?:to|with|from|after|on|due to|caused by|secondary to|while (?:on|taking)|when (?:taking|given)|following|attributed to|"
    r"within (?:minutes|hours|days) of)\s+",
    re.IGNORECASE,
)
# "penicillin -> anaphylaxis", "amoxicillin (hives)", "co-trimoxazole: SJS", "lisinopril caused angioedema".
_REACTION_AFTER = re.compile(
    r"^\s*(?:->|→|=>|:|-(?!\w)|\(|\bcaused\b|\bcauses\b|\bgave (?:him|her|them)\b|\btriggered\b|\bled to\b|\bresulted in\b|"
    r"\bproduced\b|\bprovoked\b)\s*(?:an? )?(?:severe |serious |mild |itchy |generali[sz]ed |widespread |life[- ]threatening )*"
    + _REACTION_WORDS,
    re.IGNORECASE,
)
_INTOL_AFTER = re.compile(
    r"^\s*(?:makes|made|gives|gave|causes|caused|upsets|upset)\s+(?:him|her|them|the patient|me)?\s*"
    r"(?P<r>nause\w*|sick|vomit\w*|diarrh\w*|(?:an? )?upset stomach|(?:a )?stomach upset|GI upset|headaches?|dizzy)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Substance:
    id: str
    classes: tuple[str, ...]


def _class_lookup(lexicon: Lexicon) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in lexicon.classes:
        for form in (c.lower(), c.lower().replace("_", " "), c.lower().replace("_", "-")):
            out.setdefault(form, c)
    return out


def resolve_substance(word: str, lexicon: Lexicon) -> _Substance | None:
    """A stated allergen as a substance id and its allergen classes.

    A word that names a class ("penicillin", "sulfa") is the class (plus the classes every member shares:
    an allergy to penicillins is also an allergy to a beta-lactam); a drug name is the lexicon id with its
    classes; anything else is kept as written so the clinician still sees it.
    """
    w = re.sub(r"\s+", " ", word.strip().lower().strip("-:,'\"‘’“”"))
    w = re.sub(r"^(?:the|a|an|any|all|some|to)\s+", "", w)
    w = re.sub(r"\s+(?:drugs?|antibiotics?|medications?|meds|class|group|family)$", "", w) or w
    if not w or w in _ALLERGY_STOP or len(w) < 3:
        return None
    classes = _class_lookup(lexicon)
    for cand in (w, _ALLERGEN_ALIASES.get(w, ""), w[:-1] if w.endswith("s") else ""):
        if not cand:
            continue
        cls = classes.get(cand.lower()) or (cand if cand in _ALIAS_CLASSES else None)
        if cls:
            members = sorted(lexicon.class_members.get(cls, set()))
            shared: list[str] = []
            if members:
                common = set(lexicon.classes_of(members[0]))
                for m in members[1:]:
                    common &= set(lexicon.classes_of(m))
                shared = [c for c in lexicon.classes_of(members[0]) if c in common and c != cls]
            return _Substance(cls, (cls, *shared))
        tid = lexicon.by_name.get(cand)
        if tid:
            return _Substance(tid, tuple(lexicon.classes_of(tid)))
    if len(w.split()) > 3:
        return None
    return _Substance(w, ())


def _reaction_in(segment: str) -> tuple[str, str]:
    """(reaction, severity) named in a segment: the most severe reaction, or a severity word alone."""
    found: list[tuple[int, str, str]] = []
    for name, sev, rx in _REACTIONS:
        if any(not _reaction_negated(segment, m.start()) for m in rx.finditer(segment)):
            found.append((_SEV_ORDER[sev], name, sev))
    if found:
        found.sort()
        names = list(dict.fromkeys(n for _, n, _ in found))
        return ", ".join(names), found[0][2]
    for sev, rx in _SEV_WORDS:
        if rx.search(segment):
            return "", sev
    return "", "unknown"


def allergy_kind(text: str, start: int, end: int) -> str | None:
    """How the drug name at text[start:end] is the object of an allergy statement, if it is.

    "allergy": named as an allergen ("allergic to X", "X allergy") or an intolerance ("X makes her sick");
    "reaction": named with the reaction it caused and no allergy word ("anaphylaxis after X", "X -> hives").
    None: a treatment mention ("had amoxicillin last month").
    """
    before = text[max(0, start - 50) : start]
    after = text[end : end + 60]
    if re.search(r"allerg\w*\s*(?:to|:|-)?\s*(?:[\w-]+,?\s*(?:and |or )?){0,3}$", before, re.I):
        return "allergy"
    if re.match(r"^[- ]?(?:allerg|hypersensitiv|intoleran)", after, re.I):
        return "allergy"
    if _INTOL_AFTER.match(after):
        return "allergy"
    wide = text[max(0, start - 140) : start]
    for m in _REACTION_FIRST.finditer(wide):
        if re.fullmatch(r"(?:[\w-]+\s+){0,2}", wide[m.end() :]) and not _reaction_negated(wide, m.start("r")):
            return "reaction"
    if _REACTION_AFTER.match(after):
        return "reaction"
    return None


def allergy_span(text: str, start: int, end: int) -> bool:
    """Is the drug name at text[start:end] the object of an allergy statement (not a treatment)?"""
    return allergy_kind(text, start, end) is not None


_REACTION_NEG_WORD = re.compile(r"\b(?:no|not|never|without|denies|denied|nor|free of)\b", re.I)
# "not pregnant, had anaphylaxis": a new assertion after a comma ends the denial's reach.
_REACTION_NEG_BREAK = re.compile(
    r"\b(?:but|only|however|although|though|yet|except)\b|[;:]|"
    r"(?:,|\band\b)\s*(?:\w+\s+){0,2}?(?:had|has|developed|got|experienced|reported|reports|is|was|with)\b",
    re.I,
)


def _reaction_negated(segment: str, pos: int) -> bool:
    """'never a rash, swelling or breathing trouble', 'no anaphylaxis': the reaction word is denied."""
    before = segment[max(0, pos - 50) : pos]
    triggers = list(_REACTION_NEG_WORD.finditer(before))
    if not triggers or re.search(r"[.;]", before[triggers[-1].end() :]):
        return False
    return not _REACTION_NEG_BREAK.search(before[triggers[-1].end() :])


def _add_allergy(
    out: SafetyFacts, sub: _Substance, reaction: str, severity: str, mention: str, uncertain: bool
) -> None:
    old = out.allergy_details.get(sub.id)
    if (
        old is not None
        and _SEV_ORDER[old.severity] <= _SEV_ORDER[severity]
        and not (reaction and not old.reaction)
    ):
        return
    out.allergy_details[sub.id] = Allergy(
        substance=sub.id,
        classes=list(sub.classes),
        reaction=reaction,
        severity=severity,
        mention=mention.strip(),  # type: ignore[arg-type]
    )
    if sub.id not in out.allergies:
        out.allergies.append(sub.id)
    if uncertain:
        _note(
            out,
            f"Possible allergy to {sub.id.replace('_', ' ')} (uncertain); kept as an allergy until clarified.",
        )


def read_allergies(
    clauses: Sequence[ClauseLike], lexicon: Lexicon, polarity: Polarity, mentions: Mentions, out: SafetyFacts
) -> None:
    """Allergies with their reaction and severity; 'no known drug allergies' and denials are recorded too."""
    class_rx = _class_word_regex(lexicon)
    for cl in clauses:
        t = cl.text
        if _NKDA.search(t):
            out.no_known_allergies = True
        hits: list[tuple[int, int, str, str]] = []  # (start, end, word, how)
        # "allergic to penicillin and sulfa (hives)", "allergies: PCN (anaphylaxis), codeine".
        for m in re.finditer(
            r"\ballergic\s+to\s+|\b(?:allerg(?:y|ies)|allergic)\s*(?:to\b|:|-(?!\w))\s*", t, re.I
        ):
            # Parentheses hold reactions, not substances: blank them (same length keeps offsets).
            tail = re.sub(r"\([^)]*\)?", lambda x: " " * len(x.group(0)), t[m.end() :])
            stop = re.search(
                r"[.;:\[]| - |\b(?:and (?:is|has|he|she|now|was)|but|with|causing|which|who|that)\b",
                tail,
                re.I,
            )
            seg = tail[: stop.start() if stop else len(tail)]
            for pm in re.finditer(r"[^,/&]+", seg):
                for piece in re.split(r"\band\b|\bor\b", pm.group(0)):
                    word = piece.strip()
                    if word and not _reaction_in(word)[0]:  # "allergy: anaphylaxis" names no substance
                        s = (
                            m.end()
                            + pm.start()
                            + pm.group(0).find(piece)
                            + (len(piece) - len(piece.lstrip()))
                        )
                        hits.append((s, s + len(word), word, "after"))
        # "penicillin allergy", "PCN-allergic", "ACE inhibitor allergy".
        for m in re.finditer(
            r"\b([\w-]+(?:[ -][\w-]+)?)[ -](?:allerg(?:ic|y|ies)|hypersensitivity)\b", t, re.I
        ):
            two = m.group(1)
            # "ACE inhibitor allergy" is one name; in "severe penicillin allergy" only the last word is.
            word = two if " " not in two or _known(two, lexicon) else two.split()[-1]
            hits.append((m.start(1) + two.rfind(word), m.end(), word, "before"))
        # "angioedema with lisinopril", "SJS from TMP-SMX", "anaphylaxis (throat swelling) after amoxicillin":
        # the reaction is read from its own words (and their parenthesis), not from an earlier drug's.
        reaction_from: dict[int, int] = {}
        for m in _REACTION_FIRST.finditer(t):
            if _reaction_negated(t, m.start("r")):
                continue  # "no rash with amoxicillin" names no allergy
            cm = class_rx.match(t[m.end() :]) if class_rx else None
            if cm and not any(s0 == 0 and e0 >= cm.end() for s0, e0, _ in mentions(t[m.end() : m.end() + 60])):
                hits.append((m.end(), m.end() + cm.end(), cm.group(0), "reaction"))
                reaction_from[m.end()] = m.start()
                continue
            for s, e, _tid in mentions(t[m.end() : m.end() + 60]):
                if re.fullmatch(r"(?:[\w-]+\s+){0,2}", t[m.end() : m.end() + s]):
                    hits.append((m.end() + s, m.end() + e, t[m.end() + s : m.end() + e], "reaction"))
                    reaction_from[m.end() + s] = m.start()
                break
        # "penicillin makes her nauseous"; "penicillin -> anaphylaxis", "lisinopril caused angioedema".
        for s, e, _tid in mentions(t):
            if _INTOL_AFTER.match(t[e:]):
                hits.append((s, e, t[s:e], "intolerance"))
            elif _REACTION_AFTER.match(t[e:]):
                hits.append((s, e, t[s:e], "after"))
        if class_rx:
            for cm in class_rx.finditer(t):
                if _INTOL_AFTER.match(t[cm.end() :]):
                    hits.append((cm.start(), cm.end(), cm.group(0), "intolerance"))
                elif _REACTION_AFTER.match(t[cm.end() :]):
                    hits.append((cm.start(), cm.end(), cm.group(0), "after"))
        seen: set[int] = set()
        resolved = sorted((h, sub) for h in hits if (sub := resolve_substance(h[2], lexicon)) is not None)
        for i, ((s, e, _word, how), sub) in enumerate(resolved):
            if s in seen:
                continue
            seen.add(s)
            nxt = next((h[0] for h, _ in resolved[i + 1 :] if h[0] > e), len(t))
            window_after = t[e : min(nxt, e + 90)]
            window_before = t[max(0, s - 40) : s]
            if how == "reaction":
                reaction, severity = _reaction_in(t[reaction_from.get(s, max(0, s - 60)) : s])
            elif how == "intolerance":
                reaction, severity = _reaction_in(t[e : e + 40])
                severity = "intolerance" if severity == "unknown" else severity
            else:
                reaction, severity = _reaction_in(window_after)
                if not reaction and how == "before":
                    r2, s2 = _reaction_in(re.split(r"[),;]", window_before[-25:])[-1])
                    reaction, severity = (r2, s2) if (r2 or s2 != "unknown") else (reaction, severity)
            trigger = re.search(r"allerg\w*|hypersensitiv\w*", t[max(0, s - 30) : e + 15], re.I)
            anchor_s = s
            pol = polarity(t, anchor_s, e)
            if trigger and how == "after":
                pol = polarity(t, max(0, s - 30) + trigger.start(), max(0, s - 30) + trigger.end())
            elif how == "reaction" and pol == "absent":
                pol = "present"  # a denied reaction was skipped above; "not pregnant, had SJS on X" is not a denial
            if pol == "absent" or _DELABELLED.match(t[e:]):
                if sub.id not in out.allergies_denied:
                    out.allergies_denied.append(sub.id)
                if _DELABELLED.match(t[e:]):
                    _note(out, f"Allergy to {sub.id.replace('_', ' ')} reported as disproven or removed.")
                continue
            if re.search(
                r"\b(?:as a (?:child|kid|teenager|teen|baby)|in (?:childhood|(?:his|her) (?:teens|youth))|childhood|decades ago|years ago)\b",
                window_after,
                re.I,
            ):
                _note(
                    out,
                    f"Allergy to {sub.id.replace('_', ' ')}: reaction long ago ({reaction or 'type not stated'}).",
                )
            _add_allergy(
                out, sub, reaction, severity, t[max(0, s - 20) : min(len(t), e + 40)], pol == "possible"
            )
    if out.allergies:
        out.no_known_allergies = False


def _known(word: str, lexicon: Lexicon) -> bool:
    w = word.lower()
    return w in lexicon.by_name or w in _class_lookup(lexicon) or w in _ALLERGEN_ALIASES


@functools.lru_cache(maxsize=8)
def _class_word_regex_cached(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alt = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alt})s?(?![\w-])", re.IGNORECASE)


def _class_word_regex(lexicon: Lexicon) -> re.Pattern[str] | None:
    words = {f for f in _class_lookup(lexicon) if len(f) >= 4} | {a for a in _ALLERGEN_ALIASES if len(a) >= 3}
    return _class_word_regex_cached(tuple(sorted(words)))


# ------------------------------------------------------------------ diabetes type, Child-Pugh, liver tests
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
                    _note(out, "History of gestational diabetes (not current diabetes).")
                    continue
                found.setdefault(dtype, m.group(0))
    if not found:
        return
    if len(found) > 1:
        _note(
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
        _note(out, "LADA read as autoimmune (type 1) diabetes for drug safety.")


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
            _note(out, f"Child-Pugh class {out.child_pugh} from the stated score {score}.")
    if out.child_pugh:
        out.extra_conditions.setdefault("liver_disease", "present")


_LIVER_NAMES = r"(bilirubin|total bilirubin|T\.? ?bili|AST|ALT|SGOT|SGPT|ALP|alk(?:aline)? phos(?:phatase)?|transaminases|aminotransferases|LFTs|liver enzymes)"
_ULN_TAIL = (
    r"(?:\s*(?:x|×|times|-fold|fold)\s*(?:the\s+)?(?:ULN|upper limit(?:s)? of normal|upper limit|normal))"
)
_ULN_MULT = re.compile(
    _LIVER_NAMES
    + r"((?:\s*(?:,|and|&|/)\s*(?:AST|ALT|ALP|bilirubin))*)\s*(?:is|are|of|=|was|were|:|at|now|elevated|raised|up|to|>|>=|above|about|around|~|\s)*\s*"
    r"(\d+(?:\.\d+)?|twice|two|three|four|five|six|eight|ten)\s*(?:x|×|times|-fold|fold)?\s*(?:the\s+)?(?:ULN|upper limit(?:s)? of normal|upper limit|normal)",
    re.IGNORECASE,
)
_MULT_WORDS = {"twice": 2.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0, "six": 6.0, "eight": 8.0, "ten": 10.0}
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
    """Liver tests given as multiples of ULN, or with their ULN stated (absolute values stay with patient.py)."""
    for m in _ULN_MULT.finditer(text):
        names = _liver_key(m.group(1)) + [
            k for w in re.findall(r"AST|ALT|ALP|bilirubin", m.group(2) or "", re.I) for k in _liver_key(w)
        ]
        word = m.group(3).lower()
        if word in _MULT_WORDS:
            mult = _MULT_WORDS[word]
        elif re.search(r"(?:x|×|times|fold)\s*(?:the\s+)?(?:ULN|upper|normal)", m.group(0)[m.end(3) - m.start(0) :], re.I):
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
        _note(out, "Liver tests described as normal: read as at most the upper limit of normal.")


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
_HISTORY = re.compile(
    r"\b(?:history of|previous|prior|recurrent|last (?:year|month)|in (?:19|20)\d\d|years? ago)\b[^.;]{0,20}$",
    re.I,
)


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
        _note(out, f"Urinary infection read as urosepsis ({', '.join(dict.fromkeys(sepsis))}).")
    elif upper:
        out.infection_site = "pyelonephritis"
        if not any("pyelo" in s for s in upper):
            _note(
                out,
                f"Upper urinary tract infection (pyelonephritis) read from: {', '.join(dict.fromkeys(upper))}.",
            )
    elif lower:
        out.infection_site = "cystitis"


# ------------------------------------------------------------------ prostate: volume, presentation, imaging
_VOLUME_HIGH = re.compile(
    r"\bhigh[- ](?:volume|burden)\b(?! (?:cent|hospital|surgeon|unit|practice))|\bHVD\b", re.I
)
_VOLUME_LOW = re.compile(
    r"\blow[- ](?:volume|burden)\b(?! (?:cent|hospital|surgeon|unit|practice))|\bLVD\b|\boligometasta\w*",
    re.I,
)
_BONE_COUNT = re.compile(
    r"\b"
    + _NUMW
    + r"\s+(?:\w+\s+){0,2}?(?:bone|bony|osseous|skeletal|sclerotic|spinal|vertebral|rib|pelvic)\s*(?:mets|metastas[ie]s|lesions?|deposits?)\b",
    re.I,
)
_AXIAL = r"spine|spinal|vertebra\w*|lumbar|thoracic|cervical|sacr\w*|pelvi\w*|iliac|ilium|ischi\w*|pubi\w*|acetabul\w*|\bL\d|\bT\d{1,2}\b"
_BEYOND = re.compile(
    r"\b(?:ribs?|femur|femoral|humer\w*|skull|calvari\w*|scapula\w*|sternum|sternal|clavicle\w*|appendicular|long bones?|tibia\w*|radius|ulna)\b",
    re.I,
)
_DE_NOVO = re.compile(
    r"\bde[- ]novo\b|\bsynchronous\b|\bmetastatic at (?:diagnosis|presentation)\b|\b(?:newly diagnosed|new diagnosis of) metastatic\b|"
    r"\bpresented with metasta\w+|\bmetastases at (?:diagnosis|presentation)\b|\bM1 at diagnosis\b|"
    # "newly diagnosed prostate cancer with three bone metastases", "prostate never treated"
    r"\b(?:newly|just|recently) diagnosed\b[^.;]{0,60}\bmetasta\w*|\bnew diagnosis\b[^.;]{0,80}\bmetasta\w*|"
    r"\b(?:prostate|primary(?: tumou?r)?)\s+(?:has\s+)?(?:never been|not been|not yet been|never|not)\s+treated\b|"
    r"\b(?:untreated|treatment[- ]na[iï]ve|intact)\s+(?:prostate|primary)\b",
    re.I,
)
_METACHRONOUS = re.compile(
    r"\bmetachronous\b|\b(?:relapsed|recurred|recurrence|relapse|progressed)\b[^.;]{0,40}\bafter\b[^.;]{0,30}"
    r"(?:prostatectomy|radiotherapy|radiation|\bRP\b|\bEBRT\b|brachytherapy|local (?:treatment|therapy)|radical)|"
    r"\b(?:developed|new|now (?:has|with))\b[^.;]{0,25}\bmetasta\w*[^.;]{0,40}\b(?:after|following|years after|since)\b[^.;]{0,30}"
    r"(?:prostatectomy|radiotherapy|radiation|\bRP\b|\bEBRT\b|brachytherapy|local (?:treatment|therapy))",
    re.I,
)
_LOCAL = re.compile(
    r"\b(?:radical|curative|definitive|primary)\s+(?:radiotherapy|radiation(?: therapy)?|RT|EBRT|IMRT|VMAT|brachytherapy|SBRT)\b|"
    r"\b(?:radiotherapy|radiation(?: therapy)?|RT|EBRT|IMRT|brachytherapy)\s+(?:to|of)\s+the\s+prostate\b|\bprostate (?:radiotherapy|RT|EBRT)\b|"
    r"\b(?:radical )?prostatectomy\b|\bpost-?RP\b|\bRALP\b|\bbrachytherapy\b",
    re.I,
)
_PSMA_ONLY = re.compile(
    r"\bPSMA[- ]?(?:PET[- ]?)?only\b|\bonly (?:seen |visible |detected |evident )?on PSMA|"
    r"\bPSMA[- ]?PET\b[^.]{0,80}\b(?:CT|bone scan|conventional imaging|MRI)\b[^.;]{0,40}\b(?:negative|clear|unremarkable|normal|no (?:evidence|metasta\w*|lesions?))|"
    r"\b(?:CT|bone scan|conventional imaging|MRI)\b[^.;]{0,40}\b(?:negative|clear|unremarkable|normal|no (?:evidence|metasta\w*|lesions?))\b[^.]{0,80}\bPSMA\b|"
    # "PSMA PET shows two nodes with negative CT and bone scan"
    r"\bPSMA\b[^.]{0,80}\b(?:negative|clear|unremarkable|normal)\s+(?:CT|bone scan|conventional imaging|MRI|staging)\b|"
    r"\b(?:negative|clear|unremarkable|normal)\s+(?:CT|bone scan|conventional imaging|MRI)\b[^.]{0,80}\bPSMA\b|"
    r"\b(?:negative|no (?:metastases|disease) on) conventional imaging\b",
    re.I,
)
_CONVENTIONAL = re.compile(
    r"\b(?:CT|bone scan|MRI|conventional imaging|x-ray|scintigraphy)\b[^.;]{0,30}\b(?:shows?|showed|revealed?|confirm\w*|demonstrat\w+|with|positive)\b[^.;]{0,40}"
    r"(?:metasta|mets\b|lesions?|nodes?|deposits?)|(?:metasta\w+|mets|lesions?|deposits?) (?:on|seen on|visible on|confirmed (?:on|by)) (?:CT|bone scan|MRI|conventional)|"
    r"\bpositive bone scan\b|\bbone scan[- ]positive\b",
    re.I,
)


def read_prostate(text: str, clauses: Sequence[ClauseLike], polarity: Polarity, out: SafetyFacts) -> None:
    hi = _VOLUME_HIGH.search(text)
    lo = _VOLUME_LOW.search(text)
    if hi and polarity(text, hi.start(), hi.end()) == "present":
        out.disease_volume = "high"
    elif lo and polarity(text, lo.start(), lo.end()) == "present":
        out.disease_volume = "low"
        if "oligo" in lo.group(0).lower():
            _note(
                out,
                "Oligometastatic disease read as low volume (CHAARTED: fewer than 4 bone lesions, no visceral spread).",
            )
    bc = _BONE_COUNT.search(text)
    if bc:
        out.bone_lesions = _n(bc.group(1))
        around = text[bc.start() : min(len(text), bc.end() + 80)]
        if _BEYOND.search(around):
            out.bone_beyond_axial = True
        elif re.search(
            rf"\b(?:all|only|confined to|limited to)\b[^.;]{{0,30}}(?:{_AXIAL})|\b(?:{_AXIAL})[^.;]{{0,15}}\bonly\b",
            around,
            re.I,
        ):
            out.bone_beyond_axial = False
    elif _BEYOND.search(text) and re.search(
        r"\b(?:bone|bony|osseous|skeletal)\b[^.;]{0,30}(?:mets|metasta|lesion)", text, re.I
    ):
        out.bone_beyond_axial = True
    if _METACHRONOUS.search(text):
        out.presentation = "metachronous"
    elif _DE_NOVO.search(text):
        out.presentation = "de_novo"
    for cl in clauses:
        for m in _LOCAL.finditer(cl.text):
            if polarity(cl.text, m.start(), m.end()) != "present":
                continue
            before = cl.text[max(0, m.start() - 50) : m.start()]
            if cl.is_question or re.search(
                r"\b(?:consider\w*|plan\w*|offer\w*|candidate for|eligible for|add(?:ing)?|should|would|role of|for)\s*(?:\w+\s+){0,2}$",
                before,
                re.I,
            ):
                continue  # proposed, not received
            out.prior_local_therapy = True
    if (
        out.presentation == "de_novo"
        and out.prior_local_therapy
        and not re.search(r"\bde[- ]novo\b|\bsynchronous\b", text, re.I)
    ):
        out.presentation = None  # "newly diagnosed bone metastases after prostatectomy" is metachronous (infer decides)
    if _PSMA_ONLY.search(text):
        out.metastasis_imaging = "psma_pet_only"
    elif _CONVENTIONAL.search(text):
        out.metastasis_imaging = "conventional"


# ------------------------------------------------------------------ phase of VTE treatment
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
    _NUMW
    + r"\s*(weeks?|months?|years?)\s*(?:ago|into|of (?:treatment|therapy|anticoagula\w*|\w+ therapy)|on \w+)",
    re.I,
)


def read_care_phase(text: str, out: SafetyFacts) -> None:
    ext, ini = _EXTENDED.search(text), _INITIAL.search(text)
    dur = _DURATION.search(text)
    months: float | None = None
    if dur:
        v, unit = _n(dur.group(1)), dur.group(2).lower()
        months = v / 4.345 if unit.startswith("w") else v * 12 if unit.startswith("y") else float(v)
    if ext:
        out.care_phase = "extended"
    elif months is not None and months >= 3:
        out.care_phase = "extended"
        _note(
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
    class_rx = _class_word_regex(lexicon)
    classes = _class_lookup(lexicon)
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
                    c = classes.get(w) or _ALLERGEN_ALIASES.get(w)
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
                _note(
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
        _note(out, f"Patient preference: {pref.group(0).strip()}.")


def declined_span(text: str, start: int) -> bool:
    """Is the therapy named at text[start:] the object of a refusal ('refuses docetaxel')?"""
    before = text[max(0, start - 60) : start]
    verbs = list(_DECLINE.finditer(before))
    if not verbs:
        return False
    gap = before[verbs[-1].end() :]
    return not re.search(r"[.;?!]|\b(?:but|because|and (?:is|has|wants|prefers))\b", gap, re.I)


# ------------------------------------------------------------------ one turn
def read_turn(
    text: str,
    clauses: Sequence[ClauseLike],
    lexicon: Lexicon,
    polarity: Polarity,
    mentions: Mentions,
    out: SafetyFacts,
) -> None:
    """Fill `out` with the safety facts one user turn states."""
    read_pregnancy(text, clauses, polarity, out)
    read_allergies(clauses, lexicon, polarity, mentions, out)
    read_diabetes_type(clauses, polarity, out)
    read_child_pugh(text, out)
    read_liver_labs(text, out)
    read_infection_site(clauses, polarity, out)
    read_prostate(text, clauses, polarity, out)
    read_care_phase(text, out)
    read_declined(text, lexicon, mentions, out)
    read_resistance(text, mentions, out)


# "Local E. coli resistance to TMP-SMX is 30%", "TMP-SMX resistance of 25 %", "30% resistance to levofloxacin".
_RATE = r"(\d{1,3}(?:\.\d+)?)\s?%"
_RES_AFTER = re.compile(r"^[\s-]*(?:resistance|resistant)\b[^.;\d]{0,30}?(?:is|of|at|=|:|rate|around|about|~)?\s*" + _RATE, re.I)
_RES_BEFORE = re.compile(r"(?:resistance|resistant)(?:\s+rates?)?\s+(?:to|for|of)\s+(?:[\w-]+\s+){0,1}$", re.I)
_RES_RATE_NEXT = re.compile(r"^[^.;\d]{0,25}?(?:is|of|at|=|:|around|about|~)?\s*" + _RATE, re.I)
_RES_RATE_PREV = re.compile(_RATE + r"\s*(?:local\s+)?(?:[\w.]+\s+)?(?:resistance|resistant)\s+(?:rates?\s+)?(?:to|for|of)\s+$", re.I)


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


# ------------------------------------------------------------------ across turns
def merge_turn(data: PatientContext, facts: SafetyFacts, change: Change, *, other_infection: bool) -> None:
    """Fold one turn's safety facts into the context (scalars are merged by the caller's generic loop)."""
    # A turn that says she is no longer pregnant (delivered, test negative) clears the pregnancy details.
    if facts.pregnant is False:
        for name in ("gestational_weeks", "trimester"):
            if getattr(data, name) is not None:
                change(name, getattr(data, name), None)
                setattr(data, name, None)
    if facts.pregnant is True and facts.postpartum is None and data.postpartum:
        change("postpartum", True, False)
        data.postpartum = False
    # A new trimester stated without weeks makes older weeks stale.
    if (
        facts.trimester is not None
        and facts.gestational_weeks is None
        and data.gestational_weeks is not None
        and trimester_of(data.gestational_weeks) != facts.trimester
    ):
        change("gestational_weeks", data.gestational_weeks, None)
        data.gestational_weeks = None
    # Allergies: a denial or 'no known drug allergies' removes earlier ones (shown as a change).
    allergies = list(data.allergies)
    details = {d.substance: d for d in data.allergy_details}
    removed = list(facts.allergies_denied)
    if facts.no_known_allergies and not facts.allergies:
        removed.extend(allergies)
    for sub in removed:
        if sub in allergies:
            change(f"allergy:{sub}", "present", "absent")
            allergies.remove(sub)
            details.pop(sub, None)
    for sub in facts.allergies:
        new = facts.allergy_details.get(sub)
        old = details.get(sub)
        if new is not None:
            if old is not None and old.severity != new.severity:
                if new.severity == "unknown" or (not new.reaction and old.reaction):
                    new = old  # "penicillin allergy" again does not erase the reaction given before
                else:
                    change(f"allergy:{sub}", old.severity, new.severity)
            details[sub] = new
        if sub not in allergies:
            allergies.append(sub)
    data.allergies = allergies
    data.allergy_details = [details[a] for a in allergies if a in details]
    # Declined options: a later acceptance lifts a refusal.
    declined = list(data.declined)
    for d in facts.accepted:
        if d in declined:
            change(f"declined:{d}", "declined", "accepted")
            declined.remove(d)
    for d in facts.declined:
        if d not in declined:
            declined.append(d)
    data.declined = declined
    if facts.resistance:
        data.local_resistance = {**data.local_resistance, **facts.resistance}
    # A follow-up turn with flank pain / CVA tenderness upgrades an earlier cystitis.
    if (
        facts.infection_site is None
        and facts.upper_tract_signs
        and not other_infection
        and data.comorbidities.get("uti") == "present"
        and data.infection_site in (None, "cystitis")
    ):
        change("infection_site", data.infection_site, "pyelonephritis")
        data.infection_site = "pyelonephritis"
        data.notes.append(
            "Upper urinary tract infection (pyelonephritis) read from: "
            + ", ".join(dict.fromkeys(facts.upper_tract_signs))
            + "."
        )


_CRPC_STATES = {"mCRPC": "nmCRPC"}
_IMMUNOSUPPRESSANT = re.compile(r"immunosuppress|calcineurin|antimetabolite_immuno|mTOR_inhibitor", re.I)


def infer(data: PatientContext, facts_all: Sequence[SafetyFacts], lexicon: Lexicon, notes: list[str]) -> None:
    """Cross-fact inferences for the safety facts; each one leaves a note so the clinician sees it."""
    comorb = data.comorbidities

    def add_condition(cid: str, why: str) -> None:
        if comorb.get(cid) is None:
            comorb[cid] = "present"
            notes.append(why)

    # Pregnancy can only be about a woman of child-bearing age.
    if data.sex == "male":
        if (
            data.pregnant
            or data.lactating
            or data.postpartum
            or any(n.startswith("Pregnancy is possible") for n in notes)
        ):
            notes.append("Pregnancy/lactation statements ignored: the patient is male.")
        notes[:] = [n for n in notes if not n.startswith(("Pregnancy is possible", "Breastfeeding status"))]
        data.pregnant = False if data.pregnant else data.pregnant
        data.gestational_weeks = data.trimester = None
        data.lactating = None if data.lactating else data.lactating
        data.postpartum = None if data.postpartum else data.postpartum
    elif data.pregnant is None and data.sex == "female" and data.age is not None and data.age >= 55:
        data.pregnant = False
        notes.append(f"Not pregnant assumed (age {data.age}).")
    elif data.pregnant is None and comorb.get("menopause") == "present":
        data.pregnant = False
        notes.append("Not pregnant (postmenopausal).")
    if data.pregnant is None and data.diabetes_type == "gestational" and data.sex != "male":
        data.pregnant = True
        notes.append("Pregnant assumed from current gestational diabetes.")
    if data.pregnant and data.gestational_weeks is not None and data.trimester is None:
        data.trimester = trimester_of(data.gestational_weeks)  # type: ignore[assignment]
    if data.pregnant and data.trimester is None:
        notes.append("Pregnant; gestational age not stated.")
    # Diabetes: every stated type is still diabetes.
    if data.diabetes_type in ("type1", "type2", "other"):
        add_condition("diabetes", "Diabetes recorded from the stated type.")
        if "diabetes" not in data.diagnoses and comorb.get("diabetes") == "present":
            data.diagnoses.append("diabetes")
    # Liver: a Child-Pugh class means chronic liver disease, usually cirrhosis.
    if data.child_pugh is not None:
        add_condition("liver_disease", f"Liver disease recorded from Child-Pugh class {data.child_pugh}.")
    # Transplant / immunosuppressive drugs → immunosuppression (an SGLT2i, live-vaccine … label matter).
    on_immuno = [
        t.therapy for t in data.therapies
        if t.status in ("ongoing", "received") and any(_IMMUNOSUPPRESSANT.search(c) for c in t.classes)
    ]  # fmt: skip
    if on_immuno and comorb.get("immunosuppression") is None:
        comorb["immunosuppression"] = "present"
        notes.append("Immunosuppression recorded from current medication (" + ", ".join(on_immuno) + ").")
    if comorb.get("organ_transplant") == "present" and comorb.get("immunosuppression") is None:
        comorb["immunosuppression"] = "present"
        notes.append("Organ transplant recipient: maintenance immunosuppression assumed — please confirm.")
    # Prostate cancer facts only mean something for prostate cancer.
    if "prostate_cancer" in data.diagnoses:
        _infer_prostate(data, facts_all, notes)
    else:
        data.disease_volume = data.presentation = data.metastasis_imaging = None
    # Urinary infection site only for a urinary infection.
    if data.infection_site is not None and comorb.get("uti") not in ("present", "possible"):
        comorb["uti"] = "present"
        if "uti" not in data.diagnoses:
            data.diagnoses.append("uti")
    # VTE phase only for VTE.
    if not ({"vte", "dvt", "pe"} & {c for c, v in comorb.items() if v in ("present", "possible")}):
        data.care_phase = None
        # "30 years ago", "25 years on insulin": a duration read as a VTE phase means nothing without VTE.
        notes[:] = [n for n in notes if not n.startswith("Treatment phase read as")]


def _infer_prostate(data: PatientContext, facts_all: Sequence[SafetyFacts], notes: list[str]) -> None:
    local = any(f.prior_local_therapy for f in facts_all) or any(
        t.therapy in ("radical_prostatectomy", "salvage_radiotherapy", "radiotherapy") and t.status != "planned"
        for t in data.therapies
    )
    metastatic = data.disease_state in ("mHSPC", "mCRPC") or any(v == "present" for v in data.sites.values())
    # Imaging: trial and label definitions of M0 / M1 rest on conventional imaging (CT, bone scan).
    if data.metastasis_imaging == "psma_pet_only":
        if data.disease_state == "mCRPC":
            data.disease_state = "nmCRPC"
            notes[:] = [n for n in notes if not n.startswith("Disease state read as mCRPC")]
            notes.append(
                "Metastases seen on PSMA PET only with negative conventional imaging: read as nmCRPC "
                "(trials and labels define metastatic disease on CT/bone scan)."
            )
        elif (
            data.disease_state is None
            and data.castration is not None
            and any(t.status == "progressed" for t in data.therapies)
        ):
            data.disease_state = "nmCRPC"
            notes.append(
                "Castration-resistant with PSMA-PET-only lesions: read as nmCRPC (conventional imaging negative)."
            )
        elif data.disease_state == "mHSPC":
            notes.append(
                "Metastases seen on PSMA PET only: trials defining mHSPC used conventional imaging — "
                "the evidence for metastatic treatment may not apply."
            )
    if data.disease_state not in ("mHSPC", "mCRPC") and not metastatic:
        return
    # Volume by CHAARTED: visceral metastases, or >= 4 bone lesions with >= 1 beyond the spine and pelvis.
    if data.disease_volume is None and data.disease_state in ("mHSPC", "mCRPC"):
        count = next((f.bone_lesions for f in reversed(facts_all) if f.bone_lesions is not None), None)
        beyond = next(
            (f.bone_beyond_axial for f in reversed(facts_all) if f.bone_beyond_axial is not None), None
        )
        if data.sites.get("visceral") == "present":
            data.disease_volume = "high"
            notes.append("High volume by CHAARTED (visceral metastases).")
        elif count is not None and count >= 4 and beyond:
            data.disease_volume = "high"
            notes.append(
                f"High volume by CHAARTED ({count} bone lesions, at least one beyond the spine/pelvis)."
            )
        elif count is not None and count >= 4 and beyond is False:
            data.disease_volume = "low"
            notes.append(
                f"Low volume by CHAARTED ({count} bone lesions, all in the spine/pelvis; no visceral disease stated)."
            )
        elif count is not None and count >= 4:
            notes.append(
                f"{count} bone lesions: whether one lies beyond the spine/pelvis decides CHAARTED volume — not stated."
            )
        elif count is not None and data.sites.get("visceral") != "possible":
            data.disease_volume = "low"
            notes.append(f"Low volume by CHAARTED ({count} bone lesion(s), no visceral metastases stated).")
    # Presentation: metastases after earlier radical local treatment are metachronous.
    if data.presentation is None and data.disease_state in ("mHSPC", "mCRPC") and local:
        data.presentation = "metachronous"
        notes.append(
            "Metachronous presentation assumed (metastases after earlier local treatment of the prostate)."
        )


def describe_safety(ctx: PatientContext) -> list[str]:
    """Short phrases for the one-line summary (describe) and prompts."""
    parts: list[str] = []
    if ctx.pregnant:
        bits = [
            f"{ctx.gestational_weeks:g}w" if ctx.gestational_weeks is not None else "",
            f"T{ctx.trimester}" if ctx.trimester else "",
        ]
        parts.append("pregnant" + ("(" + ",".join(b for b in bits if b) + ")" if any(bits) else ""))
    elif ctx.pregnant is False and ctx.sex == "female":
        parts.append("not-pregnant")
    if ctx.postpartum:
        parts.append("postpartum")
    if ctx.lactating:
        parts.append("lactating")
    if ctx.allergies:
        det = {d.substance: d for d in ctx.allergy_details}
        parts.append(
            "allergy="
            + ",".join(
                a
                + (
                    f"({det[a].reaction or det[a].severity})"
                    if a in det and (det[a].reaction or det[a].severity != "unknown")
                    else ""
                )
                for a in ctx.allergies
            )
        )
    for name in (
        "diabetes_type",
        "child_pugh",
        "infection_site",
        "disease_volume",
        "presentation",
        "metastasis_imaging",
        "care_phase",
    ):
        v = getattr(ctx, name)
        if v is not None:
            parts.append(f"{name}={v}")
    uln = [f"{k}:{v.uln_multiple:g}xULN" for k, v in ctx.labs.items() if v.uln_multiple is not None]
    if uln:
        parts.append("uln=" + ",".join(uln))
    if ctx.declined:
        parts.append("declined=" + ",".join(ctx.declined))
    return parts
