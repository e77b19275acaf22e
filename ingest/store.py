"""The index: a Chroma collection (Persistent or Http) + a BM25 sidecar (`ingest.sidecar`) + a JSON manifest.

Layout of a local index folder (`settings.index_dir`):

    chroma/                 Chroma PersistentClient data (omitted when a Chroma server is used)
    manifest.json           {"embedder", "chunking", "generation", "docs": {doc_id: {hash, chunk_ids, path, pack, title}}}
    bm25-<generation>/      bm25s index + catalog.json (text + metadata of every live chunk, in index order)

With a Chroma server the manifest and sidecar live in `index_dir/remote/<hash of URL + collection>/`
(so `--store` with `--chroma-url` chooses where that local metadata goes); a reader rebuilds them in
memory from the collection once another process has committed (`IndexStore.rebuild_sidecar`).

Crash safety — the manifest is the commit point. An update (1) adds new chunks to Chroma, (2) builds
the next BM25 generation in its own folder, (3) replaces manifest.json atomically (temp file +
os.replace), then (4) deletes stale chunks and the old BM25 folder. A crash before (3) leaves the
previous manifest, every chunk it lists and its BM25 folder untouched; a crash after (3) leaves only
orphans. Queries only ever return chunks the manifest lists, and the next update deletes orphans.

Readers honour the commit point in every state: with no manifest a local index is "not ready — run
ingest" (`IndexStore.ready` is False, it lists no chunks), never adopted from whatever chunks a crashed
first ingest left; and a reader never writes — not the manifest, not a sidecar — so killing a reader
can never damage an index. Only ingest (`ingest.pipeline`) writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import StoreError
from ingest.models import Chunk
from ingest.sidecar import SOFT_FILTERS, Bm25Sidecar, Hit, Metadata, chroma_where, matches

if TYPE_CHECKING:
    from ingest.embedder import Embedder
    from ingest.settings import IngestSettings

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
COMMIT_MARKER = "guiderail_commit"  # collection metadata: changes on every commit to a shared server
REFRESH_S = 5.0  # a process on a shared server looks for other processes' commits at most this often
CHROMA_BATCH = 1000  # well under Chroma's max batch size; keeps memory flat on big ingests
# Every string stored as chunk metadata (Chroma and the BM25 catalog) is cut to this length: hostile or
# broken front matter must not copy megabytes into every chunk of a document (a title is ~100 chars).
MAX_META_CHARS = 2000


@dataclass
class Manifest:
    embedder: str = ""
    chunking: dict[str, Any] = field(default_factory=dict)
    generation: int = 0
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def chunk_ids(self) -> set[str]:
        return {cid for d in self.docs.values() for cid in d.get("chunk_ids", [])}

    def to_json(self) -> str:
        return json.dumps(
            {
                "embedder": self.embedder,
                "chunking": self.chunking,
                "generation": self.generation,
                "docs": self.docs,
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        d = json.loads(text)
        return cls(
            d.get("embedder", ""), d.get("chunking", {}), int(d.get("generation", 0)), d.get("docs", {})
        )


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so a reader sees the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class IndexStore:
    """Chroma collection + BM25 sidecar + manifest. Dependencies (client, embedder) are passed in."""

    def __init__(
        self, client: Any, collection_name: str, embedder: Embedder, meta_dir: Path, *, shared: bool = False
    ) -> None:
        self.client = client
        # shared: a Chroma server other processes (other machines) also write to. The local manifest
        # then only knows what this process saw; `refresh` adopts others' commits and `cleanup` never
        # deletes chunks of documents it does not know.
        self.shared = shared
        self._marker_seen: str | None = None
        self._checked_at = float("-inf")
        self._refresh_lock = threading.Lock()
        self._removed_docs: set[str] = set()
        self.collection_name = collection_name
        self.embedder = embedder
        self.meta_dir = Path(meta_dir)
        self._lock = threading.Lock()
        from ingest.embedder import chroma_embedding_function

        try:
            self.collection = client.get_or_create_collection(
                collection_name,
                embedding_function=chroma_embedding_function(embedder),
                configuration={"hnsw": {"space": "cosine"}},
            )
        except Exception as exc:  # connection refused, incompatible config …
            raise StoreError(f"cannot open Chroma collection {collection_name!r}: {exc}") from exc
        self._manifest: Manifest | None = None
        self._sidecar: Bm25Sidecar | None = None
        self._live: set[str] | None = None

    # -- manifest / sidecar ---------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.meta_dir / MANIFEST

    def manifest(self) -> Manifest:
        """The committed manifest; an empty one before the first commit (the index is not ready).

        Chunks in Chroma without a manifest are never adopted here: on a local index they are what a
        crashed first ingest left (documents with only some of their chunks), and the next ingest
        deletes them. On a shared server other processes' commits are adopted by `refresh`, which
        only acts once a commit marker exists.
        """
        if self._manifest is None:
            if self.manifest_path.is_file():
                try:
                    self._manifest = Manifest.from_json(self.manifest_path.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise StoreError(f"index manifest {self.manifest_path} is unreadable: {exc}") from exc
            else:
                self._manifest = Manifest(embedder=self.embedder.name)
        return self._manifest

    @property
    def ready(self) -> bool:
        """Has an ingest ever committed to this index (readers answer only from a ready index)?

        On a shared server the commit point is the marker another machine's ingest wrote into the collection:
        a process with no local copy of the manifest adopts that commit first."""
        self._adopt_remote_commit()
        return bool(self.manifest().docs) or self.manifest_path.is_file()

    def _adopt_remote_commit(self) -> None:
        if self.shared and self._marker_seen is None:
            self.refresh(force=True)

    def sidecar_dir(self, generation: int) -> Path:
        return self.meta_dir / f"bm25-{generation}"

    def sidecar(self) -> Bm25Sidecar:
        if self._sidecar is None:
            m = self.manifest()
            folder = self.sidecar_dir(m.generation)
            if m.docs and not (folder / "catalog.json").is_file():
                # in memory only: a reader never writes (the next ingest saves a fresh generation)
                log.warning("BM25 sidecar %s missing; rebuilding it in memory from the Chroma collection", folder)
                self.rebuild_sidecar()
            elif (folder / "catalog.json").is_file():
                self._sidecar = Bm25Sidecar.load(folder)
            else:
                self._sidecar = Bm25Sidecar([], [], [], None)
        assert self._sidecar is not None
        return self._sidecar

    def live_ids(self) -> set[str]:
        if self._live is None:
            self._live = self.manifest().chunk_ids()
        return self._live

    def _remote_marker(self) -> str | None:
        from ingest.embedder import chroma_embedding_function

        try:
            col = self.client.get_collection(
                self.collection_name, embedding_function=chroma_embedding_function(self.embedder)
            )
        except Exception:  # best effort: a dead server fails loudly on the query itself
            return None
        return (col.metadata or {}).get(COMMIT_MARKER)

    def refresh(self, *, force: bool = False) -> bool:
        """Shared server: adopt what other processes committed (checked at most every REFRESH_S).

        Every commit to a shared server writes a new marker into the collection's metadata; when the
        marker differs from the one this process last saw, the manifest and BM25 sidecar are rebuilt
        from the collection. Returns whether a rebuild happened.
        """
        if not self.shared:
            return False
        now = time.monotonic()
        if not force and now - self._checked_at < REFRESH_S:
            return False
        if not self._refresh_lock.acquire(blocking=force):
            return False  # another thread is refreshing; use what is loaded
        try:
            self._checked_at = now
            marker = self._remote_marker()
            if marker is None or marker == self._marker_seen:
                return False
            current = self.manifest()
            self._manifest = Manifest(
                embedder=self.embedder.name, chunking=dict(current.chunking), generation=current.generation
            )
            self.rebuild_sidecar()
            self._marker_seen = marker
            log.info("index changed on the shared server: reloaded %d document(s)", len(self.manifest().docs))
            return True
        finally:
            self._refresh_lock.release()

    def _mark_commit(self) -> None:
        marker = uuid.uuid4().hex
        try:
            self.collection.modify(metadata={COMMIT_MARKER: marker})
        except Exception as exc:  # readers then pick the change up on their next restart only
            log.warning("could not record the commit on the Chroma server: %s", exc)
            return
        self._marker_seen = marker

    def check_embedder(self) -> None:
        """Refuse to query an index built with another embedding model (vectors would be meaningless)."""
        m = self.manifest()
        if m.docs and m.embedder and m.embedder != self.embedder.name:
            raise StoreError(
                f"index was built with embedder {m.embedder!r} but {self.embedder.name!r} is loaded; "
                "re-run `guiderail ingest` to rebuild it"
            )

    # -- reads ----------------------------------------------------------------------------
    def count(self) -> int:
        self._adopt_remote_commit()
        return len(self.live_ids())

    def query_dense(self, text: str, k: int, where: Mapping[str, Any] | None = None) -> list[Hit]:
        """Top-k by cosine similarity; `where` takes the same filters as BM25 (exact ones go to Chroma)."""
        return self.query_dense_vector(self.embedder.embed([text])[0], k, where)

    def query_dense_vector(
        self, vector: Sequence[float], k: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        self.refresh()
        live = self.live_ids()
        if not live or k <= 0:
            return []
        soft = bool(where) and any(key in SOFT_FILTERS for key in (where or {}))
        # over-fetch so post-filtering (orphans of a crashed run, substring filters) still leaves k
        n = min(max(k * (3 if soft else 1) + 10, k), max(len(live), 1) + 50)
        try:
            res = self.collection.query(
                query_embeddings=[list(vector)],
                n_results=n,
                where=chroma_where(where),
                include=["documents", "metadatas", "distances"],
            )
        except Exception as exc:
            raise StoreError(f"dense query failed: {exc}") from exc
        hits: list[Hit] = []
        for cid, doc, meta, dist in zip(
            res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
        ):
            if cid not in live or not matches(meta or {}, where if soft else None):
                continue
            hits.append(Hit(cid, doc or "", dict(meta or {}), 1.0 - float(dist), len(hits) + 1))
            if len(hits) >= k:
                break
        return hits

    def term_doc_freq(self, tokens: Iterable[str]) -> dict[str, int]:
        """Document frequency of each BM25 token in the live index (how specific a word is to the corpus)."""
        self.refresh()
        side = self.sidecar()
        return {t: side.doc_freq(t) for t in tokens}

    def topic_terms(self) -> frozenset[str]:
        """BM25 tokens of the live documents' titles, topics and headings (`Bm25Sidecar.topic_terms`)."""
        self.refresh()
        return self.sidecar().topic_terms()

    def query_bm25(self, text: str, k: int, filters: Mapping[str, Any] | None = None) -> list[Hit]:
        self.refresh()
        return self.sidecar().search(text, k, filters)

    def get_by_refs(self, refs: Iterable[str]) -> dict[str, list[Hit]]:
        """Resolve recommendation ids (`AUA-APC-S28`) and sections (`<doc_id>#<slug>`) to chunks.

        A section ref also returns the chunks of its sub-headings (a heading whose text lives in
        its children still resolves). Unknown refs map to an empty list.
        """
        sc = self.sidecar()
        out: dict[str, list[Hit]] = {}
        for ref in refs:
            ref = ref.strip()
            found: list[int] = []
            if "#" in ref:
                doc_id, slug = ref.split("#", 1)
                in_doc = sc.doc_index().get(doc_id, [])
                own = [i for i in in_doc if sc.metas[i].get("slug") == slug]
                found = own or [i for i in in_doc if f"/{slug}/" in str(sc.metas[i].get("slug_path", ""))]
            else:
                found = list(sc.rec_index().get(ref, []))
            found.sort(key=lambda i: (sc.metas[i].get("doc_id", ""), int(sc.metas[i].get("ordinal", 0))))
            out[ref] = [Hit(sc.ids[i], sc.texts[i], sc.metas[i], 1.0, r + 1) for r, i in enumerate(found)]
        return out

    def get_chunks(self, ids: Sequence[str]) -> list[Hit]:
        sc = self.sidecar()
        return [Hit(c, sc.texts[sc.pos[c]], sc.metas[sc.pos[c]], 1.0, 0) for c in ids if c in sc.pos]

    # -- writes (used by ingest.pipeline) ---------------------------------------------------
    def all_chroma_ids(self) -> set[str]:
        ids: set[str] = set()
        offset = 0
        while True:
            got = self.collection.get(include=[], limit=5000, offset=offset)
            batch = got["ids"]
            ids.update(batch)
            if len(batch) < 5000:
                return ids
            offset += len(batch)

    def _chroma_doc_ids(self) -> dict[str, str]:
        """chunk id → doc id of every chunk in the collection."""
        out: dict[str, str] = {}
        offset = 0
        while True:
            got = self.collection.get(include=["metadatas"], limit=5000, offset=offset)
            out.update((cid, str((md or {}).get("doc_id", ""))) for cid, md in zip(got["ids"], got["metadatas"], strict=True))
            if len(got["ids"]) < 5000:
                return out
            offset += len(got["ids"])

    def add_chunks(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        for i in range(0, len(chunks), CHROMA_BATCH):
            part = chunks[i : i + CHROMA_BATCH]
            self.collection.upsert(
                ids=[c.chunk_id for c in part],
                documents=[c.text for c in part],
                metadatas=[_clean_meta(c.metadata) for c in part],
                embeddings=[list(v) for v in vectors[i : i + CHROMA_BATCH]],
            )

    def delete_chunks(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        for i in range(0, len(ids), CHROMA_BATCH):
            self.collection.delete(ids=ids[i : i + CHROMA_BATCH])
        return len(ids)

    def commit(self, manifest: Manifest, new_chunks: Mapping[str, Chunk]) -> None:
        """Build the next BM25 generation, then swap the manifest (the commit point), then clean up.

        `new_chunks` holds text/metadata of chunks written in this run; others come from the current
        catalog. Stale chunks (in Chroma, not in the new manifest) are deleted after the swap.
        """
        old = self.manifest()
        old_sc = self.sidecar()
        ids, texts, metas = [], [], []
        for doc in sorted(manifest.docs):
            for cid in manifest.docs[doc]["chunk_ids"]:
                if cid in new_chunks:
                    c = new_chunks[cid]
                    ids.append(cid)
                    texts.append(c.text)
                    metas.append(_clean_meta(c.metadata))
                elif cid in old_sc.pos:
                    j = old_sc.pos[cid]
                    ids.append(cid)
                    texts.append(old_sc.texts[j])
                    metas.append(old_sc.metas[j])
                else:
                    raise StoreError(f"chunk {cid} of {doc} is neither new nor in the current index")
        manifest.generation = old.generation + 1
        sidecar = Bm25Sidecar.build(ids, texts, metas)
        sidecar.save(self.sidecar_dir(manifest.generation))
        atomic_write(self.manifest_path, manifest.to_json())  # ← commit point
        self._manifest, self._sidecar, self._live = manifest, sidecar, None
        self._removed_docs = set(old.docs) - set(manifest.docs)  # still ours to clean on a shared server
        self.cleanup()
        if self.shared:
            self._mark_commit()

    def cleanup(self) -> int:
        """Delete orphans: chunks in Chroma the manifest does not list, and old sidecar folders.

        On a shared server only chunks of documents this process knows (in its manifest, or removed by
        its last commit) are candidates: another machine's documents are never this process's orphans.
        """
        live = self.live_ids()
        if self.shared:
            known = set(self.manifest().docs) | self._removed_docs
            orphans = {cid for cid, doc in self._chroma_doc_ids().items() if cid not in live and doc in known}
        else:
            orphans = self.all_chroma_ids() - live
        if orphans:
            log.info("deleting %d orphan chunk(s) not listed in the manifest", len(orphans))
            self.delete_chunks(orphans)
        keep = self.sidecar_dir(self.manifest().generation).name
        for p in self.meta_dir.glob("bm25-*"):
            if p.name != keep:
                shutil.rmtree(p, ignore_errors=True)
        return len(orphans)

    def reset(self) -> None:
        """Drop everything (used when the embedder or chunking changed incompatibly)."""
        with contextlib.suppress(Exception):
            self.client.delete_collection(self.collection_name)
        from ingest.embedder import chroma_embedding_function

        self.collection = self.client.get_or_create_collection(
            self.collection_name,
            embedding_function=chroma_embedding_function(self.embedder),
            configuration={"hnsw": {"space": "cosine"}},
        )
        with contextlib.suppress(FileNotFoundError):
            self.manifest_path.unlink()
        for p in self.meta_dir.glob("bm25-*"):
            shutil.rmtree(p, ignore_errors=True)
        self._manifest = Manifest(embedder=self.embedder.name)
        self._sidecar = Bm25Sidecar([], [], [], None)
        self._live = None

    def rebuild_sidecar(self) -> None:
        """Recreate the BM25 sidecar (and, on a shared server's refresh, the manifest) in memory from the
        collection. Nothing is written: readers use this, and the commit point belongs to ingest."""
        ids, texts, metas = [], [], []
        offset = 0
        while True:
            got = self.collection.get(include=["documents", "metadatas"], limit=2000, offset=offset)
            ids += got["ids"]
            texts += [d or "" for d in got["documents"]]
            metas += [dict(m or {}) for m in got["metadatas"]]
            if len(got["ids"]) < 2000:
                break
            offset += len(got["ids"])
        m = self.manifest()
        if not m.docs:
            docs: dict[str, dict[str, Any]] = {}
            for cid, md in zip(ids, metas, strict=True):
                d = docs.setdefault(
                    str(md.get("doc_id", "")),
                    {
                        "hash": md.get("content_hash", ""),
                        "chunk_ids": [],
                        "path": md.get("path", ""),
                        "pack": md.get("source_pack", ""),
                        "title": md.get("title", ""),
                    },
                )
                d["chunk_ids"].append(cid)
            m.docs = docs
            m.embedder = self.embedder.name
        live = m.chunk_ids()
        keep = [i for i, c in enumerate(ids) if c in live]
        sc = Bm25Sidecar.build([ids[i] for i in keep], [texts[i] for i in keep], [metas[i] for i in keep])
        self._manifest, self._sidecar, self._live = m, sc, None


def _clean_meta(md: Mapping[str, Any]) -> Metadata:
    """Chroma-storable metadata: scalars only, every string capped at MAX_META_CHARS."""
    out: Metadata = {}
    for k, v in md.items():
        if v is None:
            continue
        if not isinstance(v, (str, int, float, bool)):
            v = str(v)
        if isinstance(v, str) and len(v) > MAX_META_CHARS:
            v = v[: MAX_META_CHARS - 1] + "…"
        out[str(k)[:200]] = v
    return out


def local_index_problem(settings: IngestSettings) -> str | None:
    """Why a reader cannot use the local index of `settings` (None when it can, or for a Chroma server).

    Checked before anything is created or any model loaded, so a mistyped `--store` neither makes an
    empty folder nor waits for model loading to fail.
    """
    if settings.chroma_url:
        return None
    folder = Path(settings.index_dir)
    if not folder.is_dir():
        return f"no index at {folder} (check --store / GUIDERAIL_STORE_DIR, or run `guiderail ingest --store {folder}`)"
    if not (folder / MANIFEST).is_file():
        return (
            f"the index at {folder} is not ready: no ingest has completed there (an interrupted first ingest "
            f"leaves it so); run `guiderail ingest --store {folder}`"
        )
    return None


def remote_meta_dir(settings: IngestSettings) -> Path:
    key = hashlib.sha256(f"{settings.chroma_url}\x1f{settings.collection}".encode()).hexdigest()[:16]
    return settings.index_dir / "remote" / key


def open_store(settings: IngestSettings, embedder: Embedder, *, create: bool = True) -> IndexStore:
    """The store for `settings`: a Chroma server when `chroma_url` is set, else a local PersistentClient.

    `create=False` (readers): a local index folder that does not exist is a StoreError, not a new folder.
    """
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        from urllib.parse import urlparse

        u = urlparse(settings.chroma_url)
        try:
            client = chromadb.HttpClient(
                host=u.hostname or "127.0.0.1",
                port=u.port or (443 if u.scheme == "https" else 8000),
                ssl=u.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:
            raise StoreError(f"cannot reach the Chroma server at {settings.chroma_url}: {exc}") from exc
        meta_dir = remote_meta_dir(settings)
    else:
        meta_dir = settings.index_dir
        if not create and not (meta_dir / "chroma").is_dir():
            raise StoreError(local_index_problem(settings) or f"no index at {meta_dir}")
        (meta_dir / "chroma").mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(meta_dir / "chroma"), settings=chroma_settings)
    if create:
        meta_dir.mkdir(parents=True, exist_ok=True)
    return IndexStore(client, settings.collection, embedder, meta_dir, shared=bool(settings.chroma_url))
