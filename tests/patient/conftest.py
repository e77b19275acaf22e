"""The shipped corpus's therapy lexicon, loaded once for every extraction test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge import Lexicon, load_lexicon

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


@pytest.fixture(scope="session")
def lexicon() -> Lexicon:
    return load_lexicon(CORPUS)
