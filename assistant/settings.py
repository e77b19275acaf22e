"""One settings object for the whole product (env prefix GUIDERAIL_), with named presets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

LLMBackend = Literal["local", "openai", "none"]
Audience = Literal["clinician", "patient"]


class Settings(BaseSettings):
    """All tunables. Read from GUIDERAIL_* environment variables; CLI flags override them."""

    model_config = SettingsConfigDict(env_prefix="GUIDERAIL_", extra="forbid", validate_assignment=True)

    # --- where things live ---
    data_dir: Path = Field(PROJECT_ROOT / ".data", description="Root for the default index, model and runs.")
    store_dir: Path | None = Field(None, description="Index folder (Chroma + BM25 + manifest); default data_dir/index.")
    chroma_url: str | None = Field(None, description="Chroma server URL (http://host:port); overrides store_dir.")
    collection: str = Field("guiderail", description="Chroma collection name.")
    corpus_dir: Path = Field(PROJECT_ROOT / "corpus", description="The shipped corpus.")
    include_open_medicine: bool = Field(True, description="Ingest the open-medicine guideline pack by default.")

    # --- ingestion ---
    embedding_model: str = Field("all-MiniLM-L6-v2", description="Sentence-transformers model name.")
    embedder: Literal["minilm", "hash"] = Field(
        "minilm", description="minilm (the product) or hash (test/dev only: instant, no model, poor retrieval)."
    )
    embed_batch_size: int = Field(64, ge=1, le=4096)
    chunk_max_tokens: int = Field(230, ge=32, le=256, description="Word-pieces per chunk (MiniLM truncates at 256).")
    chunk_overlap_tokens: int = Field(30, ge=0, le=128)
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are refused.")

    # --- retrieval ---
    top_k: int = Field(6, ge=1, le=50)
    candidates_k: int = Field(30, ge=1, le=500, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1)
    # Measured with MiniLM on this corpus: off-topic questions top out at 0.26–0.39, on-topic ones start near 0.47.
    min_relevance: float = Field(0.42, description="Below this calibrated relevance a passage does not count as an answer.")

    # --- generation ---
    llm: LLMBackend = Field("local", description="local (embedded GGUF), openai (any compatible server) or none.")
    llm_timeout_s: float = Field(120.0, gt=0)
    llm_max_tokens: int = Field(450, ge=16, le=4096)
    llm_temperature: float = Field(0.1, ge=0.0, le=2.0)
    llm_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1)
    llm_context: int = Field(4096, ge=512)
    model_path: Path | None = Field(None, description="GGUF path; default data_dir/models/<assembled name>.")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    openai_model: str = Field("gpt-4o-mini")
    openai_api_key: str | None = Field(None)
    audience: Audience = Field("clinician")
    max_question_chars: int = Field(20_000, ge=100)

    # --- UI ---
    host: str = Field("127.0.0.1")
    port: int = Field(7860, ge=1, le=65535)
    log_patient_text: bool = Field(False, description="Patient text is kept out of logs unless this is set.")

    @field_validator("chroma_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"chroma_url must start with http:// or https://, got {v!r}")
        return v

    @property
    def index_dir(self) -> Path:
        return self.store_dir or (self.data_dir / "index")

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


PRESETS: dict[str, dict[str, object]] = {
    # fast, deterministic: no LLM (the composer writes the answer from rules + passages)
    "rules-only": {"llm": "none"},
    # the embedded default
    "local": {"llm": "local"},
    # a served model behind an OpenAI-compatible API
    "server": {"llm": "openai"},
}


def load_settings(preset: str | None = None, **overrides: object) -> Settings:
    """Settings from the environment, then a named preset, then explicit overrides (e.g. CLI flags)."""
    values: dict[str, object] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        values.update(PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
