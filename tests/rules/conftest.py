"""Fixtures for engine tests: a small fixture corpus (engine behaviour, independent of content) and the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge import Knowledge, load_knowledge

FIXTURE_CORPUS = Path(__file__).parent / "fixtures" / "corpus"
REAL_CORPUS = Path(__file__).resolve().parents[2] / "corpus"


@pytest.fixture(scope="session")
def fixture_knowledge() -> Knowledge:
    return load_knowledge(FIXTURE_CORPUS)


@pytest.fixture(scope="session")
def real_knowledge() -> Knowledge:
    return load_knowledge(REAL_CORPUS)
