"""Issue 14: exported patient records are owner-only, live in one folder per session inside the server's
private folder (which is also Gradio's cache, so no shared copy is made), and are deleted when the
session ends, when the server stops (atexit, SIGTERM) and at the next start after a kill -9."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.web import session as S

from .conftest import FakeAssistant

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Zebedee Quixotic-Marsh"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _session(fake: FakeAssistant) -> S.ChatSession:
    session = S.ChatSession()
    list(S.stream_answer(fake, session, f"Mr {SECRET}, mCRPC with CHEK2: options?", configured_backend="none"))
    return session


def test_exports_are_owner_only_in_a_per_session_folder(tmp_path):
    old = os.umask(0o022)  # a typical umask: without care files come out world-readable (0644)
    try:
        vault = S.ExportVault.create(tmp_path)
        folder = vault.session_dir(S.session_key("hash-a"))
        md = S.export_markdown(_session(FakeAssistant()), folder)
        audit = S.export_audit(_session(FakeAssistant()), folder, app_version="x", settings_summary={})
    finally:
        os.umask(old)
    assert _mode(vault.root) == 0o700 and _mode(folder) == 0o700 and _mode(folder.parent) == 0o700
    assert _mode(md) == 0o600 and _mode(audit) == 0o600
    assert md.parent == folder and folder.is_relative_to(vault.root)
    assert S.session_key("hash-a") != S.session_key("hash-b") and "hash-a" not in S.session_key("hash-a")


def test_session_end_deletes_only_that_sessions_exports_and_close_deletes_all(tmp_path):
    vault = S.ExportVault.create(tmp_path)
    a = S.export_markdown(_session(FakeAssistant()), vault.session_dir("a"))
    b = S.export_markdown(_session(FakeAssistant()), vault.session_dir("b"))
    vault.end_session("a")
    assert not a.exists() and b.exists()
    vault.close()
    vault.close()  # twice (atexit after a signal) is harmless
    assert not vault.root.exists()


def test_old_exports_are_purged_while_the_session_lasts(tmp_path):
    vault = S.ExportVault.create(tmp_path)
    old = S.export_markdown(_session(FakeAssistant()), vault.session_dir("a"))
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert vault.purge_older_than(3600) == 1 and not old.exists()


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_start_removes_folders_of_killed_servers_and_old_legacy_folders(tmp_path):
    dead = tmp_path / f"{S.APP_DIR_PREFIX}{_dead_pid()}-abc"
    alive = tmp_path / f"{S.APP_DIR_PREFIX}{os.getpid()}-def"
    legacy_old, legacy_new = tmp_path / f"{S.LEGACY_PREFIX}old", tmp_path / f"{S.LEGACY_PREFIX}new"
    other = tmp_path / "someone-elses-folder"
    for d in (dead, alive, legacy_old, legacy_new, other):
        d.mkdir()
        (d / "guiderail-audit-x.json").write_text(SECRET)
    past = time.time() - 7200
    os.utime(legacy_old, (past, past))
    vault = S.ExportVault.create(tmp_path)
    assert not dead.exists() and not legacy_old.exists()
    assert alive.exists() and legacy_new.exists() and other.exists() and vault.root.exists()


_CHILD = """
import sys, time
from pathlib import Path
from assistant.web import session as S
vault = S.ExportVault.create(Path(sys.argv[1]))
folder = vault.session_dir("k")
(folder / "guiderail-audit-x.json").write_text("patient record")
if sys.argv[2] == "term":
    from assistant.web.app import _delete_on_signals
    _delete_on_signals(vault)
print(vault.root, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["kill9", "term"])
def test_exports_of_a_stopped_or_killed_server_do_not_survive(tmp_path, how):
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), how], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        root = Path(proc.stdout.readline().strip())
        assert root.is_dir() and any(root.rglob("guiderail-audit-*"))
        proc.send_signal(signal.SIGKILL if how == "kill9" else signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    if how == "term":
        assert proc.returncode == -signal.SIGTERM, "the default action still ends the process"
        assert not root.exists(), "SIGTERM deletes the exports"
    else:
        assert root.exists(), "kill -9 runs no handler: the next start must clean up"
        S.ExportVault.create(tmp_path)
        assert not root.exists(), "the next start removed the killed server's exports"


def test_build_app_deletes_its_folder_at_exit(tmp_path):
    code = (
        "from assistant.settings import load_settings\nfrom assistant.web.app import build_app\n"
        "demo = build_app(lambda s: None, load_settings(llm='none'))\nprint(demo.guiderail_exports.root)\n"
    )
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    root = Path(done.stdout.strip().splitlines()[-1])
    assert root.parent == tmp_path and not root.exists(), "atexit removed the private folder"


@pytest.mark.integration
def test_export_through_the_api_is_served_in_place_and_deleted_with_the_session(served_app, tmp_path, monkeypatch):
    """One copy only (no duplicate in a shared Gradio cache), owner-only, gone after the tab closes."""
    from gradio_client import Client

    base = tmp_path / "server-tmp"
    base.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(base))
    demo, url = served_app(lambda s: FakeAssistant())
    vault = demo.guiderail_exports
    assert vault.root.parent == base and os.environ["GRADIO_TEMP_DIR"] == str(vault.root)
    client = Client(url, verbose=False, download_files=str(tmp_path / "client"))
    client.predict(f"Mr {SECRET}, mCRPC with CHEK2: options?", "clinician", api_name="/ask")
    audit_path = Path(client.predict(api_name="/export_audit"))
    assert SECRET in json.dumps(json.loads(audit_path.read_text()))
    on_server = [p for p in base.rglob("*") if p.is_file() and SECRET in p.read_text(errors="ignore")]
    assert len(on_server) == 1, f"exactly one copy on the server, found {on_server}"
    served = on_server[0]
    assert served.is_relative_to(vault.root / S.EXPORTS) and _mode(served) == 0o600
    # the tab closes: Gradio calls the app's unload handler with the session's request
    unload = [fn for fn in demo.fns.values() if any(t[1] == "unload" for t in fn.targets)]
    assert len(unload) == 1
    assert served.parent.name == S.session_key(client.session_hash), "one folder per browser session"
    unload[0].fn(request=SimpleNamespace(session_hash=client.session_hash))
    assert not served.exists(), "closing the session deleted its exports"
