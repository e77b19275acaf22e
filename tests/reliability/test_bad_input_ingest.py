"""Bad-input catalogue, ingest runs: bad files are reported while good ones are indexed, nothing already in
the index is lost, duplicates are not silently doubled, and a full disk gives a clear error."""

from __future__ import annotations

import errno
import random
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.errors import GuideRailError
from assistant.settings import load_settings
from ingest.pipeline import ingest_paths
from ingest.store import open_store


@pytest.fixture
def settings(tmp_path):
    return load_settings(store_dir=tmp_path / "index", llm="none", include_open_medicine=False)


@pytest.fixture
def store(settings, fake_embedder):
    return open_store(settings, fake_embedder)


def _folder(tmp_path: Path, helpers, n_good: int = 3, name: str = "docs") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    topics = ["anticoagulation", "hypertension", "asthma", "gout", "migraine"]
    for i in range(n_good):
        (folder / f"good-{i}.md").write_text(helpers.good_markdown(f"good-{i}", topics[i]), encoding="utf-8")
    return folder


def _snapshot(store) -> tuple[set[str], set[str], int]:
    """Manifest chunk ids, Chroma ids, and manifest generation: the index as a reader sees it."""
    manifest = store.manifest()
    return manifest.chunk_ids(), store.all_chroma_ids(), manifest.generation


def _reopen(settings, fake_embedder):
    return open_store(settings, fake_embedder)


# ---------------------------------------------------------------- one bad file among good ones
@pytest.mark.parametrize(
    ("bad_name", "bad_bytes", "reason_word"),
    [
        ("broken.pdf", b"%PDF-1.4\n" + random.Random(5).randbytes(3000), "pdf"),
        ("binary.md", random.Random(6).randbytes(3000), "binary"),
        ("empty.txt", b"", "empty"),
    ],
    ids=["corrupt-pdf", "binary-md", "empty-txt"],
)
def test_folder_with_one_bad_file_indexes_the_good_ones_and_reports_the_bad(
    tmp_path, helpers, settings, store, bad_name, bad_bytes, reason_word
):
    folder = _folder(tmp_path, helpers)
    (folder / bad_name).write_bytes(bad_bytes)
    report = ingest_paths(store, settings, [folder])
    assert report.added == 3
    assert len(report.errors) == 1 and report.errors[0][0].endswith(bad_name)
    assert reason_word in report.errors[0][1].lower()
    assert report.summary().endswith("1 file(s) failed")
    assert {d for d in store.manifest().docs} == {"good-0", "good-1", "good-2"}
    assert store.query_bm25("hypertension review", 3), "the good documents must be searchable"


