"""The final Markdown, rendered in one place: the typed answer body (`format.AnswerBody`) and the page around
it — banner, body, follow-up questions, mode note and the numbered Sources list. Pure; the last step of the
answer stage.
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.answer.format import FOLLOW_UP_SECTION, SOURCES_SECTION, AnswerBody, banner_line, heading
from assistant.models import Citation


def render_body(body: AnswerBody) -> str:
    """The sections as Markdown: each under its "## " heading, one blank line between sections."""
    out: list[str] = []
    for i, section in enumerate(body.sections):
        if i:
            out.append("")
        out.append(heading(section.title))
        out.extend(section.lines)
    return "\n".join(out)


def format_source(c: Citation) -> str:
    """One Sources line: title, body, year, section, strength, last reviewed, unverified marker."""
    bits = [f"**{c.title}**"]
    meta = ", ".join(x for x in (c.organisation, c.year) if x)
    if meta:
        bits.append(meta)
    if c.section:
        bits.append(f"§ {c.section}")
    if c.rec_id:
        bits.append(c.rec_id)
    if c.strength:
        bits.append(f"strength: {c.strength}")
    if c.last_reviewed:
        bits.append(f"last reviewed {c.last_reviewed}")
    line = " — ".join(bits)
    if c.url:
        line += f" <{c.url}>"
    if c.unverified:
        line += " **(unverified)**"
    return f"{c.number}. {line}"


def render_sources(citations: Sequence[Citation]) -> str:
    if not citations:
        return ""
    return heading(SOURCES_SECTION) + "\n\n" + "\n".join(format_source(c) for c in citations)


def render_answer(
    body: str,
    citations: Sequence[Citation],
    *,
    banner: str | None = None,
    mode_note: str | None = None,
    follow_ups: Sequence[str] = (),
    follow_up_heading: str = FOLLOW_UP_SECTION,
) -> str:
    """The final Markdown: banner, body, follow-ups, the mode note and the numbered Sources."""
    parts: list[str] = []
    if banner:
        parts.append(banner_line(banner))
    parts.append(body.strip())
    if follow_ups:
        parts.append(heading(follow_up_heading) + "\n\n" + "\n".join(f"- {q}" for q in follow_ups))
    if mode_note:
        parts.append(mode_note)
    sources = render_sources(citations)
    if sources:
        parts.append(sources)
    return "\n\n".join(p for p in parts if p) + "\n"
