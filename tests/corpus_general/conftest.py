"""Fixtures for the general-medicine and label corpus tests: the real shipped corpus, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge import Knowledge, load_knowledge
from assistant.rules import RuleEngine

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge(CORPUS)


@pytest.fixture(scope="session")
def engine(knowledge: Knowledge) -> RuleEngine:
    return RuleEngine(knowledge)
