"""Run `guiderail <args>` and freeze at a chosen point of the ingest so the parent test can SIGKILL it.

    python tests/reliability/crash_runner.py --at upsert:2 --batch 16 -- ingest DIR --store S --no-progress

At the point, the process prints ``FROZEN <point>`` on stdout and sleeps; the test then kills it
from outside with SIGKILL, exactly like an OOM killer or a power cut. Nothing else is faked: the
real embedder, Chroma PersistentClient and BM25 code run. Points:

* ``upsert:N``     — after the N-th batch of chunks was written to Chroma
* ``sidecar``      — after the next BM25 generation was saved, before the manifest swap
* ``manifest-tmp`` — the new manifest is written to its temp file, not yet renamed over the old one
* ``committed``    — right after the manifest swap, before stale chunks are deleted
* ``delete:N``     — after the N-th batch of stale-chunk deletions
* ``read``         — a reader (``ask``) has opened the index and loaded its BM25 sidecar (rebuilt in
  memory when it was missing), before it answers
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# `assistant` and `ingest` come from the venv's editable install of the project: no sys.path change needed.


def freeze(point: str) -> None:
    print(f"FROZEN {point}", flush=True)
    while True:  # wait for SIGKILL
        time.sleep(60)


def install(point: str, batch: int | None) -> None:
    import ingest.pipeline as pipeline
    import ingest.store as store

    if batch:  # smaller write batches so a small corpus has several points to die between
        store.CHROMA_BATCH = batch
        pipeline.ENCODE_BLOCK = batch
    name, _, arg = point.partition(":")
    n = int(arg or 1)
    calls = {"n": 0}

    if name == "upsert":
        original = store.IndexStore.add_chunks

        def add_chunks(self, chunks, vectors):
            original(self, chunks, vectors)
            calls["n"] += 1
            if calls["n"] >= n:
                freeze(point)

        store.IndexStore.add_chunks = add_chunks  # one call per pipeline block (= one Chroma batch with --batch)
    elif name == "sidecar":
        original_save = store.Bm25Sidecar.save

        def save(self, folder):
            original_save(self, folder)
            freeze(point)

        store.Bm25Sidecar.save = save
    elif name in ("manifest-tmp", "committed"):
        real_replace = os.replace

        def replace(src, dst, *a, **k):
            is_manifest = Path(dst).name == store.MANIFEST
            if is_manifest and name == "manifest-tmp":
                freeze(point)
            real_replace(src, dst, *a, **k)
            if is_manifest and name == "committed":
                freeze(point)

        store.os.replace = replace
    elif name == "delete":

        def delete_chunks(self, ids):  # the store's own loop, with a freeze after the n-th batch
            ids = list(ids)
            for done, i in enumerate(range(0, len(ids), store.CHROMA_BATCH), start=1):
                self.collection.delete(ids=ids[i : i + store.CHROMA_BATCH])
                if done >= n:
                    freeze(point)
            return len(ids)

        store.IndexStore.delete_chunks = delete_chunks
    elif name == "read":
        original_sidecar = store.IndexStore.sidecar

        def sidecar(self):
            result = original_sidecar(self)
            freeze(point)
            return result

        store.IndexStore.sidecar = sidecar
    elif name != "none":
        raise SystemExit(f"unknown point {point!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--at", default="none")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    install(args.at, args.batch)
    from assistant.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main())
