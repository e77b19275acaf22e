"""Crash safety: SIGKILL `guiderail ingest` (real MiniLM, real Chroma PersistentClient, small corpus copy)
at several points of an update. The previous index must still answer, the next ingest must complete,
and the index must end with exactly the chunks a clean ingest of the same files produces — no
duplicates, no orphans (checked by counting Chroma ids against the manifest and a reference index).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CORPUS_FILES = [
    "labels/olaparib.md",
    "labels/docetaxel.md",
    "labels/cabazitaxel.md",
    "guidelines/prostate/pcwg3-progression-criteria.md",
]
EXTRA_FILE = "labels/enzalutamide.md"
BATCH = 2  # chunks per Chroma write in the killed runs: the update embeds ~8 new chunks, so several points to die between


def _run(helpers, store: Path, folder: Path, at: str = "none", timeout: float = 240) -> subprocess.CompletedProcess:
    argv = [helpers.PY, str(Path(__file__).with_name("crash_runner.py")), "--at", at, "--batch", str(BATCH), "--"]
    argv += ["ingest", str(folder), "--store", str(store), "--no-progress"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=helpers.child_env(), cwd=helpers.ROOT)


def _run_and_kill(helpers, store: Path, folder: Path, at: str, timeout: float = 240) -> str:
    """Start an ingest that freezes at `at`, then SIGKILL it from outside once it gets there."""
    argv = [helpers.PY, str(Path(__file__).with_name("crash_runner.py")), "--at", at, "--batch", str(BATCH), "--"]
    argv += ["ingest", str(folder), "--store", str(store), "--no-progress"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=helpers.child_env(), cwd=helpers.ROOT
    )
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(f"FROZEN {at}"):
                break
            if time.monotonic() > deadline:
                break
        else:
            pytest.fail(f"ingest finished without reaching {at}: rc={proc.wait()} out={''.join(seen)} err={proc.stderr.read()[-2000:]}")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return "".join(seen)


@pytest.fixture(scope="module")
def embedder():
    from assistant.settings import load_settings
    from ingest.embedder import load_embedder

    return load_embedder(load_settings(llm="none"))


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, helpers):
    """v1: four corpus files; v2: one edited, one deleted, one added. Plus a clean reference index of v2."""
    base = tmp_path_factory.mktemp("crash")
    corpus = helpers.ROOT / "corpus"
    v1 = base / "v1"
    v1.mkdir()
    for rel in CORPUS_FILES:
        shutil.copy(corpus / rel, v1 / Path(rel).name)
    v2 = base / "v2"
    shutil.copytree(v1, v2)
    edited = v2 / "olaparib.md"
    edited.write_text(
        edited.read_text(encoding="utf-8") + "\n\n## Crash-test addendum\n\nAn added paragraph changes this document.\n",
        encoding="utf-8",
    )
    (v2 / "docetaxel.md").unlink()
    shutil.copy(corpus / EXTRA_FILE, v2 / Path(EXTRA_FILE).name)

    # The folder an index was built from is the scope of its updates (documents gone from it are
    # removed), so every run ingests the same `work` folder, switched between v1 and v2 content.
    work = base / "work"
    _switch(work, v1)
    store_v1 = base / "store-v1"
    done = _run(helpers, store_v1, work)
    assert done.returncode == 0, done.stderr[-3000:]
    reference = base / "store-ref"
    done = _run(helpers, reference, v2)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"v1": v1, "v2": v2, "work": work, "store_v1": store_v1, "reference": reference}


def _switch(work: Path, version: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(version, work)
    return work


def _store_at_v1(tmp_path: Path, corpora) -> tuple[Path, Path]:
    """A private copy of the v1 index, and the work folder switched to v2 (the update to run)."""
    store = tmp_path / "store"
    shutil.copytree(corpora["store_v1"], store)
    return store, _switch(corpora["work"], corpora["v2"])


def _open(store_dir: Path, embedder):
    from assistant.settings import load_settings
    from ingest.store import open_store

    return open_store(load_settings(store_dir=store_dir, llm="none"), embedder)


def _ids(store_dir: Path, embedder) -> tuple[set[str], set[str], int]:
    s = _open(store_dir, embedder)
    m = s.manifest()
    return m.chunk_ids(), s.all_chroma_ids(), m.generation


def _answers(store_dir: Path, embedder) -> set[str]:
    """Query the index as the assistant does (dense + BM25); every hit must be a live chunk."""
    s = _open(store_dir, embedder)
    live = s.manifest().chunk_ids()
    hits = s.query_dense("PARP inhibitor for BRCA-mutated castration-resistant prostate cancer", 5)
    hits += s.query_bm25("olaparib BRCA", 5)
    assert hits, "the index must answer"
    assert all(h.chunk_id in live for h in hits), "a query returned a chunk the manifest does not list"
    return {h.chunk_id for h in hits}


POINTS_BEFORE_COMMIT = ["upsert:1", "upsert:3", "sidecar", "manifest-tmp"]
POINTS_AFTER_COMMIT = ["committed", "delete:1"]


@pytest.mark.parametrize("point", POINTS_BEFORE_COMMIT + POINTS_AFTER_COMMIT)
def test_sigkill_during_update_keeps_index_usable_and_recovers_exactly(tmp_path, helpers, corpora, embedder, point):
    store, work = _store_at_v1(tmp_path, corpora)
    v1_manifest, _, v1_gen = _ids(store, embedder)
    ref_ids, ref_chroma, _ = _ids(corpora["reference"], embedder)
    assert ref_ids == ref_chroma

    _run_and_kill(helpers, store, work, point)

    manifest_ids, chroma_ids, gen = _ids(store, embedder)
    if point in POINTS_BEFORE_COMMIT:
        assert (manifest_ids, gen) == (v1_manifest, v1_gen), "killed before the commit point: v1 must be intact"
    else:
        assert manifest_ids == ref_ids and gen == v1_gen + 1, "killed after the commit point: v2 is the index"
    assert manifest_ids <= chroma_ids, f"{len(manifest_ids - chroma_ids)} listed chunk(s) missing from Chroma"
    _answers(store, embedder)

    done = _run(helpers, store, work)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    manifest_ids, chroma_ids, _ = _ids(store, embedder)
    assert manifest_ids == ref_ids, "after recovery the index must equal a clean ingest of the same files"
    assert chroma_ids == ref_ids, (
        f"orphans {len(chroma_ids - ref_ids)}, missing {len(ref_ids - chroma_ids)} after recovery"
    )
    _answers(store, embedder)

    again = _run(helpers, store, work)
    assert again.returncode == 0 and "added 0, updated 0" in again.stdout and "removed 0" in again.stdout, again.stdout


def test_sigkill_during_the_very_first_ingest_leaves_an_openable_store(tmp_path, helpers, corpora, embedder):
    store = tmp_path / "fresh"
    work = _switch(corpora["work"], corpora["v1"])
    _run_and_kill(helpers, store, work, "upsert:2")
    _, v1_chroma, _ = _ids(corpora["store_v1"], embedder)
    manifest_ids, chroma_ids, _ = _ids(store, embedder)
    # Nothing was committed: the index is not ready — the partial chunks are never adopted or served.
    assert not manifest_ids and chroma_ids and not (store / "manifest.json").exists(), "uncommitted chunks adopted"
    s = _open(store, embedder)
    assert s.count() == 0 and not s.ready
    assert all(h.chunk_id in manifest_ids for h in s.query_dense("olaparib", 3) + s.query_bm25("olaparib", 3))
    done = _run(helpers, store, work)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest_ids, chroma_ids, _ = _ids(store, embedder)
    assert manifest_ids == chroma_ids == v1_chroma


def test_two_crashes_in_a_row_then_recovery(tmp_path, helpers, corpora, embedder):
    store, work = _store_at_v1(tmp_path, corpora)
    _run_and_kill(helpers, store, work, "upsert:2")
    _run_and_kill(helpers, store, work, "sidecar")
    _answers(store, embedder)
    done = _run(helpers, store, work)
    assert done.returncode == 0, done.stderr[-3000:]
    ref_ids, _, _ = _ids(corpora["reference"], embedder)
    manifest_ids, chroma_ids, _ = _ids(store, embedder)
    assert manifest_ids == chroma_ids == ref_ids
