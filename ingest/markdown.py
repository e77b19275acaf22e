"""Front matter and heading / recommendation-block parsing for guideline Markdown.

Used by ingestion (every Markdown-ish document) and by `assistant/knowledge.py` (the corpus
validator), so errors carry the 1-based line in the *file* where the problem is.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import yaml

from ingest.errors import CorpusValidationError
from ingest.models import Section

_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_REC_OPEN = re.compile(r"^\s*:::+\s*\{?\s*\.?recommendation\s*\}?\s*$", re.IGNORECASE)
_DIV_OPEN = re.compile(r"^\s*:::+\s*\S")  # any other fenced div (::: note) — fences dropped, text kept
_DIV_CLOSE = re.compile(r"^\s*:::+\s*$")
_HEADER_RULE = re.compile(r"^\s*---+\s*$")

# Bounds on YAML read from ingested files (front matter, recommendation headers). Aliases are refused
# outright: `yaml.safe_load` blocks tags but expands aliases, so a few hundred bytes of nested
# `&a [*b, *b, …]` lists grow tenfold per level (an "alias bomb": 53 s and 1.5 GB for 375 bytes).
# Without aliases the parsed value can be no larger than the text, which is capped; depth is capped
# so the recursive composer/constructor never nears Python's recursion limit.
MAX_YAML_CHARS = 64 * 1024
MAX_YAML_DEPTH = 16
MAX_YAML_NODES = 10_000


class _RefusedYaml(yaml.MarkedYAMLError):
    """YAML that is well-formed but outside the bounds above (the message names what and where)."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and anchors and bounds nesting depth and node count."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _RefusedYaml(problem=f"YAML aliases (*{event.anchor}) are not allowed", problem_mark=event.start_mark)
        if getattr(event, "anchor", None):
            raise _RefusedYaml(problem=f"YAML anchors (&{event.anchor}) are not allowed", problem_mark=event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise _RefusedYaml(problem=f"more than {MAX_YAML_NODES} YAML values", problem_mark=event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _RefusedYaml(
                    problem=f"YAML nested deeper than {MAX_YAML_DEPTH} levels", problem_mark=event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_bounded_yaml(raw: str) -> Any:
    """`yaml.safe_load` for text from files we ingest: no aliases/anchors, bounded size, depth and count.

    Raises `yaml.YAMLError` (a `_RefusedYaml` for bound violations) like `safe_load` does.
    """
    if len(raw) > MAX_YAML_CHARS:
        raise _RefusedYaml(problem=f"YAML block is {len(raw):,} characters; the limit is {MAX_YAML_CHARS:,}")
    return yaml.load(raw, Loader=_BoundedLoader)  # noqa: S506 — a SafeLoader subclass


def slugify(heading: str) -> str:
    """`"mCRPC › After docetaxel"` → `"mcrpc-after-docetaxel"` (lowercase, non-alphanumerics → `-`)."""
    # Accents folded so "Leitlinie für Ärzte" and its ASCII spelling give the same reference.
    folded = unicodedata.normalize("NFKD", heading)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")


def parse_front_matter(text: str, source: str = "<front matter>") -> tuple[dict[str, Any], str, int]:
    """Split YAML front matter from the body: `(metadata, body, body_first_line)`.

    `body_first_line` is the 1-based line of the file where `body` starts, so section lines can be
    reported against the file. No front matter → `({}, text, 1)`. Broken front matter raises
    `CorpusValidationError(source, line, reason)` naming the file line.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, text, 1
    close = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if close is None:
        raise CorpusValidationError(source, 1, "front matter opened with '---' is never closed")
    raw = "\n".join(lines[1:close])
    try:
        data = load_bounded_yaml(raw) if raw.strip() else {}
    except yaml.YAMLError as exc:
        line = 2 + _yaml_error_offset(exc, raw)  # line 1 is the opening '---'
        kind = "front matter refused" if isinstance(exc, _RefusedYaml) else "invalid YAML in front matter"
        raise CorpusValidationError(source, line, f"{kind}: {_yaml_problem(exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CorpusValidationError(source, 2, f"front matter must be a mapping, got {type(data).__name__}")
    body = "\n".join(lines[close + 1 :])
    return data, body, close + 2


def _yaml_error_offset(exc: yaml.YAMLError, raw: str) -> int:
    """0-based line inside `raw` to blame: where the broken construct began (an unclosed `[` or quote)
    rather than the end of the stream, which would point past the block."""
    mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
    last = max(len(raw.split("\n")) - 1, 0)
    return min(mark.line, last) if mark is not None else 0


def _yaml_problem(exc: yaml.YAMLError) -> str:
    return getattr(exc, "problem", None) or str(exc).splitlines()[0]


@dataclass(frozen=True)
class Heading:
    """One heading of a body, for validators that need every slug (even headings without own text)."""

    level: int
    text: str
    slug: str
    line: int
    path: tuple[str, ...]


def _clean_heading(raw: str) -> str:
    # Drop trailing pandoc attributes ("Title {#id}") and Markdown emphasis markers.
    raw = re.sub(r"\s*\{[^}]*\}\s*$", "", raw)
    return re.sub(r"[*_`]+", "", raw).strip()


def list_headings(body: str, body_first_line: int = 1) -> list[Heading]:
    """Every ATX heading outside code fences, with its file line and full heading path."""
    out: list[Heading] = []
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    for i, line in enumerate(body.split("\n")):
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)[0] * 3
            fence = None if fence == marker else (fence or marker)
            continue
        if fence:
            continue
        h = _HEADING.match(line)
        if h:
            level, title = len(h.group(1)), _clean_heading(h.group(2))
            if not title:
                continue
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            out.append(Heading(level, title, slugify(title), body_first_line + i, tuple(t for _, t in stack)))
    return out


def _as_str(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "yes", "1")


def split_sections(
    doc_id: str, body: str, body_first_line: int = 1, source: str | None = None
) -> list[Section]:
    """Split a Markdown body into Sections by heading; each `::: recommendation` block is its own Section.

    Every heading yields a Section (with empty text when it only holds sub-headings or blocks), so a
    validator can resolve `<doc_id>#<slug>` for any heading; chunking skips empty sections. Text
    after a recommendation block under the same heading continues as a further Section with the
    same heading path. A malformed recommendation block raises `CorpusValidationError` with its line.
    """
    where = source or doc_id
    lines = body.split("\n")
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    buf: list[str] = []
    buf_line = 0  # file line where the pending text section starts
    heading_pending = False  # a heading was seen and has not produced a Section yet
    fence: str | None = None

    def path() -> tuple[str, ...]:
        return tuple(t for _, t in stack)

    def slug() -> str:
        return slugify(stack[-1][1]) if stack else ""

    def flush(force: bool = False) -> None:
        nonlocal buf, buf_line, heading_pending
        text = "\n".join(buf).strip()
        if text or (force and heading_pending):
            sections.append(
                Section(doc_id=doc_id, heading_path=path(), text=text, slug=slug(), line=buf_line)
            )
            heading_pending = False
        buf = []
        buf_line = 0

    i = 0
    while i < len(lines):
        line = lines[i]
        file_line = body_first_line + i
        m = _FENCE.match(line)
        if m or fence:
            if m:
                marker = m.group(1)[0] * 3
                fence = None if fence == marker else (fence or marker)
            if not buf_line:
                buf_line = file_line
            buf.append(line)
            i += 1
            continue
        h = _HEADING.match(line)
        if h and _clean_heading(h.group(2)):
            flush(force=True)
            level = len(h.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, _clean_heading(h.group(2))))
            heading_pending = True
            buf_line = file_line
            i += 1
            continue
        if _REC_OPEN.match(line):
            flush(force=True)
            rec, i = _parse_recommendation(doc_id, lines, i, body_first_line, where, path(), slug())
            sections.append(rec)
            heading_pending = False
            continue
        if _DIV_OPEN.match(line) or _DIV_CLOSE.match(line):
            i += 1  # fences of other divs carry no text
            continue
        if line.strip() and not buf_line:
            buf_line = file_line
        buf.append(line)
        i += 1
    flush(force=True)
    return sections


def _parse_recommendation(
    doc_id: str,
    lines: list[str],
    start: int,
    body_first_line: int,
    where: str,
    heading_path: tuple[str, ...],
    slug: str,
) -> tuple[Section, int]:
    """Parse the block opening at `lines[start]`; return its Section and the index after the closing `:::`."""
    open_line = body_first_line + start
    rule = close = None
    for j in range(start + 1, len(lines)):
        if rule is None and _HEADER_RULE.match(lines[j]):
            rule = j
        elif _DIV_CLOSE.match(lines[j]):
            close = j
            break
        elif rule is None and _REC_OPEN.match(lines[j]):
            break
    if close is None:
        raise CorpusValidationError(where, open_line, "recommendation block is never closed with ':::'")
    if rule is None:
        raise CorpusValidationError(
            where, open_line, "recommendation block has no '---' line between its header and its statement"
        )
    header_raw = "\n".join(lines[start + 1 : rule])
    try:
        header = load_bounded_yaml(header_raw) if header_raw.strip() else {}
    except yaml.YAMLError as exc:
        line = open_line + 1 + _yaml_error_offset(exc, header_raw)
        kind = "recommendation header refused" if isinstance(exc, _RefusedYaml) else "invalid YAML in recommendation header"
        raise CorpusValidationError(where, line, f"{kind}: {_yaml_problem(exc)}") from exc
    if not isinstance(header, dict):
        raise CorpusValidationError(where, open_line + 1, "recommendation header must be 'key: value' lines")
    statement = "\n".join(lines[rule + 1 : close]).strip()
    section = Section(
        doc_id=doc_id,
        heading_path=heading_path,
        text=statement,
        slug=slug,
        rec_id=_as_str(header.get("id")),
        strength=_as_str(header.get("strength")),
        evidence=_as_str(header.get("evidence")),
        population=_as_str(header.get("population")),
        rec_source=_as_str(header.get("source")),
        unverified=_as_bool(header.get("unverified", False)),
        line=open_line,
        rec_url=_as_str(header.get("url")),
        rec_header=tuple((str(k), _as_str(v)) for k, v in header.items()),
    )
    return section, close + 1
