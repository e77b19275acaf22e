"""The records one user turn is read into, and the small helpers every reader shares.

Data flow: `extract.PatientExtractor.extract_turn` fills one `TurnFacts` per user turn (the safety readers fill
the `SafetyFacts` part); `merge.merge_turn` folds each into the `PatientContext`, in turn order. The callable
types let the safety readers use the extractor's negation scope and therapy matcher without importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.models import Allergy, Biomarker, LabValue, TherapyExposure

# (clause text, start, end) -> "present" | "absent" | "possible" (clauses.polarity: NegEx-style scope)
Polarity = Callable[[str, int, int], str]
# text -> [(start, end, therapy id)] (therapies.TherapyMatcher.mentions)
Mentions = Callable[[str], list[tuple[int, int, str]]]
Change = Callable[[str, Any, Any], None]


class ClauseLike(Protocol):
    text: str
    start: int
    is_question: bool


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
NUMW = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"


def count_of(word: str) -> int:
    """A count written as digits or as a word ("three")."""
    return int(word) if word.isdigit() else _WORD_NUM[word.lower()]


def add_note(out: SafetyFacts, text: str) -> None:
    """A note for the clinician, once."""
    if text not in out.notes:
        out.notes.append(text)


def trimester_of(weeks: float) -> int:
    """1: < 14 weeks, 2: 14 to < 28, 3: >= 28 (the usual obstetric split)."""
    return 1 if weeks < 14 else 2 if weeks < 28 else 3


# A number as clinicians write it ("4.3", "4,3").
NUM = r"(\d+(?:[.,]\d+)?)"


def num(s: str) -> float:
    return float(s.replace(",", "."))


def conflict(facts: SafetyFacts, what: str, detail: str) -> None:
    """Two values of one fact in the same message: keep one (as before) but never silently — say so."""
    note = f"Conflicting statements about {what} in one message: {detail}; please confirm."
    if note not in facts.notes:
        facts.notes.append(note)


@dataclass
class TurnFacts(SafetyFacts):
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


# Single-valued facts: a later turn's value replaces an earlier one (recorded as a change).
SCALARS = (
    "disease_state", "castration", "ecog", "symptomatic", "age", "sex", "weight_kg", "pregnant", *SAFETY_SCALARS,
)  # fmt: skip
