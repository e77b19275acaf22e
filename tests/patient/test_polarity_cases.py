"""The labelled polarity cases (polarity_cases.yaml, drawn from the phrasing tests) and the cue words as data.

`assistant.patient.clauses.polarity` must read every labelled case right; scripts/measure_context.py scores the
same file against medspacy's ConText. The cue words come from corpus/lexicon/cues.yaml, not from code.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from assistant.errors import CorpusValidationError
from assistant.patient.clauses import polarity, split_clauses
from assistant.patient.vocab import SHIPPED_CORPUS, load_cues

CASES_FILE = Path(__file__).with_name("polarity_cases.yaml")
CASES = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))["cases"]
KINDS = {"negation", "uncertainty", "history", "pseudo", "scope", "plain"}


def locate(text: str, phrase: str, occurrence: int = 1) -> tuple[str, int, int]:
    """(clause, start, end) of the n-th mention of the phrase (case-insensitive) in the text."""
    at = -1
    for _ in range(occurrence):
        at = text.lower().find(phrase.lower(), at + 1)
        if at < 0:
            raise ValueError(f"{phrase!r} (occurrence {occurrence}) is not in {text!r}")
    clause = next(c for c in reversed(split_clauses(text)) if c.start <= at)
    return clause.text, at - clause.start, at - clause.start + len(phrase)


def test_the_file_is_big_enough_and_covers_every_kind():
    kinds = Counter(c["kind"] for c in CASES)
    assert len(CASES) >= 60 and set(kinds) == KINDS, kinds
    assert {c["expect"] for c in CASES} == {"present", "absent", "possible"}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c,
            id=f"{c['kind']}:{c['text'][:40]}|{c['phrase']}",
            marks=[pytest.mark.xfail(strict=True, reason="known miss")] if c.get("known_miss") else [],
        )
        for c in CASES
    ],
)
def test_polarity_reads_the_labelled_case(case):
    clause, start, end = locate(case["text"], case["phrase"], case.get("occurrence", 1))
    got = polarity(clause, start, end)
    assert got == case["expect"], f"{case['phrase']!r} in {clause!r}: {got}, labelled {case['expect']} ({case['source']})"


def test_cue_words_are_data(tmp_path):
    """A negation cue added to cues.yaml is read with no code change; a plain phrase is matched literally."""
    (tmp_path / "lexicon").mkdir()
    text = (SHIPPED_CORPUS / "lexicon" / "cues.yaml").read_text(encoding="utf-8")
    shutil.copy(SHIPPED_CORPUS / "lexicon" / "cues.yaml", tmp_path / "lexicon" / "cues.yaml")
    shipped = load_cues()
    assert shipped.groups["patient_uncertain_mark"] == (r"\?",), "a plain '?' is the literal question mark"
    (tmp_path / "lexicon" / "cues.yaml").write_text(
        text.replace("patient_negation_pre:\n", "patient_negation_pre:\n  - denies any\n"), encoding="utf-8"
    )
    cues = load_cues(str(tmp_path))
    assert cues.groups["patient_negation_pre"][0] == r"denies\ any"
    assert cues.compile(r"\b{neg}\b", neg="patient_negation_pre").search("He DENIES ANY pain")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("patient_negation_pre:\n  - {regex: 'lacks?('}\n", "bad pattern"),
        ("patient_negation_pre: []\n", "non-empty list"),
        ("patient_negation_pre:\n  - {regex: 'x', flags: i}\n", "phrase or {regex"),
    ],
)
def test_a_bad_cue_file_names_the_problem(tmp_path, yaml_text, message):
    (tmp_path / "lexicon").mkdir()
    (tmp_path / "lexicon" / "cues.yaml").write_text(yaml_text, encoding="utf-8")
    with pytest.raises(CorpusValidationError, match=message) as info:
        load_cues(str(tmp_path))
    assert "cues.yaml" in str(info.value)


def test_a_missing_group_is_named(tmp_path):
    (tmp_path / "lexicon").mkdir()
    (tmp_path / "lexicon" / "cues.yaml").write_text("patient_negation_pre: ['no']\n", encoding="utf-8")
    with pytest.raises(CorpusValidationError, match="answer_history"):
        load_cues(str(tmp_path)).alternation("answer_history")