def test_cli_exit_code_and_summary_with_one_bad_file(tmp_path, helpers, monkeypatch, capsys, fake_embedder):
    monkeypatch.setattr("ingest.embedder.load_embedder", lambda settings: fake_embedder)
    folder = _folder(tmp_path, helpers)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    code = main(["ingest", str(folder), "--store", str(tmp_path / "ix"), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, "good documents were indexed: the run succeeded"
    assert "broken.pdf" in err and "Traceback" not in err
    summary = out.strip().splitlines()[-1]
    assert "documents: 3" in summary and "added 3" in summary and "1 file(s) failed" in summary


def test_cli_exit_code_is_an_error_when_every_file_is_bad(tmp_path, monkeypatch, capsys, fake_embedder):
    monkeypatch.setattr("ingest.embedder.load_embedder", lambda settings: fake_embedder)
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(b"%PDF-1.4 garbage")
    (folder / "b.md").write_bytes(b"")
    code = main(["ingest", str(folder), "--store", str(tmp_path / "ix"), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "a.pdf" in err and "b.md" in err and "Traceback" not in err
    assert "2 file(s) failed" in out


def test_missing_path_and_empty_folder_are_reported_not_fatal(tmp_path, helpers, settings, store):
    folder = _folder(tmp_path, helpers, n_good=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    report = ingest_paths(store, settings, [folder, tmp_path / "does-not-exist", empty])
    assert report.added == 1
    reasons = dict(report.errors)
    assert any("does-not-exist" in p for p in reasons) and any(p.endswith("empty") for p in reasons)


def test_a_file_that_breaks_later_keeps_its_last_good_version(tmp_path, helpers, settings, store, fake_embedder):
    """Nothing lost: a previously indexed file that is now corrupt is reported, and its chunks stay."""
    folder = _folder(tmp_path, helpers)
    ingest_paths(store, settings, [folder])
    before = _snapshot(store)
    (folder / "good-1.md").write_bytes(random.Random(9).randbytes(2000))
    report = ingest_paths(store, settings, [folder])
    assert report.removed == 0 and len(report.errors) == 1
    assert "good-1" in _reopen(settings, fake_embedder).manifest().docs
    assert _snapshot(_reopen(settings, fake_embedder))[0] == before[0]


def test_fixing_the_bad_file_adds_it_on_the_next_run(tmp_path, helpers, settings, store):
    folder = _folder(tmp_path, helpers)
    (folder / "late.md").write_bytes(b"")
    ingest_paths(store, settings, [folder])
    (folder / "late.md").write_text(helpers.good_markdown("late", "sepsis"), encoding="utf-8")
    report = ingest_paths(store, settings, [folder])
    assert (report.added, report.unchanged, report.errors) == (1, 3, [])


# ---------------------------------------------------------------- duplicates
def test_same_content_in_two_files_is_indexed_once_or_reported(tmp_path, helpers, settings, store):
    folder = _folder(tmp_path, helpers, n_good=1)
    text = (folder / "good-0.md").read_text(encoding="utf-8").replace("id: good-0\n", "")
    (folder / "copy-a.md").write_text(text, encoding="utf-8")
    (folder / "copy-b.md").write_text(text, encoding="utf-8")
    report = ingest_paths(store, settings, [folder])
    texts = store.sidecar().texts
    doubled = len(texts) != len(set(texts))
    reported = any("duplicate" in r.lower() or "same content" in r.lower() for _, r in report.errors)
    assert not doubled or reported, (
        f"identical documents were indexed twice without a word: {len(texts)} chunks, {len(set(texts))} distinct; "
        f"report={report.summary()} errors={report.errors}"
    )


def test_same_document_id_in_two_files_is_reported_or_kept_apart(tmp_path, helpers, settings, store):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.md").write_text(helpers.good_markdown("shared-id", "anaemia"), encoding="utf-8")
    (b / "y.md").write_text(helpers.good_markdown("shared-id", "psoriasis"), encoding="utf-8")
    report = ingest_paths(store, settings, [a, b])
    docs = store.manifest().docs
    kept_apart = len(docs) == 2
    reported = any("shared-id" in r for _, r in report.errors)
    assert kept_apart or reported, f"one document silently replaced the other: {docs.keys()} {report.errors}"
    # whichever way, the first document's text must still be findable
    assert store.query_bm25("anaemia", 3)


def test_reingesting_the_same_folder_twice_changes_nothing(tmp_path, helpers, settings, store):
    folder = _folder(tmp_path, helpers)
    ingest_paths(store, settings, [folder])
    before = _snapshot(store)
    report = ingest_paths(store, settings, [folder])
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 3)
    assert _snapshot(store) == before


# ---------------------------------------------------------------- disk full
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


DISK_FULL_POINTS = {
    "chroma-write": ("ingest.store.IndexStore.add_chunks", _enospc),
    "bm25-sidecar": ("ingest.store.Bm25Sidecar.save", _enospc),
    "manifest": ("ingest.store.atomic_write", _enospc),
}


@pytest.mark.parametrize("point", list(DISK_FULL_POINTS))
def test_disk_full_during_ingest_keeps_the_previous_index(tmp_path, helpers, settings, fake_embedder, monkeypatch, point):
    folder = _folder(tmp_path, helpers)
    store = open_store(settings, fake_embedder)
    ingest_paths(store, settings, [folder])
    before = _snapshot(store)
    (folder / "good-0.md").write_text(helpers.good_markdown("good-0", "chronic kidney disease"), encoding="utf-8")
    (folder / "new.md").write_text(helpers.good_markdown("new", "heart failure"), encoding="utf-8")

    target, fake = DISK_FULL_POINTS[point]
    monkeypatch.setattr(target, fake)
    with pytest.raises((GuideRailError, OSError)) as exc:
        ingest_paths(open_store(settings, fake_embedder), settings, [folder])
    assert "space" in str(exc.value).lower()
    monkeypatch.undo()

    reopened = _reopen(settings, fake_embedder)
    manifest_ids, chroma_ids, generation = _snapshot(reopened)
    assert (manifest_ids, generation) == (before[0], before[2]), "the commit point must not have moved"
    assert manifest_ids <= chroma_ids, "every chunk the manifest lists must still exist"
    hits = reopened.query_bm25("anticoagulation review", 3)
    assert hits and all(h.chunk_id in manifest_ids for h in hits), "previous index must still answer"
    dense = reopened.query_dense("anticoagulation review", 3)
    assert dense and all(h.chunk_id in manifest_ids for h in dense)

    report = ingest_paths(reopened, settings, [folder])  # space is back: the next run completes
    assert (report.added, report.updated) == (1, 1) and not report.errors
    final = _reopen(settings, fake_embedder)
    assert final.all_chroma_ids() == final.manifest().chunk_ids(), "no orphans after recovery"


def test_disk_full_gives_a_clear_cli_error_not_a_traceback(tmp_path, helpers, monkeypatch, capsys, fake_embedder):
    monkeypatch.setattr("ingest.embedder.load_embedder", lambda settings: fake_embedder)
    folder = _folder(tmp_path, helpers)
    monkeypatch.setattr("ingest.store.IndexStore.add_chunks", _enospc)
    try:
        code = main(["ingest", str(folder), "--store", str(tmp_path / "ix"), "--no-progress"])
    except OSError as exc:  # escaped the CLI's error translation
        pytest.fail(f"disk-full escaped the CLI as a raw {type(exc).__name__} (a traceback for the user): {exc}")
    err = capsys.readouterr().err
    assert code == 1 and "space" in err.lower() and "Traceback" not in err


def test_unsupported_files_in_a_folder_are_reported_not_silently_skipped(tmp_path, helpers, settings, store, caplog):
    """A report entry or a warning (both reach the CLI's stderr) is enough; silence is not."""
    folder = _folder(tmp_path, helpers)
    (folder / "minutes.docx").write_bytes(b"PK\x03\x04 a word document")
    with caplog.at_level("WARNING"):
        report = ingest_paths(store, settings, [folder])
    assert report.added == 3
    mentioned = " ".join(f"{p} {r}" for p, r in report.errors + report.warnings) + " " + report.summary() + " " + caplog.text
    assert "minutes.docx" in mentioned or "unsupported" in mentioned.lower() or "skipped" in mentioned.lower(), (
        f"a file the clinician pointed at was ignored without a word: {report.summary()} {report.errors}"
    )


def test_symlink_loop_in_a_folder_does_not_hang(tmp_path, helpers, settings, store):
    folder = _folder(tmp_path, helpers, n_good=1)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    report = ingest_paths(store, settings, [folder])
    assert "good-0" in store.manifest().docs
    assert report.documents >= 1
