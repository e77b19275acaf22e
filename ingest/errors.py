"""The errors ingest raises, and their common base. Ingest never imports the assistant, so these live here;
``assistant.errors`` re-exports them (same classes) and adds the assistant's own. Edges (CLI, UI) translate
every ``GuideRailError`` into a clear message, never a traceback."""

from __future__ import annotations


class GuideRailError(Exception):
    """Base class: every error a user can cause or fix has a subclass here or in ``assistant.errors``."""


class ConfigError(GuideRailError):
    """A setting or argument has a bad value (the message names it)."""


class IngestError(GuideRailError):
    """A document could not be ingested (corrupt, empty, too large, undecodable …)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class CorpusValidationError(GuideRailError):
    """Shipped corpus content (digest, label or rule file) is invalid; names file and line."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class StoreError(GuideRailError):
    """The vector store or keyword index is missing, unreachable or inconsistent."""
