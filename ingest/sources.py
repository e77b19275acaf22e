"""Document sources: the shipped corpus and the open-medicine guideline pack, with provenance."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.loaders import SUPPORTED_EXT
from ingest.markdown import slugify

if TYPE_CHECKING:
    from assistant.settings import Settings

log = logging.getLogger(__name__)

CORPUS_PACK = "corpus"
OPEN_MEDICINE_PACK = "open-medicine"
# rules/ and lexicon/ are structured data for the rule engine, not prose to retrieve from.
CORPUS_PROSE_DIRS = ("guidelines", "labels")


@dataclass(frozen=True)
class SourceFile:
    """A file to load, with the pack it belongs to and provenance its own text may lack."""

    path: Path
    pack: str
    root: Path
    doc_id: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)


def iter_files(root: Path) -> list[Path]:
    """Supported files under `root` (or `root` itself), sorted, skipping hidden files and folders."""
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUPPORTED_EXT
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.name.lower() != "readme.md"
    )


def corpus_files(settings: Settings) -> list[Path]:
    """Guideline and label digests of the shipped corpus (not rules/ or lexicon/)."""
    out: list[Path] = []
    for sub in CORPUS_PROSE_DIRS:
        folder = Path(settings.corpus_dir) / sub
        if folder.is_dir():
            out += [p for p in iter_files(folder) if p.suffix.lower() in (".md", ".markdown")]
    return out


def corpus_sources(settings: Settings) -> list[SourceFile]:
    root = Path(settings.corpus_dir)
    return [SourceFile(p, CORPUS_PACK, root) for p in corpus_files(settings)]


def open_medicine_dir() -> Path | None:
    """`open_medicine/guidelines` inside the installed `open-medicine` package, or None if absent."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("open_medicine")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "guidelines"
    return folder if (folder / "registry.json").is_file() else None


def open_medicine_sources() -> list[SourceFile]:
    """One SourceFile per section file of each guideline in the open-medicine registry.

    Provenance (organisation, year, DOI link, topics, what supersedes it) comes from registry.json;
    the file's own first heading names the section.
    """
    folder = open_medicine_dir()
    if folder is None:
        log.warning("open-medicine package not installed: its guideline pack is skipped")
        return []
    registry = json.loads((folder / "registry.json").read_text(encoding="utf-8"))
    entries = registry if isinstance(registry, list) else registry.get("guidelines", [])
    out: list[SourceFile] = []
    for entry in entries:
        gid = str(entry.get("id", ""))
        gdir = folder / "content" / gid
        if not gid or not gdir.is_dir():
            continue
        doi = str(entry.get("doi") or "")
        defaults: dict[str, Any] = {
            "title": entry.get("title", gid),
            "organisation": entry.get("organization", ""),
            "year": str(entry.get("year", "")),
            "url": f"https://doi.org/{doi}" if doi and not doi.startswith("http") else doi,
            "topics": list(entry.get("topics", [])),
            "kind": "guideline",
        }
        for p in iter_files(gdir):
            out.append(SourceFile(p, OPEN_MEDICINE_PACK, folder, slugify(f"om-{gid}-{p.stem}"), defaults))
    return out


def open_medicine_documents(max_file_mb: float = 50.0) -> list[Any]:
    """The open-medicine pack loaded as Documents (files that fail to load are logged and skipped)."""
    from assistant.errors import IngestError
    from ingest.loaders import load_file

    docs = []
    for s in open_medicine_sources():
        try:
            docs.append(
                load_file(s.path, s.pack, max_file_mb=max_file_mb, doc_id=s.doc_id, defaults=s.defaults)
            )
        except IngestError as exc:
            log.warning("open-medicine: %s", exc)
    return docs
