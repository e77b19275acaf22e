"""Proof at scale: ingest a large folder (the NCI pages) into its own store and measure it.

Records wall time, chunks, ingest chunks/s against raw `encode` throughput on the same chunk texts,
store size on disk, peak RSS, query latency p50/p95 over ≥ 200 queries and the time of a re-ingest
with nothing changed. Used by `scripts/scale_ingest.py` and callable from `guiderail bench`.

Query latency is that of the assistant's hybrid retriever, but ingest never imports the assistant: the
caller passes `retriever_factory` (`assistant.retrieval.HybridRetriever`), called as `(store, settings)`.
"""

from __future__ import annotations

import logging
import os
import random
import resource
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from ingest.settings import IngestSettings

if TYPE_CHECKING:
    from ingest.store import IndexStore

log = logging.getLogger(__name__)


class ScaleSettings(IngestSettings, Protocol):
    """Ingest settings that copy with overrides (pydantic's `model_copy`), as the assistant's `Settings` do."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


RetrieverFactory = Callable[["IndexStore", ScaleSettings], Any]
"""Builds the retriever whose latency is measured; it must expose `.retrieve(query)`, `.store` and
`.settings` (with `candidates_k`)."""


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def make_queries(metas: list[dict[str, Any]], n: int, seed: int = 7) -> list[str]:
    """Realistic queries from the index itself: innermost headings plus the document topic, de-duplicated."""
    rng = random.Random(seed)  # noqa: S311 - sampling, not security
    pool = []
    for m in metas:
        path = str(m.get("section_path", ""))
        leaf = path.split(" › ")[-1] if path else ""
        title = str(m.get("title", "")).replace(" - NCI", "").split("(")[0].strip()
        if leaf and leaf != title:
            pool.append(f"{leaf} {title}".strip())
    pool = list(dict.fromkeys(pool))
    if len(pool) < n:  # a small corpus: titles too, then repeat (latency is what is measured)
        pool += list(dict.fromkeys(str(m.get("title", "")) for m in metas if m.get("title")))
    rng.shuffle(pool)
    while pool and len(pool) < n:
        pool += pool[: n - len(pool)]
    return pool[:n]


def measure_ingest(
    settings: ScaleSettings,
    nci_dir: Path,
    store_dir: Path,
    *,
    retriever_factory: RetrieverFactory,
    queries: int = 250,
    encode_sample: int = 2000,
    progress: bool = True,
    fresh: bool = True,
) -> dict[str, Any]:
    """Ingest `nci_dir` into a new store under `store_dir` and return the measured figures."""
    import shutil

    from ingest.embedder import load_embedder
    from ingest.pipeline import ingest_paths
    from ingest.store import open_store

    store_dir = Path(store_dir)
    if fresh and store_dir.exists():
        shutil.rmtree(store_dir)
    s = settings.model_copy(
        update={"store_dir": store_dir, "chroma_url": None, "include_open_medicine": False}
    )
    t = time.perf_counter()
    embedder = load_embedder(s)
    embedder.embed(["warm-up"])  # model load is reported separately from ingest throughput
    model_load_s = time.perf_counter() - t
    store = open_store(s, embedder)

    t, c = time.perf_counter(), _cpu_s()
    report = ingest_paths(store, s, [nci_dir], pack="nci", progress=progress)
    ingest_s, ingest_cpu = time.perf_counter() - t, _cpu_s() - c
    log.info("full ingest: %s", report.summary())

    sc = store.sidecar()
    rng = random.Random(13)  # noqa: S311 - sampling, not security
    idx = sorted(rng.sample(range(len(sc.texts)), min(encode_sample, len(sc.texts))))
    sample = [sc.texts[i] for i in idx]
    t, c = time.perf_counter(), _cpu_s()
    embedder.model.encode(
        sample, batch_size=s.embed_batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    raw_s, raw_cpu = time.perf_counter() - t, _cpu_s() - c
    raw_cps = len(sample) / raw_s if raw_s else 0.0
    ingest_cps = report.chunks_written / ingest_s if ingest_s else 0.0
    tokens = embedder.count_tokens_batch(sample) if hasattr(embedder, "count_tokens_batch") else []

    t = time.perf_counter()
    again = ingest_paths(store, s, [nci_dir], pack="nci", progress=False)
    reingest_s = time.perf_counter() - t

    lat_stats = _query_latency(retriever_factory(store, s), queries)
    files = [p for p in Path(nci_dir).rglob("*") if p.is_file()]
    return {
        "corpus": str(nci_dir),
        "documents": report.documents,
        "files_failed": len(report.errors),
        "input_mb": round(sum(p.stat().st_size for p in files) / 1e6, 1),
        "chunks": report.total_chunks,
        "chunk_tokens_mean": round(statistics.mean(tokens), 1) if tokens else None,
        "chunk_tokens_max": max(tokens) if tokens else None,
        "model_load_s": round(model_load_s, 1),
        "ingest_wall_s": round(ingest_s, 1),
        "ingest_chunks_per_s": round(ingest_cps, 1),
        "raw_encode_chunks_per_s": round(raw_cps, 1),
        "raw_encode_sample": len(sample),
        # CPU-seconds based rates: robust when other processes share the cores (wall rates are not)
        "ingest_chunks_per_cpu_s": round(report.chunks_written / ingest_cpu, 2) if ingest_cpu else None,
        "raw_encode_chunks_per_cpu_s": round(len(sample) / raw_cpu, 2) if raw_cpu else None,
        "ingest_vs_raw_encode_cpu": round((report.chunks_written / ingest_cpu) / (len(sample) / raw_cpu), 3)
        if ingest_cpu and raw_cpu
        else None,
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),
        "cpu_count": os.cpu_count(),
        "ingest_vs_raw_encode": round(ingest_cps / raw_cps, 3) if raw_cps else None,
        "reingest_unchanged_s": round(reingest_s, 2),
        "reingest_vs_full": round(reingest_s / ingest_s, 4) if ingest_s else None,
        "reingest_summary": again.summary(),
        "store_mb": round(_dir_size(store_dir) / 1e6, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 0),
        **lat_stats,
        "summary": report.summary(),
        "embed_batch_size": s.embed_batch_size,
        "chunk_max_tokens": s.chunk_max_tokens,
    }


def _query_latency(retriever: Any, n: int) -> dict[str, Any]:
    """p50/p95 of full hybrid retrieval (query embedding included) and of each search alone."""
    store, s = retriever.store, retriever.settings
    qs = make_queries(store.sidecar().metas, n)
    for q in qs[:5]:
        retriever.retrieve(q)  # warm caches
    lat, dense_lat, bm25_lat = [], [], []
    for q in qs:
        t0 = time.perf_counter()
        retriever.retrieve(q)
        lat.append((time.perf_counter() - t0) * 1000)
        vec = store.embedder.embed([q])[0]
        t1 = time.perf_counter()
        store.query_dense_vector(vec, s.candidates_k)
        t2 = time.perf_counter()
        store.query_bm25(q, s.candidates_k)
        t3 = time.perf_counter()
        dense_lat.append((t2 - t1) * 1000)
        bm25_lat.append((t3 - t2) * 1000)
    return {
        "queries": len(qs),
        "query_p50_ms": round(_pct(lat, 0.5), 1),
        "query_p95_ms": round(_pct(lat, 0.95), 1),
        "dense_search_p50_ms": round(_pct(dense_lat, 0.5), 1),
        "bm25_search_p50_ms": round(_pct(bm25_lat, 0.5), 1),
    }


def measure_queries(
    settings: ScaleSettings, store_dir: Path, *, retriever_factory: RetrieverFactory, queries: int = 250
) -> dict[str, Any]:
    """Query latency alone on an existing store (e.g. after a retrieval change, without re-ingesting)."""
    from ingest.embedder import load_embedder
    from ingest.store import open_store

    s = settings.model_copy(update={"store_dir": Path(store_dir), "chroma_url": None})
    store = open_store(s, load_embedder(s))
    return {"chunks": store.count(), **_query_latency(retriever_factory(store, s), queries)}
