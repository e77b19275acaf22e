"""Front matter, headings and recommendation blocks: paths, slugs, whole statements and file lines."""

from __future__ import annotations

import pytest

from assistant.errors import CorpusValidationError
from ingest.markdown import list_headings, parse_front_matter, slugify, split_sections

DOC = """---
id: demo-2024
title: Demo digest
issuing_bodies: [AUA]
---
Intro text before any heading.

# mCRPC

## After docetaxel

Context paragraph about CARD.

::: recommendation
id: DEMO-S28
strength: Moderate Recommendation
evidence: Grade B
population: mCRPC after docetaxel
source: "Demo 2024, Statement 28"
url: https://example.org/s28
---
Offer cabazitaxel after docetaxel;
second line of the same statement.
:::

Trailing note under the same heading.

### Cabazitaxel

```
# not a heading inside code
```
"""


def test_front_matter_and_body_line() -> None:
    meta, body, first = parse_front_matter(DOC)
    assert meta["id"] == "demo-2024" and meta["issuing_bodies"] == ["AUA"]
    assert body.split("\n")[0] == "Intro text before any heading."
    assert first == 6  # the body starts on file line 6


def test_no_front_matter_returns_whole_text() -> None:
    assert parse_front_matter("# Title\ntext") == ({}, "# Title\ntext", 1)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("---\nid: x\ntitle: [unclosed\n---\nbody", 3),
        ("---\nid: x\n  bad: indent\n---\n", 3),
        ("---\nid: x\nno closing\n", 1),
        ("---\n- a list\n---\n", 2),
    ],
)
def test_broken_front_matter_names_the_line(text: str, line: int) -> None:
    with pytest.raises(CorpusValidationError) as info:
        parse_front_matter(text, source="g.md")
    assert info.value.path == "g.md"
    assert info.value.line == line, str(info.value)


def test_slugify() -> None:
    assert slugify("mCRPC › After docetaxel") == "mcrpc-after-docetaxel"
    assert slugify("  Lu-177-PSMA-617 (VISION)  ") == "lu-177-psma-617-vision"
    assert slugify("Thérapie für Ärzte") == "therapie-fur-arzte"


def test_split_sections_paths_recs_and_lines() -> None:
    _, body, first = parse_front_matter(DOC)
    secs = split_sections("demo-2024", body, first)
    by_text = {s.text.split("\n")[0]: s for s in secs if s.text}
    intro = by_text["Intro text before any heading."]
    assert intro.heading_path == () and intro.line == 6
    ctx = by_text["Context paragraph about CARD."]
    assert ctx.heading_path == ("mCRPC", "After docetaxel") and ctx.slug == "after-docetaxel"
    assert ctx.line == 10  # the heading line

    rec = next(s for s in secs if s.rec_id)
    assert rec.rec_id == "DEMO-S28" and rec.strength == "Moderate Recommendation"
    assert rec.evidence == "Grade B" and rec.population == "mCRPC after docetaxel"
    assert rec.rec_source == "Demo 2024, Statement 28" and rec.rec_url == "https://example.org/s28"
    assert rec.text == "Offer cabazitaxel after docetaxel;\nsecond line of the same statement."
    assert rec.heading_path == ("mCRPC", "After docetaxel") and rec.slug == "after-docetaxel"
    assert rec.line == 14
    assert dict(rec.rec_header)["id"] == "DEMO-S28"

    trailing = by_text["Trailing note under the same heading."]
    assert trailing.heading_path == ("mCRPC", "After docetaxel")
    # The heading with only sub-content still yields a (text-less) section so its slug resolves.
    assert any(s.slug == "mcrpc" and s.text == "" for s in secs)
    code = [s for s in secs if s.slug == "cabazitaxel"]
    assert code and "# not a heading" in code[0].text
    assert code[0].heading_path == ("mCRPC", "After docetaxel", "Cabazitaxel")
    assert [h.slug for h in list_headings(body, first)] == ["mcrpc", "after-docetaxel", "cabazitaxel"]


@pytest.mark.parametrize(
    ("block", "line"),
    [
        ("::: recommendation\nid: X\n---\nno close\n", 3),
        ("::: recommendation\nid: X\nstatement without rule\n:::\n", 3),
        ("::: recommendation\nid: [X\n---\ns\n:::\n", 4),
    ],
)
def test_broken_recommendation_block_names_the_line(block: str, line: int) -> None:
    body = "# H\n\n" + block
    with pytest.raises(CorpusValidationError) as info:
        split_sections("d", body, body_first_line=1)
    assert info.value.line == line, str(info.value)
