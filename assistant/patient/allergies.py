"""Drug allergies from one turn: the substance (a lexicon id or allergen class), its reaction and severity;
"no known drug allergies", denials and de-labelled allergies too.

A safety reader, called by `extract.PatientExtractor.extract_turn`; `allergy_kind` also tells the therapy reader
when a drug name is an allergen rather than a treatment. Allergen class words map to lexicon classes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.knowledge import Lexicon
from assistant.models import Allergy
from assistant.patient.facts import (
    ClauseLike,
    Mentions,
    Polarity,
    SafetyFacts,
    add_note,
)

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
ALLERGEN_ALIASES = {
    "pcn": "penicillin", "penicillins": "penicillin", "sulfa": "sulfonamide", "sulpha": "sulfonamide",
    "sulfa drugs": "sulfonamide", "sulpha drugs": "sulfonamide", "sulfonamides": "sulfonamide",
    "sulphonamide": "sulfonamide", "sulphonamides": "sulfonamide", "sulfonamide antibiotics": "sulfonamide",
    "cephalosporins": "cephalosporin", "beta-lactam": "beta_lactam", "beta-lactams": "beta_lactam",
    "beta lactam": "beta_lactam", "beta lactams": "beta_lactam", "β-lactam": "beta_lactam",
    "nsaids": "NSAID", "nsaid": "NSAID", "macrolides": "macrolide", "quinolones": "quinolone",
    "fluoroquinolones": "quinolone", "tetracyclines": "tetracycline", "statins": "statin",
}  # fmt: skip
_ALIAS_CLASSES = set(ALLERGEN_ALIASES.values())
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


def class_lookup(lexicon: Lexicon) -> dict[str, str]:
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
    classes = class_lookup(lexicon)
    for cand in (w, ALLERGEN_ALIASES.get(w, ""), w[:-1] if w.endswith("s") else ""):
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
        add_note(
            out,
            f"Possible allergy to {sub.id.replace('_', ' ')} (uncertain); kept as an allergy until clarified.",
        )


def read_allergies(
    clauses: Sequence[ClauseLike], lexicon: Lexicon, polarity: Polarity, mentions: Mentions, out: SafetyFacts
) -> None:
    """Allergies with their reaction and severity; 'no known drug allergies' and denials are recorded too."""
    class_rx = class_word_regex(lexicon)
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
            if cm and not any(
                s0 == 0 and e0 >= cm.end() for s0, e0, _ in mentions(t[m.end() : m.end() + 60])
            ):
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
                    add_note(out, f"Allergy to {sub.id.replace('_', ' ')} reported as disproven or removed.")
                continue
            if re.search(
                r"\b(?:as a (?:child|kid|teenager|teen|baby)|in (?:childhood|(?:his|her) (?:teens|youth))|childhood|decades ago|years ago)\b",
                window_after,
                re.I,
            ):
                add_note(
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
    return w in lexicon.by_name or w in class_lookup(lexicon) or w in ALLERGEN_ALIASES


@functools.lru_cache(maxsize=8)
def _class_word_regex_cached(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alt = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alt})s?(?![\w-])", re.IGNORECASE)


def class_word_regex(lexicon: Lexicon) -> re.Pattern[str] | None:
    words = {f for f in class_lookup(lexicon) if len(f) >= 4} | {a for a in ALLERGEN_ALIASES if len(a) >= 3}
    return _class_word_regex_cached(tuple(sorted(words)))
