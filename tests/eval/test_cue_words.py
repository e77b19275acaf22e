"""The evaluation reads its cue words from data (assistant/evaluation/cue_words.yaml), not from code."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.evaluation import textmatch


def test_cue_lists_come_from_the_yaml() -> None:
    cues = textmatch.load_cue_words()
    assert cues["negation"] == textmatch.NEGATION_CUES
    assert cues["history"] == textmatch.HISTORY_CUES
    assert "not recommended" in textmatch.EXCLUSION_HEADING_CUES
    assert textmatch.clause_negated(textmatch.normalize("Don't use warfarin")), "dont is a negation cue"


def test_a_missing_cue_list_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "cues.yaml"
    bad.write_text("negation: [not]\nhistory: []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="history"):
        textmatch.load_cue_words(bad)
