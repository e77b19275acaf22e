"""Incremental ingest: added/updated/unchanged/removed, scoped removal, bad files, crash safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.pipeline import ingest_paths
from ingest.store import Bm25Sidecar, open_store

from .conftest import write_doc


def orphans_and_dupes(store) -> tuple[int, int]:
    """(chunks in Chroma the manifest does not list, chunk ids listed twice in the manifest)."""
    listed = [c for d in store.manifest().docs.values() for c in d["chunk_ids"]]
    return len(store.all_chroma_ids() - set(listed)), len(listed) - len(set(listed))


def test_manifest_diffing(tmp_path: Path, settings, store) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_doc(docs, "a.md", "doc-a", {"One": "Alpha olaparib text.", "Two": "Beta text."})
    write_doc(docs, "b.md", "doc-b", {"Three": "Gamma text."})

    r1 = ingest_paths(store, settings, [docs])
    assert (r1.added, r1.updated, r1.unchanged, r1.removed) == (2, 0, 0, 0)
    assert r1.chunks_written == r1.total_chunks == store.count() > 0

    r2 = ingest_paths(store, settings, [docs])
    assert (r2.added, r2.updated, r2.unchanged, r2.removed) == (0, 0, 2, 0)
    assert r2.chunks_written == 0 and r2.chunks_deleted == 0

    write_doc(docs, "a.md", "doc-a", {"One": "Alpha olaparib text.", "Two": "Beta text CHANGED."})
    (docs / "b.md").unlink()
    write_doc(docs, "c.md", "doc-c", {"Four": "Delta text."})
    r3 = ingest_paths(store, settings, [docs])
    assert (r3.added, r3.updated, r3.unchanged, r3.removed) == (1, 1, 0, 1)
    # only the changed section of doc-a is embedded again (+ doc-c); the unchanged one is reused
    assert r3.chunks_written == 2, r3.summary()
    assert set(store.manifest().docs) == {"doc-a", "doc-c"}
    assert orphans_and_dupes(store) == (0, 0)
    assert "CHANGED" in " ".join(h.text for h in store.query_bm25("beta changed", 5))
    assert not store.query_bm25("gamma", 5)


def test_removal_is_scoped_to_the_reingested_root(tmp_path: Path, settings, store) -> None:
    write_doc(settings.corpus_dir / "guidelines", "g.md", "corpus-doc", {"H": "Corpus text."})
    user = tmp_path / "user"
    user.mkdir()
    write_doc(user, "u.md", "user-doc", {"H": "User text."})
    ingest_paths(store, settings, [])
    ingest_paths(store, settings, [user])
    (user / "u.md").unlink()
    write_doc(user, "v.md", "user-doc-2", {"H": "Other user text."})
    r = ingest_paths(store, settings, [user])
    assert r.removed == 1 and set(store.manifest().docs) == {"corpus-doc", "user-doc-2"}
    r = ingest_paths(store, settings, [])  # the corpus run must not remove user documents
    assert r.removed == 0 and r.unchanged == 1 and "user-doc-2" in store.manifest().docs


def test_one_bad_file_among_good_ones(tmp_path: Path, settings, store) -> None:
    docs = tmp_path / "mixed"
    docs.mkdir()
    write_doc(docs, "good.md", "good", {"H": "Fine text."})
    (docs / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "empty.txt").write_bytes(b"")
    r = ingest_paths(store, settings, [docs, tmp_path / "missing"])
    assert r.added == 1
    assert sorted(Path(p).name for p, _ in r.errors) == ["bad.pdf", "empty.txt", "missing"]
    assert "1 file(s) failed" not in r.summary() and "3 file(s) failed" in r.summary()


def test_same_file_name_in_two_folders_gets_two_ids(tmp_path: Path, settings, store) -> None:
    for sub in ("x", "y"):
        (tmp_path / "d" / sub).mkdir(parents=True)
        (tmp_path / "d" / sub / "index.txt").write_text(f"Text of {sub}.")
    r = ingest_paths(store, settings, [tmp_path / "d"])
    assert r.added == 2 and len(store.manifest().docs) == 2


@pytest.mark.parametrize("fail_at", ["bm25_save", "manifest_swap", "cleanup"])
def test_crash_midway_keeps_previous_index_then_recovers(
    tmp_path: Path, settings, fake_embedder, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_doc(docs, "a.md", "doc-a", {"One": "Alpha abiraterone text.", "Two": "Beta text."})
    store = open_store(settings, fake_embedder)
    ingest_paths(store, settings, [docs])
    before = store.manifest().docs
    write_doc(docs, "a.md", "doc-a", {"One": "Alpha abiraterone text.", "Two": "Beta enzalutamide text."})
    write_doc(docs, "b.md", "doc-b", {"Three": "Gamma docetaxel text."})

    import ingest.store as store_mod

    def boom(*_a, **_k):
        raise RuntimeError("simulated crash")

    if fail_at == "bm25_save":
        monkeypatch.setattr(Bm25Sidecar, "save", boom)
    elif fail_at == "manifest_swap":
        monkeypatch.setattr(store_mod, "atomic_write", boom)
    else:  # cleanup also runs at the start of a run; fail its second call (after the manifest swap)
        real_cleanup = store_mod.IndexStore.cleanup
        calls = []

        def cleanup_then_crash(self):
            calls.append(1)
            if len(calls) > 1:
                boom()
            return real_cleanup(self)

        monkeypatch.setattr(store_mod.IndexStore, "cleanup", cleanup_then_crash)
    with pytest.raises(RuntimeError, match="simulated"):
        ingest_paths(store, settings, [docs])
    monkeypatch.undo()

    reopened = open_store(settings, fake_embedder)  # a fresh process after the crash
    if (
        fail_at == "cleanup"
    ):  # the manifest was already swapped: the new index is live, stale chunks are orphans
        assert set(reopened.manifest().docs) == {"doc-a", "doc-b"}
        assert orphans_and_dupes(reopened)[0] > 0
    else:
        assert reopened.manifest().docs == before
        assert orphans_and_dupes(reopened)[0] > 0  # the new chunks were written before the crash
        dense = reopened.query_dense("docetaxel gamma", 10)
        assert all(h.chunk_id in reopened.live_ids() for h in dense), "orphans must never be returned"
        assert reopened.query_bm25("abiraterone", 3)[0].metadata["doc_id"] == "doc-a"
        assert not reopened.query_bm25("docetaxel", 3)

    r = ingest_paths(reopened, settings, [docs])
    assert set(reopened.manifest().docs) == {"doc-a", "doc-b"}
    assert orphans_and_dupes(reopened) == (0, 0), r.summary()
    assert reopened.query_bm25("docetaxel", 3)[0].metadata["doc_id"] == "doc-b"
    assert len(list(reopened.meta_dir.glob("bm25-*"))) == 1


def test_changed_embedder_rebuilds(tmp_path: Path, settings, fake_embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_doc(docs, "a.md", "doc-a", {"One": "Alpha text."})
    ingest_paths(open_store(settings, fake_embedder), settings, [docs])

    class Other(type(fake_embedder)):  # type: ignore[misc]
        name = "other-fake"

    store = open_store(settings, Other())
    r = ingest_paths(store, settings, [docs])
    assert r.added == 1 and store.manifest().embedder == "other-fake"


def test_missing_sidecar_is_rebuilt_in_memory_without_writing(tmp_path: Path, settings, fake_embedder) -> None:
    import shutil

    docs = tmp_path / "docs"
    docs.mkdir()
    write_doc(docs, "a.md", "doc-a", {"One": "Alpha olaparib text."})
    store = open_store(settings, fake_embedder)
    ingest_paths(store, settings, [docs])
    for p in store.meta_dir.glob("bm25-*"):
        shutil.rmtree(p)
    manifest_before = (store.meta_dir / "manifest.json").read_bytes()
    again = open_store(settings, fake_embedder)  # manifest, no sidecar: the reader rebuilds BM25 in memory
    assert again.query_bm25("olaparib", 1)[0].metadata["doc_id"] == "doc-a"
    assert not list(again.meta_dir.glob("bm25-*")), "a reader never writes a sidecar"
    assert (store.meta_dir / "manifest.json").read_bytes() == manifest_before, "a reader never writes the manifest"
    r = ingest_paths(again, settings, [docs])  # the writer's next commit saves a sidecar again
    assert r.unchanged == 1 and orphans_and_dupes(again) == (0, 0)
    assert len(list(again.meta_dir.glob("bm25-*/catalog.json"))) == 1


def test_chunks_without_a_manifest_are_not_adopted(tmp_path: Path, settings, fake_embedder) -> None:
    """Chunks but no manifest (a crashed first ingest, a lost manifest): not ready, never served, not written."""
    docs = tmp_path / "docs"
    docs.mkdir()
    write_doc(docs, "a.md", "doc-a", {"One": "Alpha olaparib text."})
    store = open_store(settings, fake_embedder)
    ingest_paths(store, settings, [docs])
    (store.meta_dir / "manifest.json").unlink()
    again = open_store(settings, fake_embedder)
    assert not again.ready and again.count() == 0
    assert again.all_chroma_ids(), "the chunks are still in Chroma"
    assert not again.query_bm25("olaparib", 3) and not again.query_dense("olaparib", 3)
    assert not (again.meta_dir / "manifest.json").exists(), "a reader never writes the manifest"
    r = ingest_paths(again, settings, [docs])  # the next ingest commits a full, clean index
    assert r.added == 1 and again.ready and orphans_and_dupes(again) == (0, 0)


def test_topic_terms_come_from_titles_topics_and_headings_not_label_sections() -> None:
    metas = [
        {"title": "Gout — ACR 2020", "topics": "gout, urate-lowering therapy", "section_path": "Gout › Flare management",
         "kind": "guideline"},
        {"title": "Allopurinol — label digest", "topics": "gout", "section_path": "Allopurinol › Stevens-Johnson",
         "kind": "label"},
    ]
    side = Bm25Sidecar(["a", "b"], ["text a", "text b"], metas, None)
    terms = side.topic_terms()
    assert {"gout", "flare", "urate", "allopurinol"} <= terms
    assert "stevens" not in terms  # a label's warning headings do not make a topic
