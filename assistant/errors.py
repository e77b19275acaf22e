"""A small exception hierarchy. Edges (CLI, UI) translate these into clear messages, never tracebacks.

The base class and the errors ingest raises are defined in ``ingest.errors`` (ingest does not import the
assistant) and re-exported here, so ``assistant.errors.IngestError is ingest.errors.IngestError``."""

from __future__ import annotations

from ingest.errors import ConfigError, CorpusValidationError, GuideRailError, IngestError, StoreError

__all__ = [
    "ConfigError",
    "CorpusValidationError",
    "GuideRailError",
    "IngestError",
    "LLMError",
    "QuestionError",
    "StoreError",
]


class QuestionError(GuideRailError):
    """The question cannot be answered as given (empty, too long …)."""


class LLMError(GuideRailError):
    """The language model failed, timed out or returned unusable output."""
