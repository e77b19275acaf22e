"""Shared deterministic fakes (STYLE.md §12): a hash-seeded embedder; area fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

_TOKEN = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Bag-of-hashed-words embedder: deterministic, fast, and texts sharing words land close together."""

    name = "fake-hash-64"
    dimension = 64
    max_tokens = 256

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text))

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.dimension
        for word in _TOKEN.findall(text.lower()):
            h = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vec[h[0] % self.dimension] += 1.0 if h[1] % 2 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()
