"""Shared deterministic fakes (STYLE.md §12) and the fixture corpus; area fixtures live in tests/<area>/conftest.py.

The fakes themselves live in `assistant.testing.fakes` (importable from any test module or script): one
hash-seeded embedder (`fake_embedder`) and one scripted chat model (`scripted_chat_model`). The corpus is never
faked: `fixture_corpus_knowledge` is the real `Knowledge` over tests/fixtures/corpus."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.testing.fakes import FakeEmbedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

FIXTURE_CORPUS = Path(__file__).parent / "fixtures" / "corpus"

__all__ = ["FIXTURE_CORPUS", "FakeEmbedder"]  # `from tests.conftest import FakeEmbedder` (tests/eval) keeps working


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def scripted_chat_model() -> Callable[..., Any]:
    """Factory: `scripted_chat_model(responses=[...], error=None, delay_s=0.0)` → a `ScriptedChatModel`."""
    from assistant.testing.fakes import ScriptedChatModel

    return ScriptedChatModel


@pytest.fixture(scope="session")
def fixture_corpus_knowledge():
    """The real `Knowledge` loaded (and validated) from tests/fixtures/corpus: one mCRPC scenario."""
    from assistant.knowledge import load_knowledge

    return load_knowledge(FIXTURE_CORPUS)
