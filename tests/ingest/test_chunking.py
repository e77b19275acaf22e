"""Chunking: section boundaries, heading prefixes, token limits, whole recommendations, stable ids."""

from __future__ import annotations

import re

import pytest

from ingest.chunking import chunk_id, chunk_sections
from ingest.models import DocumentMeta, Section


def words(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


META = DocumentMeta(doc_id="d1", title="Demo guide", issuing_body="AUA", year="2023", source_pack="corpus")


def sec(text: str, path: tuple[str, ...] = ("A", "B"), **kw: object) -> Section:
    return Section(doc_id="d1", heading_path=path, text=text, slug=path[-1].lower() if path else "", **kw)


def test_short_section_is_one_chunk_with_heading_prefix() -> None:
    chunks = chunk_sections(META, [sec("Short body text.")], words, max_tokens=60, overlap=5)
    assert len(chunks) == 1
    assert chunks[0].text == "Demo guide › A › B\nShort body text."
    md = chunks[0].metadata
    assert md["section_path"] == "A › B" and md["slug"] == "b" and md["slug_path"] == "/a/b/"
    assert md["issuing_body"] == "AUA" and md["source_pack"] == "corpus" and md["ordinal"] == 0


def test_never_crosses_sections_and_respects_limit() -> None:
    long_text = "\n\n".join(
        " ".join(f"Sentence {i}.{k} has words w{i}x{k}a w{i}x{k}b." for k in range(3)) for i in range(10)
    )
    sections = [sec(long_text, ("A",)), sec("Other section text.", ("C",))]
    chunks = chunk_sections(META, sections, words, max_tokens=60, overlap=10)
    assert len(chunks) > 3
    for c in chunks:
        assert words(c.text) <= 60, (words(c.text), c.text[:80])
        assert ("Other section" in c.text) == (c.section_path == "C")
    # overlap: consecutive chunks of one section share some text
    a = [c for c in chunks if c.section_path == "A"]
    assert a[0].text.split("\n", 1)[1][-20:] in a[1].text


def test_recommendation_whole_when_it_fits_else_split_with_metadata() -> None:
    rec = dict(rec_id="R-1", strength="Strong", evidence="Grade A", population="mCRPC")
    short = chunk_sections(META, [sec("Offer drug X to patients.", **rec)], words, max_tokens=60, overlap=5)
    assert len(short) == 1 and "[R-1 · Strong · Grade A]" in short[0].text
    assert short[0].metadata["rec_id"] == "R-1" and short[0].metadata["population"] == "mCRPC"
    long = chunk_sections(META, [sec("Offer drug X. " * 60, **rec)], words, max_tokens=60, overlap=5)
    assert len(long) > 1
    assert all(c.metadata["rec_id"] == "R-1" and "R-1" in c.text for c in long)


def test_ids_are_content_hashes() -> None:
    a = chunk_sections(META, [sec("Same text.")], words, max_tokens=60, overlap=0)
    b = chunk_sections(META, [sec("Same text.")], words, max_tokens=60, overlap=0)
    c = chunk_sections(META, [sec("Changed text.")], words, max_tokens=60, overlap=0)
    assert a[0].chunk_id == b[0].chunk_id != c[0].chunk_id
    assert a[0].chunk_id == chunk_id("d1", "A › B", a[0].text)


def test_duplicate_passage_in_one_section_indexed_once() -> None:
    chunks = chunk_sections(META, [sec("Repeat."), sec("Repeat.")], words, max_tokens=60, overlap=0)
    assert len(chunks) == 1


def test_bad_arguments_named() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_sections(META, [sec("x")], words, max_tokens=60, overlap=40)


def test_reference_lists_are_not_indexed() -> None:
    sections = [
        sec("Body text.", ("A",)),
        sec("1. Smith J. A paper. J Clin Oncol 2020.", ("A", "References")),
    ]
    chunks = chunk_sections(META, sections, words, max_tokens=60, overlap=0)
    assert [c.section_path for c in chunks] == ["A"]


def test_unverified_flag_is_per_recommendation_block_not_per_document() -> None:
    from dataclasses import replace

    meta = replace(META, unverified=True)  # some fact in the digest could not be checked
    chunks = chunk_sections(
        meta,
        [
            sec("Context paragraph.", path=("A", "Intro")),
            sec("Checked statement.", path=("A", "Rec 1"), rec_id="R-1", strength="Strong"),
            sec("Unchecked statement.", path=("A", "Rec 2"), rec_id="R-2", strength="Weak", unverified=True),
        ],
        words,
        max_tokens=60,
        overlap=5,
    )
    flags = {c.metadata["rec_id"] or "context": c.metadata["unverified"] for c in chunks}
    assert flags == {"context": True, "R-1": False, "R-2": True}
