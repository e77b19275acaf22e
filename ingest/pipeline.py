"""Incremental, crash-safe ingest: files → documents → sections → chunks → vectors → Chroma + BM25.

Only needed work is done: a document whose bytes hash is unchanged is skipped; a changed one is
re-chunked and only chunks with new content-hash ids are embedded; documents gone from the pack or
folder that was re-ingested are removed (removal never reaches outside that pack/folder, so ingesting
a user folder leaves the corpus alone). See `ingest.store` for the commit protocol.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.chunking import chunk_sections
from ingest.errors import CorpusValidationError, IngestError, StoreError
from ingest.loaders import load_file
from ingest.markdown import split_sections
from ingest.models import Chunk, Document, IngestReport
from ingest.sources import (
    CORPUS_PACK,
    OPEN_MEDICINE_PACK,
    SourceFile,
    corpus_sources,
    open_medicine_sources,
    walk_files,
)
from ingest.store import Manifest

if TYPE_CHECKING:
    from ingest.embedder import Embedder
    from ingest.settings import IngestSettings
    from ingest.store import IndexStore

log = logging.getLogger(__name__)

CHUNKER_VERSION = 3  # 3: flagged/flag_reason metadata on planted-instruction chunks; bump when chunk text, ids or metadata change for the same input (forces re-chunking)
# 2: per-block unverified flag
ENCODE_BLOCK = (
    1024  # chunks per encode call: lets the model sort by length over a larger block (less padding)
)


@dataclass(frozen=True)
class Scope:
    """Which manifest entries a run is authoritative for (only those can be reported removed)."""

    pack: str
    root: Path | None = None  # None: the whole pack

    def covers(self, entry: dict[str, Any]) -> bool:
        if entry.get("pack") != self.pack:
            return False
        if self.root is None:
            return True
        path = str(entry.get("path", ""))
        root = str(self.root)
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def chunking_signature(max_tokens: int, overlap: int, embedder: Embedder) -> dict[str, Any]:
    return {
        "version": CHUNKER_VERSION,
        "max_tokens": max_tokens,
        "overlap": overlap,
        "embedder": embedder.name,
    }


def document_chunks(
    doc: Document, count_tokens: Callable[[str], int], max_tokens: int, overlap: int
) -> list[Chunk]:
    """Pure: one loaded document → its chunks."""
    sections = split_sections(doc.meta.doc_id, doc.text, doc.body_first_line, source=doc.meta.path or None)
    return chunk_sections(doc.meta, sections, count_tokens, max_tokens, overlap, doc_hash=doc.content_hash)


def resolve_sources(
    settings: IngestSettings,
    paths: Sequence[str | Path],
    pack: str | None,
    warnings: list[tuple[str, str]] | None = None,
) -> tuple[list[SourceFile], list[Scope], list[tuple[str, str]]]:
    """Files to ingest, the scopes they make authoritative, and path errors.

    Things a folder walk skipped (unreadable folders, broken or looping links, other file types) are
    appended to `warnings` as (path, reason).
    """
    sources: list[SourceFile] = []
    scopes: list[Scope] = []
    errors: list[tuple[str, str]] = []
    warnings = warnings if warnings is not None else []
    if not paths:
        sources += corpus_sources(settings)
        scopes.append(Scope(CORPUS_PACK))
        if settings.include_open_medicine:
            om = open_medicine_sources()
            sources += om
            if om:
                scopes.append(Scope(OPEN_MEDICINE_PACK))
        return sources, scopes, errors
    use_pack = pack or "user"
    for raw in paths:
        p = Path(raw).expanduser().resolve()
        if not p.exists():
            errors.append((str(raw), "no such file or folder"))
            continue
        root = p if p.is_dir() else p.parent
        walk = walk_files(p)
        files = walk.files
        warnings.extend(walk.warnings)
        if walk.unsupported:
            shown = ", ".join(walk.unsupported[:5]) + (" …" if len(walk.unsupported) > 5 else "")
            warnings.append(
                (
                    str(p),
                    f"skipped {len(walk.unsupported)} file(s) of unsupported type ({shown}); "
                    "supported: .md .markdown .html .htm .pdf .txt",
                )
            )
        if p.is_dir() and not files:
            errors.append((str(raw), "no .md/.markdown/.html/.htm/.pdf/.txt files found"))
        sources += [SourceFile(f, use_pack, root) for f in files]
        scopes.append(Scope(use_pack, p))
    return sources, scopes, errors


def _safety_documents(settings: IngestSettings, errors: list[tuple[str, str]]) -> list[Document]:
    """The drug safety profiles and the FDA oncology approval records, rendered as citable digests (part of the
    shipped corpus pack)."""
    from ingest.loaders import load_markdown_text
    from ingest.safety_docs import rendered_safety_digests

    names: dict[str, str] = {}
    lex_path = Path(settings.corpus_dir) / "lexicon" / "therapies.yaml"
    try:
        import yaml

        for e in (yaml.safe_load(lex_path.read_text(encoding="utf-8")) or {}).get("therapies") or []:
            if isinstance(e, dict) and e.get("names"):
                names[str(e["id"])] = str(e["names"][0])
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("lexicon unreadable for safety digest titles: %s", exc)
    from ingest.approval_docs import pack_drug_names, rendered_approval_digests

    for tid, name in pack_drug_names(settings.corpus_dir).items():
        names.setdefault(tid, name)  # drugs the oncology approval pack introduces
    out: list[Document] = []
    rendered = [*rendered_safety_digests(settings.corpus_dir, names), *rendered_approval_digests(settings.corpus_dir, names)]
    for where, text in rendered:
        try:
            out.append(load_markdown_text(text, where, CORPUS_PACK))
        except IngestError as exc:
            errors.append((where, exc.reason))
            log.debug("skipped %s: %s", where, exc.reason)
    return out


def ingest_command(
    settings: IngestSettings, paths: Sequence[str | Path] = (), progress: bool = True, pack: str | None = None
) -> IngestReport:
    """`guiderail ingest [PATH ...]`: the shipped corpus (+ open-medicine pack) or the given files/folders."""
    from ingest.embedder import load_embedder
    from ingest.store import open_store

    embedder = load_embedder(settings)
    store = open_store(settings, embedder)
    return ingest_paths(store, settings, paths, pack=pack, progress=progress)


def ingest_paths(
    store: IndexStore,
    settings: IngestSettings,
    paths: Sequence[str | Path] = (),
    *,
    pack: str | None = None,
    progress: bool = False,
) -> IngestReport:
    """Load the sources for `paths` (or the default packs) and ingest them into `store`."""
    t0 = time.perf_counter()
    warnings: list[tuple[str, str]] = []
    sources, scopes, errors = resolve_sources(settings, paths, pack, warnings)
    docs: list[Document] = []
    bar = _bar(len(sources), "loading", progress and len(sources) > 20, unit="file")
    for s in sources:
        # Every failure of one file is that file's error (named once, in the report: the CLI prints
        # it), never the run's: the other files are still indexed.
        try:
            docs.append(
                load_file(
                    s.path,
                    s.pack,
                    max_file_mb=settings.max_file_mb,
                    root=s.root,
                    doc_id=s.doc_id,
                    defaults=s.defaults,
                )
            )
        except IngestError as exc:
            errors.append((str(s.path), exc.reason))
            log.debug("skipped %s: %s", s.path, exc.reason)
        except Exception as exc:  # a loader bug or a library's own exception: still only this file's problem
            errors.append((str(s.path), f"could not be loaded ({type(exc).__name__}: {exc})"))
            log.debug("skipped %s", s.path, exc_info=True)
        bar.update(1)
    bar.close()
    if not paths:
        docs.extend(_safety_documents(settings, errors))
    report = ingest_documents(
        store,
        docs,
        scopes=scopes,
        max_tokens=settings.chunk_max_tokens,
        overlap=settings.chunk_overlap_tokens,
        failed_paths={p for p, _ in errors},
        progress=progress,
    )
    report.errors = errors + report.errors
    report.warnings = warnings + report.warnings
    report.seconds = time.perf_counter() - t0
    return report


def ingest_documents(
    store: IndexStore,
    docs: Sequence[Document],
    *,
    scopes: Sequence[Scope] = (),
    max_tokens: int = 230,
    overlap: int = 30,
    failed_paths: set[str] | frozenset[str] = frozenset(),
    progress: bool = False,
) -> IngestReport:
    """Bring `store` in line with `docs` for the given scopes; returns what was added/updated/removed."""
    t0 = time.perf_counter()
    report = IngestReport()
    embedder = store.embedder
    max_tokens = min(max_tokens, embedder.max_tokens - 2)  # [CLS] and [SEP] take two of the model's slots
    overlap = min(overlap, max_tokens // 3)
    signature = chunking_signature(max_tokens, overlap, embedder)

    store.refresh(force=True)  # shared server: start from what every machine has committed
    old = store.manifest()
    if old.docs and old.embedder != embedder.name:
        log.warning(
            "index was built with %r, now %r: rebuilding it from scratch", old.embedder, embedder.name
        )
        store.reset()
        old = store.manifest()
    store.cleanup()  # orphans of an earlier crashed run
    rechunk_all = bool(old.docs) and old.chunking != signature
    count_tokens = embedder.count_tokens

    new_docs = {k: dict(v) for k, v in old.docs.items()}
    path_to_id = {str(v.get("path", "")): k for k, v in old.docs.items()}
    seen: dict[str, str] = {}  # doc_id → path in this run
    # identical files (a copy in another folder) are indexed once; the first path seen keeps it
    by_hash = {str(v.get("hash")): str(v.get("path", "")) for v in old.docs.values()}
    changed_chunks: dict[str, Chunk] = {}
    to_embed: list[Chunk] = []
    reused_meta: list[Chunk] = []

    for doc in docs:
        doc = _settle_id(doc, path_to_id, old, seen)
        meta = doc.meta
        if meta.doc_id in seen:
            report.errors.append(
                (meta.path, f"document id {meta.doc_id!r} is also used by {seen[meta.doc_id]}")
            )
            continue
        prev = old.docs.get(meta.doc_id)
        if (
            prev
            and prev.get("path") != meta.path
            and prev.get("pack") != meta.source_pack
            and Path(str(prev.get("path", ""))).exists()
        ):
            owner = f"{prev.get('path')} ({prev.get('pack')})"
            report.errors.append((meta.path, f"document id {meta.doc_id!r} already belongs to {owner}"))
            continue
        twin = by_hash.get(doc.content_hash)
        if twin and twin != meta.path and Path(twin).exists():
            report.errors.append((meta.path, f"duplicate: same content as {twin}; indexed once"))
            continue
        by_hash[doc.content_hash] = meta.path
        seen[meta.doc_id] = meta.path
        if prev and prev.get("hash") == doc.content_hash and not rechunk_all:
            report.unchanged += 1
            continue
        try:
            chunks = document_chunks(doc, count_tokens, max_tokens, overlap)
        except (CorpusValidationError, ValueError) as exc:
            report.errors.append((meta.path, str(exc)))
            continue
        if not chunks:
            report.errors.append((meta.path, "no text to index after parsing"))
            continue
        old_ids = set(prev.get("chunk_ids", [])) if prev else set()
        for c in chunks:
            changed_chunks[c.chunk_id] = c
            (reused_meta if c.chunk_id in old_ids else to_embed).append(c)
        new_docs[meta.doc_id] = {
            "hash": doc.content_hash,
            "chunk_ids": [c.chunk_id for c in chunks],
            "path": meta.path,
            "pack": meta.source_pack,
            "title": meta.title,
        }
        if prev:
            report.updated += 1
        else:
            report.added += 1

    for doc_id, entry in old.docs.items():
        if doc_id in seen or str(entry.get("path", "")) in failed_paths:
            continue
        if any(s.covers(entry) for s in scopes):
            del new_docs[doc_id]
            report.removed += 1

    # a lost BM25 sidecar (readers rebuild it in memory, never on disk) is saved again by a new commit
    sidecar_lost = bool(old.docs) and not (store.sidecar_dir(old.generation) / "catalog.json").is_file()
    if report.added or report.updated or report.removed or rechunk_all or sidecar_lost:
        manifest = Manifest(
            embedder=embedder.name, chunking=signature, generation=old.generation, docs=new_docs
        )
        before = store.live_ids()
        try:
            _embed_and_write(store, to_embed, progress)
            if reused_meta:  # same text, new ordinal/doc hash: refresh metadata without re-embedding
                for i in range(0, len(reused_meta), 1000):
                    part = reused_meta[i : i + 1000]
                    store.collection.update(
                        ids=[c.chunk_id for c in part], metadatas=[dict(c.metadata) for c in part]
                    )
            store.commit(manifest, changed_chunks)
        except OSError as exc:  # disk full, permissions …: the previous index is still the committed one
            reason = exc.strerror or str(exc)
            raise StoreError(
                f"writing the index under {store.meta_dir} failed: {reason}. The previous index is intact; "
                "fix the cause (e.g. free disk space) and run ingest again."
            ) from exc
        report.chunks_written = len(to_embed)
        report.chunks_deleted = len(before - store.live_ids())
    report.total_chunks = store.count()
    report.seconds = time.perf_counter() - t0
    return report


def _settle_id(doc: Document, path_to_id: dict[str, str], old: Manifest, seen: dict[str, str]) -> Document:
    """Keep a file's previous doc id (ingested via another root) and avoid collisions between files."""
    from dataclasses import replace
    from hashlib import sha256

    meta = doc.meta
    prev_id = path_to_id.get(meta.path)
    if prev_id and prev_id != meta.doc_id and meta.doc_id not in old.docs:
        return replace(doc, meta=replace(meta, doc_id=prev_id))
    clash = (meta.doc_id in seen and seen[meta.doc_id] != meta.path) or (
        meta.doc_id in old.docs
        and old.docs[meta.doc_id].get("path") != meta.path
        and old.docs[meta.doc_id].get("pack") == meta.source_pack
        and Path(str(old.docs[meta.doc_id].get("path", ""))).exists()
    )
    if clash and meta.source_pack != CORPUS_PACK:
        # two files with the same name in different folders: make the second id unique, stably
        new_id = f"{meta.doc_id}-{sha256(meta.path.encode()).hexdigest()[:6]}"
        return replace(doc, meta=replace(meta, doc_id=new_id))
    return doc


def _embed_and_write(store: IndexStore, chunks: Sequence[Chunk], progress: bool) -> None:
    """Embed in blocks and write each block to Chroma, so memory stays flat on large ingests."""
    if not chunks:
        return
    bar = _bar(len(chunks), "embedding", progress, unit="chunk")
    encode_s = write_s = 0.0
    for i in range(0, len(chunks), ENCODE_BLOCK):
        block = chunks[i : i + ENCODE_BLOCK]
        t = time.perf_counter()
        vectors = store.embedder.embed([c.text for c in block])
        t2 = time.perf_counter()
        store.add_chunks(block, vectors)
        encode_s += t2 - t
        write_s += time.perf_counter() - t2
        bar.update(len(block))
    bar.close()
    log.info("embedded %d chunks: encode %.1f s, Chroma writes %.1f s", len(chunks), encode_s, write_s)


class _NoBar:
    def update(self, n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None


def _bar(total: int, desc: str, enabled: bool, unit: str = "it") -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
