"""Per-turn reading: one user turn's text → `TurnFacts` (no model; lexicons, vocabulary and grammar only).

Second step of the patient stage (after `vocab` compiles the vocabulary): `PatientExtractor.extract_turn` splits
the turn into clauses, reads therapies (`therapies`), conditions, metastatic sites, biomarkers (`markers`),
disease state, castration, labs (`labs`), demographics, performance status and symptoms, then the facts that decide
drug safety (`pregnancy`, `allergies`, `conditions`, `prostate`, `care`). `merge` folds the turns together and
`infer` draws the cross-fact conclusions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import yaml

from assistant.knowledge import Lexicon
from assistant.oncology.vocab import load_vocab as load_oncology_vocab
from assistant.patient.allergies import read_allergies
from assistant.patient.care import read_care_phase, read_declined, read_resistance
from assistant.patient.clauses import Clause, polarity, split_clauses, stronger
from assistant.patient.conditions import read_child_pugh, read_diabetes_type, read_infection_site
from assistant.patient.facts import (
    NUM,
    ClauseLike,
    Mentions,
    Polarity,
    SafetyFacts,
    TurnFacts,
    conflict,
    count_of,
    num,
)
from assistant.patient.labs import read_labs, read_liver_labs
from assistant.patient.markers import read_biomarkers
from assistant.patient.pregnancy import read_pregnancy
from assistant.patient.prostate import read_prostate
from assistant.patient.therapies import TherapyMatcher
from assistant.patient.vocab import compile_mixed_case, corpus_dir_of, load_clinical_vocab, load_cues

log = logging.getLogger(__name__)

# Words before a disease-state term that place it in the past ("docetaxel for mHSPC", "progressed from mHSPC").
_HISTORY_BEFORE = load_cues().compile(r"\b{w}\b[^.;]{0,25}$", w="patient_state_history_before")
# "mHSPC treated with ADT, now mCRPC": the sensitive state came first and the disease moved on.
_PROGRESSION_BETWEEN = load_cues().compile(r"\b{w}\b", w="patient_state_progression_between")
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


class PatientExtractor:
    """Compiled patterns for one lexicon and clinical vocabulary; `extract_turn(text)` reads one user turn."""

    def __init__(self, lexicon: Lexicon, corpus_dir: str | None = None) -> None:
        self.lexicon = lexicon
        vocab = load_clinical_vocab(str(corpus_dir or corpus_dir_of(lexicon)))
        try:
            self.oncology = load_oncology_vocab(str(corpus_dir or corpus_dir_of(lexicon)))
        except (OSError, ValueError, yaml.YAMLError) as exc:  # the corpus validator names the broken file
            log.warning("oncology vocabulary unreadable: %s", exc)
            self.oncology = None
        self.primary = vocab.primary
        self.vocab = vocab
        self.therapies = TherapyMatcher(lexicon, vocab.anticancer_classes)
        self._conditions = [(cid, compile_mixed_case(p)) for cid, p in vocab.conditions]
        self._sites = vocab.sites

    def extract_turn(self, text: str) -> TurnFacts:
        """Everything one user turn states, each fact with its polarity (the turn is read on its own)."""
        facts = TurnFacts()
        text = (
            text.replace("µ", "u")
            .replace("μ", "u")
            .replace("–", "-")
            .replace("—", " - ")
            .replace("≥", ">=")
            .replace("≤", "<=")
        )
        clauses = split_clauses(text)
        facts.question_text = " ".join(c.text for c in clauses if c.is_question)
        low = text.lower()

        for cl in clauses:
            self.therapies.read(cl, facts)
            self._conditions_in(cl, facts)
            self._sites_in(cl, facts)
            read_biomarkers(cl, facts, self.vocab)

        self._disease_state(text, facts)
        self._castration(facts, low)
        read_labs(text, facts, self.vocab.labs)
        self._demographics(text, facts)
        self._performance(text, facts)
        self._symptoms(clauses, facts)
        read_safety_facts(text, clauses, self.lexicon, polarity, self.therapies.mentions, facts)
        facts.labs.update(facts.liver_labs)  # a ULN multiple replaces a bare number read as units
        for cid, pol in facts.extra_conditions.items():
            facts.diagnoses.setdefault(cid, pol)
        return facts

    def _conditions_in(self, cl: Clause, facts: TurnFacts) -> None:
        for cid, (rx_ci, rx_cs) in self._conditions:
            m = (rx_ci.search(cl.text) if rx_ci else None) or (rx_cs.search(cl.text) if rx_cs else None)
            if not m:
                continue
            if cid == "bleeding_history" and re.search(
                r"bleed(?:ing)? risk|risk of bleed", cl.text, re.IGNORECASE
            ):
                continue
            pol = polarity(cl.text, m.start(), m.end())
            if cid == "ckd" and re.search(r"\bAKI\b|acute kidney", cl.text):
                continue
            prev = facts.diagnoses.get(cid)
            if prev is None or prev == "possible":
                facts.diagnoses[cid] = pol
            if pol == "present":
                facts.dx_positions.append((cl.start + m.start(), cid, cl.is_question))

    def _sites_in(self, cl: Clause, facts: TurnFacts) -> None:
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
                pol = polarity(t, m.start(), m.end())
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
                    conflict(facts, f"{site.replace('_', ' ')} metastases", "stated both present and absent")
                facts.sites[site] = stronger(prev, pol)
                if pol == "present" and site in ("liver", "lung", "brain", "adrenal"):
                    facts.sites["visceral"] = "present"
                if pol == "present":
                    facts.metastatic = True

    def _disease_state(self, text: str, facts: TurnFacts) -> None:
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
        between = (
            text[sensitive.end() : crpc.start()]
            if crpc and sensitive and sensitive.end() <= crpc.start()
            else ""
        )
        if (
            crpc
            and sensitive
            and not _HISTORY_BEFORE.search(text[max(0, sensitive.start() - 30) : sensitive.start()])
            and not _PROGRESSION_BETWEEN.search(between)
        ):
            conflict(facts, "disease state", "castration-resistant and castration-sensitive both stated")
        facts.castration_resistant = bool(crpc) or state in ("mCRPC", "nmCRPC")
        facts.sensitive = bool(sensitive) and not crpc
        facts.disease_state = state

    def _castration(self, facts: TurnFacts, low: str) -> None:
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

    def _demographics(self, text: str, facts: TurnFacts) -> None:
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
            n = count_of(infant.group(1))
            unit = infant.group(2).lower()
            years = n // 12 if unit == "month" else 0
            facts.age = years
            facts.notes.append(
                f"Age {n} {unit}s (read as {years} year{'s' if years != 1 else ''}); child dosing applies."
            )
        age = re.search(
            r"\b(\d{1,3})[- ]?(?:year|yr)s?[- ]?old\b|\b(\d{1,3})\s?(?:yo|y/o|y\.o\.|yrs?)\b|\baged? (\d{1,3})\b|\b(\d{2})\s?([MF])\b|\bage(?: is|:)? (\d{1,3})\b",
            text,
            re.IGNORECASE,
        )
        ages = {
            int(g)
            for a in re.finditer(
                r"\b(\d{1,3})[- ]?(?:year|yr)s?[- ]?old\b|\baged? (\d{1,3})\b|\bage(?: is|:)? (\d{1,3})\b",
                text,
                re.IGNORECASE,
            )
            for g in a.groups()
            if g and 0 < int(g) < 120
        }
        if len(ages) > 1:
            conflict(facts, "age", "different ages stated (" + ", ".join(str(a) for a in sorted(ages)) + ")")
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
        w = re.search(r"\b" + NUM + r"\s?(kg|kilograms?|lbs?|pounds)\b", text, re.IGNORECASE)
        if w:
            v = num(w.group(1))
            facts.weight_kg = round(v * 0.4536, 1) if w.group(2).lower().startswith(("lb", "pound")) else v

    def _performance(self, text: str, facts: TurnFacts) -> None:
        m = re.search(
            r"\b(?:ECOG|WHO)(?: PS| performance status)?(?: score)?(?: of| is|:|=)?\s*([0-4])(?:\s*[-/]\s*([0-4]))?|\b(?:performance status|PS)(?: of| is|:|=)?\s*([0-4])(?:\s*[-/]\s*([0-4]))?",
            text,
            re.IGNORECASE,
        )
        if m:
            singles = {
                int(x.group(1))
                for x in re.finditer(
                    r"\b(?:ECOG|WHO)(?: PS| performance status)?(?: score)?(?: of| is|:|=)?\s*([0-4])\b(?!\s*[-/]\s*[0-4])",
                    text,
                    re.IGNORECASE,
                )
            }
            if len(singles) > 1:
                conflict(
                    facts, "ECOG", "different values stated (" + ", ".join(map(str, sorted(singles))) + ")"
                )
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

    def _symptoms(self, clauses: list[Clause], facts: TurnFacts) -> None:
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
                and polarity(t, m.start(), m.end()) == "present"
            ):
                facts.symptomatic = True
            for sm in re.finditer(
                r"bone pain|(?:back|hip|pelvic|rib) pain|\bpain\b|cord compression|opioids?|analgesi\w+|fatigue|weight loss|urinary retention|haematuria|hematuria|fracture",
                t,
                re.IGNORECASE,
            ):
                pol = polarity(t, sm.start(), sm.end())
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


def read_safety_facts(
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
