"""Document sources: the shipped corpus and the open-medicine guideline pack, with provenance."""

from __future__ import annotations

import errno
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.loaders import SUPPORTED_EXT
from ingest.markdown import slugify

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

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


@dataclass(frozen=True)
class Walk:
    """What a folder walk found: files to load, things it could not or would not enter, other types."""

    files: list[Path]
    warnings: list[tuple[str, str]]  # (path, reason): unreadable folders, broken/looping/folder links
    unsupported: list[str]  # paths relative to the root, of files whose type is not ingested


def walk_files(root: Path) -> Walk:
    """Supported files under `root` (or `root` itself), sorted, skipping hidden entries and README.md.

    Nothing is skipped silently: a folder that cannot be listed, a broken link, a link loop or a link
    to a folder (not followed: it could leave the tree or loop) each give a warning naming the path.
    Links to files are followed, as before.
    """
    if root.is_file():
        return Walk([root], [], [])
    files: list[Path] = []
    warnings: list[tuple[str, str]] = []
    unsupported: list[str] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            warnings.append((str(folder), f"folder not read ({_why(exc)}); its files were not ingested"))
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            path = Path(e.path)
            try:
                if e.is_symlink():
                    problem = _link_problem(path, root)
                    if problem:
                        warnings.append((str(path), problem))
                        continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif e.is_file():
                    if path.suffix.lower() not in SUPPORTED_EXT:
                        unsupported.append(str(path.relative_to(root)))
                    elif e.name.lower() != "readme.md":
                        files.append(path)
            except OSError as exc:  # the entry vanished or cannot be stat'ed: name it, go on
                warnings.append((str(path), f"not read ({_why(exc)})"))
    return Walk(sorted(files), warnings, sorted(unsupported))


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _link_problem(path: Path, root: Path) -> str | None:
    """Why a symbolic link is skipped (None: a link to a file, which is followed)."""
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symbolic link loop (-> {target}); skipped"
        return f"broken symbolic link (-> {target}: {_why(exc)}); skipped"
    if path.is_dir():
        real, here = Path(os.path.realpath(path)), Path(os.path.realpath(path.parent))
        if real == here or real in here.parents or real == Path(os.path.realpath(root)):
            return f"symbolic link loop (-> {target} contains this link); skipped"
        return f"symbolic link to a folder (-> {target}) not followed; pass that folder itself to ingest it"
    return None


def iter_files(root: Path) -> list[Path]:
    """Supported files under `root` (or `root` itself), sorted, skipping hidden files and folders."""
    return walk_files(root).files


def corpus_files(settings: IngestSettings) -> list[Path]:
    """Guideline and label digests of the shipped corpus (not rules/ or lexicon/)."""
    out: list[Path] = []
    for sub in CORPUS_PROSE_DIRS:
        folder = Path(settings.corpus_dir) / sub
        if folder.is_dir():
            out += [p for p in iter_files(folder) if p.suffix.lower() in (".md", ".markdown")]
    return out


def corpus_sources(settings: IngestSettings) -> list[SourceFile]:
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
    from ingest.errors import IngestError
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
