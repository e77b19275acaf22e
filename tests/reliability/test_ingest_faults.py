"""Issue 14, ingest/store side: one bad file is that file's error (named once), hostile front matter is
bounded, and the manifest is the one commit point every reader honours (kill -9 proofs use the hash
embedder so the real CLI, Chroma and BM25 run in seconds)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from assistant.errors import IngestError, StoreError
from assistant.settings import load_settings
from ingest.loaders import load_file
from ingest.pipeline import ingest_paths
from ingest.store import MAX_META_CHARS, open_store

RUNNER = Path(__file__).with_name("crash_runner.py")


@pytest.fixture
def settings(tmp_path):
    return load_settings(store_dir=tmp_path / "index", llm="none", include_open_medicine=False)


@pytest.fixture
def store(settings, fake_embedder):
    return open_store(settings, fake_embedder)


def _folder(tmp_path: Path, helpers, n: int = 3) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, topic in enumerate(["anticoagulation", "hypertension", "asthma", "gout"][:n]):
        (folder / f"good-{i}.md").write_text(helpers.good_markdown(f"good-{i}", topic), encoding="utf-8")
    return folder


def alias_bomb() -> str:
    """The issue's 375-byte file: nine levels of `&x [*w, *w, …]` lists, ~10^9 strings once expanded."""
    lines = ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    lines += [f"title: *{prev}", "---", "# Bomb", "", "Body text of the bomb document.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- 1. per-file failures
@pytest.mark.parametrize(
    ("exc", "word"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
        (OSError(errno.EIO, "Input/output error"), "input/output error"),
    ],
    ids=["permission", "io-error"],
)
def test_an_unreadable_file_is_its_own_error_and_the_rest_is_indexed(tmp_path, helpers, settings, store, monkeypatch, exc, word):
    folder = _folder(tmp_path, helpers)
    bad = folder / "locked.md"
    bad.write_text(helpers.good_markdown("locked", "gout"), encoding="utf-8")
    real_read = Path.read_bytes

    def read_bytes(self):
        if self.name == "locked.md":
            raise exc
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    report = ingest_paths(store, settings, [folder])
    assert report.added == 3 and set(store.manifest().docs) == {"good-0", "good-1", "good-2"}
    assert [(Path(p).name, word in r.lower()) for p, r in report.errors] == [("locked.md", True)], report.errors


def test_a_file_deleted_mid_run_is_its_own_error(tmp_path, helpers, settings, store, monkeypatch):
    import ingest.pipeline as pipeline

    folder = _folder(tmp_path, helpers)
    real_load = pipeline.load_file

    def load_file_after_delete(path, *a, **k):
        if Path(path).name == "good-1.md":
            Path(path).unlink()  # listed by the walk, gone when its turn comes
        return real_load(path, *a, **k)

    monkeypatch.setattr(pipeline, "load_file", load_file_after_delete)
    report = ingest_paths(store, settings, [folder])
    assert report.added == 2 and len(report.errors) == 1
    assert report.errors[0][0].endswith("good-1.md") and "no such file" in report.errors[0][1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_chmod_000_file_among_good_ones(tmp_path, helpers, settings, store):
    folder = _folder(tmp_path, helpers)
    bad = folder / "secret.md"
    bad.write_text(helpers.good_markdown("secret", "gout"), encoding="utf-8")
    bad.chmod(0)
    report = ingest_paths(store, settings, [folder])
    assert report.added == 3 and [Path(p).name for p, _ in report.errors] == ["secret.md"]


def test_unreadable_folder_and_broken_or_looping_links_are_named(tmp_path, helpers, settings, store, monkeypatch):
    import ingest.sources as sources

    folder = _folder(tmp_path, helpers)
    locked = folder / "locked"
    locked.mkdir()
    (locked / "inside.md").write_text(helpers.good_markdown("inside", "gout"), encoding="utf-8")
    (folder / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    (folder / "self.md").symlink_to(folder / "self.md")  # ELOOP
    (folder / "up").symlink_to(folder, target_is_directory=True)
    real_scandir = os.scandir

    def scandir(path):  # root ignores permissions, so refuse the listing the way the kernel would
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(sources.os, "scandir", scandir)
    report = ingest_paths(store, settings, [folder])
    assert report.added == 3 and not report.errors
    named = {Path(p).name: r for p, r in report.warnings}
    assert "permission denied" in named["locked"].lower()
    assert "broken symbolic link" in named["dangling.md"]
    assert "loop" in named["self.md"] and "loop" in named["up"]
    assert "4 warning(s)" in report.summary()


def _cli(helpers, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [helpers.PY, "-m", "assistant.cli", *args], capture_output=True, text=True, timeout=timeout,
        env=helpers.child_env(), cwd=helpers.ROOT,
    )


def test_cli_names_each_bad_file_exactly_once(tmp_path, helpers):
    folder = _folder(tmp_path, helpers)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (folder / "bomb.md").write_text(alias_bomb(), encoding="utf-8")
    (folder / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    done = _cli(helpers, "ingest", str(folder), "--store", str(tmp_path / "ix"), "--embedder", "hash", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("broken.pdf") == 1 and done.stderr.count("bomb.md") == 1, done.stderr
    assert done.stderr.count("dangling.md") == 1 and "warning: " in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "2 file(s) failed" in done.stdout


# ---------------------------------------------------------------- 2. hostile front matter
def test_alias_bomb_fails_fast_with_a_named_error(tmp_path):
    path = tmp_path / "bomb.md"
    path.write_text(alias_bomb(), encoding="utf-8")
    assert path.stat().st_size <= 400
    t0 = time.perf_counter()
    with pytest.raises(IngestError) as info:
        load_file(path)
    assert time.perf_counter() - t0 < 1.0
    assert info.value.path == str(path) and ("alias" in info.value.reason or "anchor" in info.value.reason)


@pytest.mark.parametrize(
    "front",
    [
        "title: x\nref: *nothing\n",  # an alias alone
        "title: " + "[" * 300 + "]" * 300 + "\n",  # nesting far past the depth limit
        "tags: [" + ",".join(["t"] * 20_000) + "]\n",  # too many values
        "title: " + "x" * 70_000 + "\n",  # front matter above the size limit
    ],
    ids=["alias", "deep", "many-values", "huge"],
)
def test_front_matter_outside_the_bounds_is_refused_quickly(tmp_path, front):
    path = tmp_path / "hostile.md"
    path.write_text(f"---\n{front}---\n# T\n\nBody.\n", encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.raises(IngestError, match="front matter"):
        load_file(path)
    assert time.perf_counter() - t0 < 1.0


def test_every_metadata_field_stored_is_capped(tmp_path, settings, store):
    folder = tmp_path / "docs"
    folder.mkdir()
    long = "Guideline " + "y" * 30_000
    (folder / "long.md").write_text(f"---\ntitle: {long}\nurl: https://x.org/{'z' * 20_000}\n---\n# H\n\nSome body text here.\n", encoding="utf-8")
    report = ingest_paths(store, settings, [folder])
    assert report.added == 1
    got = store.collection.get(include=["metadatas"])
    for md in got["metadatas"]:
        assert all(len(v) <= MAX_META_CHARS for v in md.values() if isinstance(v, str)), {k: len(str(v)) for k, v in md.items()}
    assert all(len(str(v)) <= MAX_META_CHARS for m in store.sidecar().metas for v in m.values())


def test_shipped_corpus_front_matter_still_loads():
    from assistant.knowledge import validate_corpus

    settings = load_settings(llm="none")
    report = validate_corpus(settings.corpus_dir)
    assert not report.errors, report.errors[:3]


# ---------------------------------------------------------------- 3. one commit point, kill -9 proofs
def _runner(helpers, store: Path, *cli: str, at: str = "none") -> list[str]:
    return [helpers.PY, str(RUNNER), "--at", at, "--batch", "2", "--", *cli]


def _ingest_argv(helpers, store: Path, folder: Path, at: str = "none") -> list[str]:
    return _runner(helpers, store, "ingest", str(folder), "--store", str(store), "--embedder", "hash", "--no-progress", at=at)


def _ask_argv(helpers, store: Path, at: str = "none") -> list[str]:
    return _runner(helpers, store, "ask", "olaparib dose in prostate cancer", "--store", str(store), "--embedder", "hash", "--llm", "none", at=at)


def kill_at(helpers, argv: list[str], at: str, timeout: float = 120) -> None:
    """Run argv until it prints FROZEN <at>, then SIGKILL it (as an OOM killer or a power cut would)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=helpers.child_env(), cwd=helpers.ROOT)
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(f"FROZEN {at}") or time.monotonic() > deadline:
                break
        else:
            pytest.fail(f"never reached {at}: rc={proc.wait()} err={proc.stderr.read()[-2000:]}")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _run(helpers, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=helpers.child_env(), cwd=helpers.ROOT)


@pytest.fixture(scope="module")
def label_folder(tmp_path_factory, helpers) -> Path:
    import shutil

    folder = tmp_path_factory.mktemp("labels") / "docs"
    folder.mkdir()
    for rel in ("labels/olaparib.md", "labels/docetaxel.md", "labels/cabazitaxel.md"):
        shutil.copy(helpers.ROOT / "corpus" / rel, folder / Path(rel).name)
    return folder


def _state(store: Path) -> dict[str, bytes | list[str]]:
    """What readers depend on: the manifest bytes and the sidecar folders (Chroma's own files excluded)."""
    manifest = store / "manifest.json"
    return {
        "manifest": manifest.read_bytes() if manifest.exists() else b"",
        "sidecars": sorted(str(p.relative_to(store)) for p in store.glob("bm25-*/**/*")),
    }


def test_kill9_during_first_ingest_leaves_an_index_that_is_not_ready(tmp_path, helpers, label_folder):
    from assistant.pipeline import build_assistant
    from ingest.embedder import HashEmbedder

    store = tmp_path / "ix"
    kill_at(helpers, _ingest_argv(helpers, store, label_folder, "upsert:2"), "upsert:2")
    assert not (store / "manifest.json").exists()
    s = open_store(load_settings(store_dir=store, llm="none"), HashEmbedder(), create=False)
    assert s.all_chroma_ids(), "the crash left partial chunks in Chroma"
    assert not s.ready and s.count() == 0 and not s.query_bm25("olaparib", 3) and not s.query_dense("olaparib", 3)
    with pytest.raises(StoreError):
        build_assistant(load_settings(store_dir=store, llm="none", embedder="hash"))
    asked = _run(helpers, _ask_argv(helpers, store))
    assert asked.returncode == 1 and "not ready" in asked.stderr and "run `guiderail ingest" in asked.stderr, asked.stderr
    assert not (store / "manifest.json").exists(), "a reader never writes the manifest"
    done = _run(helpers, _ingest_argv(helpers, store, label_folder))
    assert done.returncode == 0, done.stderr
    s = open_store(load_settings(store_dir=store, llm="none"), HashEmbedder())
    assert s.ready and s.all_chroma_ids() == s.manifest().chunk_ids() and len(s.manifest().docs) == 3


@pytest.mark.parametrize("point", ["upsert:1", "manifest-tmp", "committed"])
def test_kill9_during_an_update_then_kill9_during_the_first_ask(tmp_path, helpers, label_folder, point):
    import shutil

    from ingest.embedder import HashEmbedder

    work = tmp_path / "docs"
    shutil.copytree(label_folder, work)
    store = tmp_path / "ix"
    assert _run(helpers, _ingest_argv(helpers, store, work)).returncode == 0
    before = open_store(load_settings(store_dir=store, llm="none"), HashEmbedder()).manifest().chunk_ids()
    (work / "docetaxel.md").unlink()
    (work / "olaparib.md").write_text((work / "olaparib.md").read_text(encoding="utf-8") + "\n## Addendum\n\nA new paragraph.\n", encoding="utf-8")
    kill_at(helpers, _ingest_argv(helpers, store, work, point), point)
    # the first ask after the crash: lose its sidecar too, so the reader must rebuild it, and kill it there
    import json

    shutil.rmtree(store / f"bm25-{json.loads((store / 'manifest.json').read_text())['generation']}")
    state = _state(store)
    kill_at(helpers, _ask_argv(helpers, store, "read"), "read")
    assert _state(store) == state, "a reader wrote to the index"
    s = open_store(load_settings(store_dir=store, llm="none"), HashEmbedder())
    live = s.manifest().chunk_ids()
    assert (live == before) if point != "committed" else (live != before)
    hits = s.query_dense("olaparib", 5) + s.query_bm25("olaparib", 5)
    assert hits and all(h.chunk_id in live for h in hits), "only committed chunks are ever returned"
    asked = _run(helpers, _ask_argv(helpers, store))
    assert asked.returncode == 0 and "Traceback" not in asked.stderr, asked.stderr
    done = _run(helpers, _ingest_argv(helpers, store, work))
    assert done.returncode == 0, done.stderr
    s = open_store(load_settings(store_dir=store, llm="none"), HashEmbedder())
    assert s.all_chroma_ids() == s.manifest().chunk_ids() and set(s.manifest().docs) == {"label-olaparib", "label-cabazitaxel"}


# ---------------------------------------------------------------- 4. smaller items
@pytest.mark.parametrize(("question", "word"), [("", "empty"), ("   \t ", "empty"), ("x" * 20_001, "limit")])
def test_ask_rejects_a_bad_question_before_loading_anything(tmp_path, helpers, question, word):
    store = tmp_path / "never-created"
    t0 = time.perf_counter()
    done = _cli(helpers, "ask", question, "--store", str(store))  # the real MiniLM would take ~10 s to load
    assert done.returncode == 1 and word in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert time.perf_counter() - t0 < 8.0
    assert not store.exists()


def test_ask_with_a_mistyped_store_creates_nothing(tmp_path, helpers):
    typo = tmp_path / "indx"
    done = _cli(helpers, "ask", "What is the dose of olaparib?", "--store", str(typo), "--llm", "none")
    assert done.returncode == 1 and "no index at" in done.stderr and str(typo) in done.stderr, done.stderr
    assert not typo.exists()
    with pytest.raises(StoreError):
        from ingest.embedder import HashEmbedder

        open_store(load_settings(store_dir=typo), HashEmbedder(), create=False)
    assert not typo.exists()


def test_no_debug_lines_at_the_default_log_level(tmp_path, helpers, label_folder):
    store = tmp_path / "ix"
    done = _cli(helpers, "ingest", str(label_folder), "--store", str(store), "--embedder", "hash", "--no-progress")
    assert done.returncode == 0 and "DEBUG" not in done.stderr, done.stderr
    asked = _cli(helpers, "ask", "olaparib dose", "--store", str(store), "--embedder", "hash", "--llm", "none")
    assert asked.returncode == 0 and "DEBUG" not in asked.stderr, asked.stderr


def test_chroma_url_with_store_keeps_the_local_metadata_in_the_store_folder(tmp_path):
    from assistant.cli import build_parser, settings_from_args
    from ingest.store import remote_meta_dir

    args = build_parser().parse_args(["ask", "q", "--store", str(tmp_path / "meta"), "--chroma-url", "http://127.0.0.1:9"])
    settings = settings_from_args(args)
    assert settings.chroma_url == "http://127.0.0.1:9" and settings.index_dir == tmp_path / "meta"
    assert remote_meta_dir(settings).is_relative_to(tmp_path / "meta")
