"""Fault injection for ingest and the index: run every fault on a temporary store, one line per fault.

    python scripts/chaos.py            # all faults; exit 1 if any FAILs
    python scripts/chaos.py --only kill9,question --keep

Each fault runs the real `guiderail` CLI in a subprocess (real Chroma PersistentClient, BM25, loaders)
with the test/dev hash embedder (`--embedder hash`) so the whole run takes about a minute without
model files. Faults a root user or this machine cannot cause for real (EACCES as root, EIO, ENOSPC, a
file vanishing between listing and reading) are injected inside the child process at the same call
the kernel would fail; kill -9 is real (SIGKILL from outside at a frozen point, see
tests/reliability/crash_runner.py). Prints `PASS|FAIL  <fault>  <what was observed>`.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RUNNER = ROOT / "tests" / "reliability" / "crash_runner.py"
LABELS = ("labels/olaparib.md", "labels/docetaxel.md", "labels/cabazitaxel.md")
GOOD = """---
id: good-{i}
title: Test guideline {i} on {topic}
issuing_bodies: [TESTORG]
year: 2024
---
# Test guideline {i}

## Recommendation
Clinicians should review {topic} every three months and record each review.
"""


@dataclass(frozen=True)
class Result:
    fault: str
    ok: bool
    observed: str


# ---------------------------------------------------------------- child mode: inject OS faults, then run the CLI
def _child(inject: str, argv: list[str]) -> int:
    """Run `guiderail argv` with OS faults injected for files whose names ask for them."""
    sys.path.insert(0, str(ROOT))
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if ".eacces." in self.name:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        if ".eio." in self.name:
            raise OSError(errno.EIO, "Input/output error", str(self))
        if ".vanish." in self.name:
            self.unlink()  # listed by the walk, gone by the time it is read
        return real_read(self)

    Path.read_bytes = read_bytes  # type: ignore[method-assign]
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith(".locked"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    os.scandir = scandir  # type: ignore[assignment]
    if inject == "enospc":
        import ingest.store as store

        def full(path: Path, text: str) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        store.atomic_write = full
    from assistant.cli import main

    return main(argv)


# ---------------------------------------------------------------- helpers
def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUIDERAIL_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False", GUIDERAIL_EMBEDDER="hash")
    return env


def cli(*args: str, inject: str = "os", timeout: float = 180) -> subprocess.CompletedProcess[str]:
    argv = [PY, str(Path(__file__).resolve()), "--child", inject, "--", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)


def kill_at(point: str, *args: str, timeout: float = 180) -> str:
    """Start `guiderail args` frozen at `point` and SIGKILL it there; returns what happened."""
    argv = [PY, str(RUNNER), "--at", point, "--batch", "2", "--", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(f"FROZEN {point}"):
                os.kill(proc.pid, signal.SIGKILL)
                return f"killed at {point} (rc {proc.wait(30)})"
            if time.monotonic() > deadline:
                break
        return f"never reached {point}: rc={proc.wait(30)} {proc.stderr.read()[-300:] if proc.stderr else ''}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def index_state(store: Path) -> tuple[set[str], set[str], bool]:
    """(manifest chunk ids, Chroma ids, manifest exists) — read without writing anything."""
    sys.path.insert(0, str(ROOT))
    from assistant.settings import load_settings
    from ingest.embedder import HashEmbedder
    from ingest.store import open_store

    s = open_store(load_settings(store_dir=store, llm="none"), HashEmbedder(), create=False)
    return s.manifest().chunk_ids(), s.all_chroma_ids(), (store / "manifest.json").exists()


def answers_only_committed(store: Path) -> str | None:
    sys.path.insert(0, str(ROOT))
    from assistant.settings import load_settings
    from ingest.embedder import HashEmbedder
    from ingest.store import open_store

    s = open_store(load_settings(store_dir=store, llm="none"), HashEmbedder(), create=False)
    live = s.manifest().chunk_ids()
    hits = s.query_dense("olaparib dose prostate", 5) + s.query_bm25("olaparib dose", 5)
    if not hits:
        return "no answer from the index"
    stray = [h.chunk_id for h in hits if h.chunk_id not in live]
    return f"{len(stray)} uncommitted chunk(s) returned" if stray else None


def reader_files(store: Path) -> tuple[bytes, list[str]]:
    m = store / "manifest.json"
    return (m.read_bytes() if m.exists() else b"", sorted(str(p.relative_to(store)) for p in store.glob("bm25-*/**/*")))


def first_line(text: str, word: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if word in ln), "(not mentioned)")[:160]


# ---------------------------------------------------------------- faults
def faults_bad_files(tmp: Path) -> list[Result]:
    folder = tmp / "mixed"
    folder.mkdir()
    for i, topic in enumerate(["anticoagulation", "hypertension", "asthma"]):
        (folder / f"good-{i}.md").write_text(GOOD.format(i=i, topic=topic), encoding="utf-8")
    bad = {
        "permission denied (EACCES)": "secret.eacces.md",
        "I/O error (EIO)": "disk.eio.md",
        "file deleted mid-run": "gone.vanish.md",
        "corrupt PDF": "broken.pdf",
        "binary data behind .md": "binary.md",
        "empty file": "empty.txt",
        "YAML alias bomb (~400 bytes, 10^9 once expanded)": "bomb.md",
        "front matter nested 300 deep": "deep.md",
        "4 GB sparse file (size limit)": "huge.txt",
    }
    for name in ("secret.eacces.md", "disk.eio.md", "gone.vanish.md"):
        (folder / name).write_text(GOOD.format(i=name[:4], topic="gout"), encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(2000))
    (folder / "binary.md").write_bytes(bytes(range(256)) * 8)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "bomb.md").write_text(alias_bomb(), encoding="utf-8")
    (folder / "deep.md").write_text("---\ntitle: " + "[" * 300 + "]" * 300 + "\n---\n# T\n\nBody.\n", encoding="utf-8")
    with open(folder / "huge.txt", "wb") as f:
        f.truncate(4 * 1024**3)
    warn = {
        "broken symlink": "dangling.md",
        "symlink loop": "self.md",
        "link back to an ancestor folder": "up",
        "unreadable subfolder": "sub.locked",
    }
    (folder / "dangling.md").symlink_to(tmp / "nowhere.md")
    (folder / "self.md").symlink_to(folder / "self.md")
    (folder / "up").symlink_to(folder, target_is_directory=True)
    (folder / "sub.locked").mkdir()
    (folder / "sub.locked" / "inside.md").write_text(GOOD.format(i=9, topic="gout"), encoding="utf-8")
    (folder / "latin1.txt").write_bytes("Café crème: posología en niños — revisión anual.".encode("cp1252"))

    t0 = time.perf_counter()
    done = cli("ingest", str(folder), "--store", str(tmp / "mixed-ix"), "--no-progress")
    secs = time.perf_counter() - t0
    out: list[Result] = []
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no summary)"
    indexed = "added 4" in summary  # 3 good + the latin-1 text
    out.append(
        Result(
            "one ingest over all bad files below",
            done.returncode == 0 and indexed and "Traceback" not in done.stderr and secs < 60,
            f"exit {done.returncode} in {secs:.1f} s; {summary}",
        )
    )
    for fault, name in {**bad, **warn}.items():
        where = f"{folder / name}:"
        n = done.stderr.count(where)
        prefix = "warning:" if fault in warn else "error:"
        line = first_line(done.stderr, where)
        ok = n == 1 and line.startswith(prefix)
        out.append(Result(fault, ok, f"named {n}x: {line}"))
    latin_error = f"error: {folder / 'latin1.txt'}" in done.stderr
    out.append(Result("cp1252 text file", not latin_error and indexed, first_line(done.stderr, "latin1.txt")))

    allbad = tmp / "allbad"
    allbad.mkdir()
    (allbad / "a.pdf").write_bytes(b"%PDF-1.4 junk")
    (allbad / "b.md").write_text(alias_bomb(), encoding="utf-8")
    d2 = cli("ingest", str(allbad), "--store", str(tmp / "allbad-ix"), "--no-progress")
    out.append(Result("every file bad", d2.returncode == 1 and "Traceback" not in d2.stderr, f"exit {d2.returncode}; {d2.stdout.strip()[-80:]}"))
    return out


def alias_bomb() -> str:
    lines = ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    lines += [f"title: *{prev}", "---", "# Bomb", "", "Body text of the bomb document.", ""]
    return "\n".join(lines)


def faults_front_matter(tmp: Path) -> list[Result]:
    sys.path.insert(0, str(ROOT))
    from assistant.errors import IngestError
    from ingest.loaders import load_file

    path = tmp / "bomb.md"
    path.write_text(alias_bomb(), encoding="utf-8")
    t0 = time.perf_counter()
    try:
        load_file(path)
        observed, ok = "loaded (not refused)", False
    except IngestError as exc:
        observed, ok = f"IngestError: {exc.reason}", exc.path == str(path)
    secs = time.perf_counter() - t0
    return [Result("alias bomb refused fast", ok and secs < 1.0, f"{path.stat().st_size} bytes, {secs * 1000:.1f} ms, {observed}")]


def faults_commit_point(tmp: Path) -> list[Result]:
    out: list[Result] = []
    docs = tmp / "labels"
    docs.mkdir()
    for rel in LABELS:
        shutil.copy(ROOT / "corpus" / rel, docs / Path(rel).name)

    # kill -9 during the very first ingest: not ready, never adopted, the reader writes nothing
    fresh = tmp / "fresh-ix"
    how = kill_at("upsert:2", "ingest", str(docs), "--store", str(fresh), "--no-progress")
    live, chroma, has_manifest = index_state(fresh)
    asked = cli("ask", "olaparib dose", "--store", str(fresh), "--llm", "none")
    ok = not has_manifest and bool(chroma) and not live and asked.returncode == 1 and "not ready" in asked.stderr
    ok = ok and not (fresh / "manifest.json").exists()
    out.append(Result("kill -9 during first ingest", ok, f"{how}; {len(chroma)} partial chunks not served; ask: {asked.stderr.strip()[:90]}"))
    again = cli("ingest", str(docs), "--store", str(fresh), "--no-progress")
    live, chroma, _ = index_state(fresh)
    out.append(Result("ingest after a crashed first ingest", again.returncode == 0 and live == chroma and bool(live), f"exit {again.returncode}; {len(live)} chunks, Chroma == manifest: {live == chroma}"))

    # v1 built from `work` (the folder an index was built from is the scope of its updates), v2 = one
    # file edited, one deleted; every update switches `work` to v2; a clean ingest of v2 is the reference
    work = tmp / "work"
    shutil.copytree(docs, work)
    v1 = tmp / "v1-ix"
    cli("ingest", str(work), "--store", str(v1), "--no-progress")
    v2 = tmp / "v2"
    shutil.copytree(docs, v2)
    (v2 / "docetaxel.md").unlink()
    addendum = "".join(f"\n## Addendum {i}\n\nA new paragraph {i} about monitoring blood counts, dose and interactions.\n" for i in range(8))
    (v2 / "olaparib.md").write_text((v2 / "olaparib.md").read_text(encoding="utf-8") + addendum, encoding="utf-8")
    ref = tmp / "ref-ix"
    cli("ingest", str(v2), "--store", str(ref), "--no-progress")
    ref_live, _, _ = index_state(ref)
    v1_live, _, _ = index_state(v1)
    for point in ("upsert:1", "upsert:3", "sidecar", "manifest-tmp", "committed", "delete:1"):
        store = tmp / f"upd-{point.replace(':', '')}"
        shutil.copytree(v1, store)
        shutil.rmtree(work)
        shutil.copytree(v2, work)
        how = kill_at(point, "ingest", str(work), "--store", str(store), "--no-progress")
        live, chroma, _ = index_state(store)
        committed = point in ("committed", "delete:1")
        problem = answers_only_committed(store)
        ok = (live != v1_live) == committed and live <= chroma and problem is None
        rec = cli("ingest", str(work), "--store", str(store), "--no-progress")
        live2, chroma2, _ = index_state(store)
        # chunk ids hash doc id + text; the reference's doc ids match, so equal sets mean a clean result
        ok = ok and rec.returncode == 0 and live2 == chroma2 == ref_live
        state = "new index" if committed else "previous index"
        out.append(Result(f"kill -9 during update at {point}", ok, f"{how}; {state} answers, committed chunks only: {problem is None}; next ingest: exit {rec.returncode}, Chroma == manifest == clean ingest: {live2 == chroma2 == ref_live} ({len(live2)} chunks)"))

    # kill -9 during the first ask after a crash (the reader rebuilding a lost BM25 sidecar in memory)
    store = tmp / "ask-ix"
    shutil.copytree(v1, store)
    kill_at("committed", "ingest", str(work), "--store", str(store), "--no-progress")  # work holds v2
    gen = json.loads((store / "manifest.json").read_text(encoding="utf-8"))["generation"]
    shutil.rmtree(store / f"bm25-{gen}", ignore_errors=True)
    before = reader_files(store)
    how = kill_at("read", "ask", "olaparib dose", "--store", str(store), "--llm", "none")
    after = reader_files(store)
    asked = cli("ask", "olaparib dose", "--store", str(store), "--llm", "none")
    out.append(Result("kill -9 during the first ask after a crash", before == after and asked.returncode == 0, f"{how}; manifest/sidecars unchanged: {before == after}; next ask exit {asked.returncode} {asked.stderr.strip()[-200:]}"))

    # disk full at the commit point
    store = tmp / "enospc"
    shutil.copytree(v1, store)
    full = cli("ingest", str(work), "--store", str(store), "--no-progress", inject="enospc")
    live, _, _ = index_state(store)
    out.append(Result("disk full (ENOSPC) at the manifest write", full.returncode == 1 and "No space left" in full.stderr and live == v1_live, f"exit {full.returncode}; {full.stderr.strip()[-100:]}; previous index intact: {live == v1_live}"))
    return out


def faults_cli(tmp: Path) -> list[Result]:
    out: list[Result] = []
    docs = tmp / "cli-docs"
    docs.mkdir()
    shutil.copy(ROOT / "corpus" / LABELS[0], docs)
    store = tmp / "cli-ix"
    done = cli("ingest", str(docs), "--store", str(store), "--no-progress")
    for q, name in (("", "empty question"), ("x" * 20_001, "over-long question")):
        absent = tmp / "q-never"
        t0 = time.perf_counter()
        r = cli("ask", q, "--store", str(absent), "--embedder", "minilm")
        secs = time.perf_counter() - t0
        out.append(Result(f"ask: {name}", r.returncode == 1 and secs < 8 and not absent.exists(), f"exit {r.returncode} in {secs:.1f} s (before any model load): {r.stderr.strip()[:90]}"))
    typo = tmp / "indx"
    r = cli("ask", "olaparib dose", "--store", str(typo), "--llm", "none")
    out.append(Result("ask --store <typo>", r.returncode == 1 and not typo.exists(), f"exit {r.returncode}, folder created: {typo.exists()}: {r.stderr.strip()[:100]}"))
    r = cli("ask", "olaparib dose", "--store", str(store), "--llm", "none")
    debug = [ln for ln in (done.stderr + r.stderr).splitlines() if "DEBUG" in ln]
    out.append(Result("no DEBUG lines at the default level", not debug and r.returncode == 0, f"ingest+ask stderr DEBUG lines: {len(debug)}"))
    port = _closed_port()
    r = cli("ask", "olaparib dose", "--store", str(store), "--chroma-url", f"http://127.0.0.1:{port}", "--llm", "none")
    out.append(Result("--chroma-url with --store, server down", r.returncode == 1 and "cannot reach" in r.stderr and "Traceback" not in r.stderr, f"exit {r.returncode}: {r.stderr.strip()[:110]}"))
    env_port = _closed_port()
    r = subprocess.run(
        [PY, str(Path(__file__).resolve()), "--child", "os", "--", "ask", "olaparib dose", "--store", str(store), "--llm", "openai"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
        env={**_env(), "GUIDERAIL_OPENAI_BASE_URL": f"http://127.0.0.1:{env_port}/v1", "GUIDERAIL_LLM_TIMEOUT_S": "5"},
    )
    out.append(Result("LLM server down", r.returncode == 0 and "unavailable" in r.stdout, f"exit {r.returncode}; {first_line(r.stdout, 'unavailable')[:110]}"))
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GROUPS: dict[str, Callable[[Path], list[Result]]] = {
    "files": faults_bad_files,
    "frontmatter": faults_front_matter,
    "kill9": faults_commit_point,
    "question": faults_cli,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated groups: {','.join(GROUPS)}")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
        return _child(args.child, rest)
    groups = args.only.split(",") if args.only else list(GROUPS)
    tmp = Path(tempfile.mkdtemp(prefix="guiderail-chaos-"))
    failed = 0
    t0 = time.perf_counter()
    try:
        for g in groups:
            gdir = tmp / g
            gdir.mkdir()
            try:
                results = GROUPS[g](gdir)
            except Exception as exc:  # a crash of the harness itself is a failure, reported, not a traceback
                results = [Result(f"{g} (harness)", False, f"{type(exc).__name__}: {exc}")]
            for r in results:
                failed += not r.ok
                print(f"{'PASS' if r.ok else 'FAIL'}  {r.fault:<44} {r.observed}", flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'FAILED' if failed else 'OK'}: {failed} failure(s), {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
