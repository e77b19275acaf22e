"""The settings ingest reads, as a protocol: ingest never imports the assistant's ``Settings``.

``assistant.settings.Settings`` satisfies it as it is, so every caller keeps passing its one settings
object; a test or a script may pass any object with these attributes. ``embedder`` ("minilm" or "hash")
is optional and read with ``getattr`` (default "minilm").
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class IngestSettings(Protocol):
    """Where the corpus and the index live, the embedding model, chunk sizes and file limits."""

    @property
    def corpus_dir(self) -> Path: ...

    @property
    def include_open_medicine(self) -> bool: ...

    @property
    def index_dir(self) -> Path: ...

    @property
    def chroma_url(self) -> str | None: ...

    @property
    def collection(self) -> str: ...

    @property
    def embedding_model(self) -> str: ...

    @property
    def embed_batch_size(self) -> int: ...

    @property
    def chunk_max_tokens(self) -> int: ...

    @property
    def chunk_overlap_tokens(self) -> int: ...

    @property
    def max_file_mb(self) -> float: ...
