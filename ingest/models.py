"""Typed records of the ingestion stages: Document → Section → Chunk, and the ingest report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DocumentMeta:
    """Provenance of one guideline document (from front matter, file metadata or the source pack)."""

    doc_id: str  # stable id: front-matter id, else derived from the path
    title: str
    issuing_body: str = ""  # "AUA/ASTRO/SUO", "FDA", "NCI" …
    year: str = ""  # year or version/edition string
    url: str = ""
    source_pack: str = "user"  # corpus | open-medicine | user | nci …
    kind: str = "guideline"  # guideline | label | review | pdq | drug-page …
    last_reviewed: str = ""  # ISO date
    specialty: str = ""
    topics: tuple[str, ...] = ()
    unverified: bool = False
    path: str = ""  # where it was read from


@dataclass(frozen=True)
class Document:
    """A loaded file: its metadata, its raw text (Markdown-ish) and the hash of its bytes."""

    meta: DocumentMeta
    text: str
    content_hash: str
    body_first_line: int = 1  # file line where `text` starts (after front matter), for section line numbers


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path; a recommendation block is always its own section."""

    doc_id: str
    heading_path: tuple[str, ...]  # ("mCRPC", "After docetaxel", "Cabazitaxel")
    text: str
    slug: str = ""  # slug of the last heading, used in references <doc_id>#<slug>
    rec_id: str = ""  # recommendation id when this section is a recommendation block
    strength: str = ""
    evidence: str = ""
    population: str = ""
    rec_source: str = ""  # statement number / label section
    unverified: bool = False
    line: int = 0  # 1-based line in the source file where this section starts (0 = unknown)
    rec_url: str = ""  # the block's own `url:` when it has one
    rec_header: tuple[tuple[str, str], ...] = ()  # every header key of a recommendation block, for validators


@dataclass(frozen=True)
class Chunk:
    """What is embedded and indexed. `chunk_id` is a content hash (doc id, section path, text)."""

    chunk_id: str
    doc_id: str
    text: str
    section_path: str  # "mCRPC › After docetaxel › Cabazitaxel"
    ordinal: int  # position inside the document
    metadata: dict[str, str | int | float | bool] = field(default_factory=dict)


@dataclass
class IngestReport:
    """Outcome of one ingest run, printed as the summary line."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): skipped, not failed

    @property
    def documents(self) -> int:
        return self.added + self.updated + self.unchanged

    def summary(self) -> str:
        line = (
            f"documents: {self.documents} (added {self.added}, updated {self.updated}, "
            f"unchanged {self.unchanged}, removed {self.removed}); chunks: {self.total_chunks} "
            f"(+{self.chunks_written} −{self.chunks_deleted}); {self.seconds:.1f} s"
        )
        if self.warnings:
            line += f"; {len(self.warnings)} warning(s)"
        if self.errors:
            line += f"; {len(self.errors)} file(s) failed"
        return line
