"""The cue file (corpus/lexicon/cues.yaml) is checked by the corpus validator, not only when first read."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from assistant.knowledge import validate_corpus
from assistant.patient.vocab import CUE_GROUPS, check_cues

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def test_the_shipped_cue_file_has_every_group_the_readers_use():
    assert check_cues(CORPUS) == []
    groups = yaml.safe_load((CORPUS / "lexicon" / "cues.yaml").read_text(encoding="utf-8"))
    assert set(CUE_GROUPS) <= set(groups)


def test_a_missing_group_or_bad_entry_is_a_validation_error(tmp_path):
    shutil.copytree(CORPUS / "lexicon", tmp_path / "lexicon")
    cues = tmp_path / "lexicon" / "cues.yaml"
    data = yaml.safe_load(cues.read_text(encoding="utf-8"))
    del data["answer_history"]
    cues.write_text(yaml.safe_dump(data), encoding="utf-8")
    errors = [e for e in validate_corpus(tmp_path).errors if "cues.yaml" in e.path]
    assert any("answer_history" in e.reason for e in errors)
    data["answer_history"] = [{"regex": "(unclosed"}]
    cues.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert any("bad pattern" in p for p in check_cues(tmp_path))
