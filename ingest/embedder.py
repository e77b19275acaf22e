"""Embedding models behind one small protocol, so tests can swap in a deterministic fake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Embedder(Protocol):
    """What ingestion and retrieval need from an embedding model."""

    name: str  # recorded in the index manifest; a different name means the index must be rebuilt
    dimension: int
    max_tokens: int  # the model's real input limit in its own tokens (MiniLM: 256 word-pieces incl. [CLS]/[SEP])

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-normalised vectors, one per text."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model would see for `text` (without special tokens)."""
        ...
