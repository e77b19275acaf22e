"""The text toolkit (ingest/text.py): the behaviour its callers were calibrated with, pinned."""

from __future__ import annotations

import pytest

from ingest.text import (
    ANSWER_FILLER,
    CONTENT_STOPWORDS,
    STOPWORDS,
    bm25_tokens,
    clause_bounds,
    content_words,
    find_names,
    has_hard_break,
    name_pattern,
    names_pattern,
    split_clauses,
    split_sentences,
    stem,
    words,
)


@pytest.mark.parametrize(
    ("word", "expected"),
    [("progressing", "progress"), ("Treated", "treat"), ("doses", "dose"), ("inhibitors", "inhibitor"),
     ("was", "was"), ("boxes", "boxe"), ("bus", "bus")],
)
def test_stem_strips_one_suffix_and_keeps_four_letters(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_stop_word_lists_nest() -> None:
    # BM25 drops only function words; a claim comparison also drops the answer's own filler words.
    assert STOPWORDS < CONTENT_STOPWORDS
    assert ANSWER_FILLER <= CONTENT_STOPWORDS
    assert not ANSWER_FILLER & STOPWORDS, "filler words must stay searchable in BM25"


def test_content_words_drop_filler_numbers_and_citations() -> None:
    got = content_words("The preferred option for this patient is cabazitaxel [1], 25 mg/m2 after docetaxel.")
    assert got == ["cabazitaxel", "mg", "m2", "docetaxel"]
    assert words("Lu-177 PSMA-617, 2.5 mg") == ["Lu-177", "PSMA-617", "2.5", "mg"]


def test_bm25_tokens_keep_compounds_and_drop_function_words() -> None:
    assert bm25_tokens("the Lu-177-PSMA-617 inhibitors") == [
        "lu-177-psma-617", "lu177psma617", "lu", "177", "psma", "617", "inhibitor",
    ]
    assert bm25_tokens("status analysis of 5.2") == ["status", "analysis", "5.2"]


def test_split_sentences_keeps_a_citation_with_its_sentence() -> None:
    assert split_sentences("First claim. [1] Second claim! Third? yes") == ["First claim. [1] Second claim!", "Third?", "yes"]
    assert split_sentences("A. B. C.", maxsplit=1) == ["A.", "B. C."]


def test_clause_helpers() -> None:
    text = "Do not use X, but Y is preferred (first line); Z after."
    start = text.index("Y")
    a, b = clause_bounds(text, start, start + 1)
    assert text[a:b] == " Y is preferred "
    assert split_clauses(text, hard=True) == ["Do not use X, ", " Y is preferred (first line)", " Z after."]
    assert has_hard_break("X; then Y") and not has_hard_break("X (8 months) and Y")


def test_name_patterns_tolerate_spelling_variants() -> None:
    rx = name_pattern("lu177_psma617")
    assert all(rx.search(t) for t in ("Lu-177 PSMA-617", "Lu177-PSMA-617", "lu177psma617"))
    assert name_pattern("ADT").search("on ADT") and not name_pattern("ADT").search("on adt")
    assert name_pattern("ADT", ignore_case=True).search("on adt")
    assert not name_pattern("ADT").search("gADT")
    any_rx = names_pattern(["adt", "lu177_psma617"])
    assert any_rx is not None and any_rx.search("continue ADT") and any_rx.search("Lu-177-PSMA-617")
    assert names_pattern([]) is None


def test_find_names_gives_positions_and_needs_every_regimen_part() -> None:
    names = {"niraparib+abiraterone": ["niraparib+abiraterone"], "docetaxel": ["Taxotere"]}
    assert find_names("abiraterone alone", names) == []
    assert find_names("niraparib with abiraterone", names) == [("niraparib+abiraterone", 0, 9)]
    assert find_names("then Taxotere", names) == [("docetaxel", 5, 13)]
