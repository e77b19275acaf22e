"""The answer's text format, written down once: section titles, the flag mark, italic notes, the banner line,
and `AnswerBody`, the one typed structure the composer fills and `render.render_body` turns into Markdown.

Every module that writes or reads an answer (composer, verifier, repair, prompts, orchestrator, evaluation)
uses these names instead of re-spelling a title or a mark. Lowest layer of the answer stage: imports nothing
from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------- section titles
SECTIONS: tuple[str, ...] = (
    "Bottom line",
    "Options that fit this patient",
    "Not recommended for this patient",
    "Pitfalls",
    "Monitoring",
    "Next steps / trials",
)
PATIENT_SECTIONS: tuple[str, ...] = (
    "In short",
    "Treatments that may fit your situation",
    "Treatments that are not suitable for you",
    "Things to watch out for",
    "Check-ups and tests",
    "Next steps",
)
WARN_ASK_SECTION = "Warnings and open questions"
"""Warn/ask findings the draft left out, appended by code (repair.append_required)."""
ALSO_NOTED_SECTION = "Also noted for this patient"
"""Offers for conditions the question is not about: shown apart, never under the options."""
PATIENT_ALSO_NOTED_SECTION = "Also noted for you"
FOLLOW_UP_SECTION = "Suggested follow-up questions"
SOURCES_SECTION = "Sources"


def section_titles(audience: str = "clinician") -> tuple[str, ...]:
    """The six answer headings, worded for the audience (same order, same meaning)."""
    return PATIENT_SECTIONS if audience == "patient" else SECTIONS


def also_noted_title(audience: str = "clinician") -> str:
    return PATIENT_ALSO_NOTED_SECTION if audience == "patient" else ALSO_NOTED_SECTION


# ---------------------------------------------------------------- marks
FLAG_MARK = "⚠ unverified"
"""Appended, in brackets, to a sentence the verifier could not confirm but did not strike."""
BANNER_PREFIX = "> **Note:** "

HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")
"""A Markdown heading line; group 1 is the title."""
NOTE_SPAN = re.compile(r"(?<![\w*])_(?=\S)[^_\n]+?(?<=\S)_(?![\w*])\.?")
"""An italic span: a note about the answer itself, never a clinical claim."""


def heading(title: str) -> str:
    return f"## {title}"


def note(text: str) -> str:
    """An italic note about the answer (not a clinical claim; the verifier reads it as a note)."""
    return f"_{text}_"


def is_note(sentence: str) -> bool:
    """A whole sentence that is a note: italic, or a quoted banner line."""
    bare = sentence.strip()
    return bool(re.fullmatch(r"_[^_].*_\.?", bare)) or bare.startswith("> ")


def is_note_line(line: str) -> bool:
    """A body line that holds a note (the composer writes notes on their own lines)."""
    return line.startswith("_")


def flagged(sentence: str) -> str:
    return f"{sentence} ({FLAG_MARK})"


def banner_line(text: str) -> str:
    return f"{BANNER_PREFIX}{text}"


def has_section(text: str, title: str) -> bool:
    """Does Markdown ``text`` have a heading that starts with ``title`` (any level, any case)?"""
    return bool(re.search(rf"^\s*#+\s*{re.escape(title)}\b", text, re.M | re.I))


# ---------------------------------------------------------------- the typed answer body
@dataclass(frozen=True)
class Section:
    """One titled section; ``lines`` are Markdown lines ("" is a blank line)."""

    title: str
    lines: tuple[str, ...] = ()

    @property
    def notes(self) -> list[str]:
        return [ln for ln in self.lines if is_note_line(ln)]


@dataclass(frozen=True)
class AnswerBody:
    """The answer's sections in reading order (rendered by `render.render_body`, one blank line between)."""

    sections: tuple[Section, ...]

    def replace_first(self, lines: tuple[str, ...]) -> AnswerBody:
        """The same body with the first section's lines replaced (its title kept)."""
        first = self.sections[0]
        return AnswerBody((Section(first.title, lines), *self.sections[1:]))

    def head(self) -> AnswerBody:
        """The first section alone."""
        return AnswerBody(self.sections[:1])
