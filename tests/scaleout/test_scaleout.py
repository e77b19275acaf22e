"""Scale-out: several GuideRail processes share one Chroma server (`chroma run`) and one OpenAI-compatible
LLM server, as several machines would. Every process has its own data folder (GUIDERAIL_DATA_DIR), so
nothing is shared through the local disk — only through the two servers.

Real parts: `chroma run`, the MiniLM embedder, `guiderail ingest/ask/serve` processes, the Gradio API
(gradio_client). The LLM server is the stub from tests/reliability/stub_llm.py in its own process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "corpus"
SUBSET = [
    "guidelines/prostate/aua-suo-advanced-prostate.md",
    "labels/olaparib.md",
    "labels/enzalutamide.md",
    "labels/docetaxel.md",
    "labels/abiraterone.md",
]
QUESTION = "Patient with mCRPC progressed on enzalutamide, BRCA2 pathogenic germline mutation. What are the options?"
NEW_DOC_ID = "quokka-fever-test"
NEW_QUESTION = "What is recommended for quokka fever?"
NEW_DOC = f"""---
id: {NEW_DOC_ID}
kind: guideline
title: Quokka fever — test guideline for scale-out
issuing_bodies: [TESTORG]
year: 2026
last_reviewed: 2026-11-29
---
# Quokka fever

## Treatment
Quokka fever (a fictional test condition) is treated with supportive care and oral hydration; review the
patient with quokka fever after 48 hours and escalate if the quokka fever persists.
"""


def _loadtest():
    spec = importlib.util.spec_from_file_location("_scaleout_loadtest", ROOT / "scripts" / "loadtest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _env(srv, data_dir: Path, llm_server=None, **extra: str) -> dict[str, str]:
    env = srv.child_env(GUIDERAIL_DATA_DIR=str(data_dir), GUIDERAIL_INCLUDE_OPEN_MEDICINE="false", **extra)
    if llm_server is not None:
        env.update(
            GUIDERAIL_LLM="openai",
            GUIDERAIL_OPENAI_BASE_URL=llm_server.base_url("ok"),
            GUIDERAIL_OPENAI_MODEL="stub-model",
            GUIDERAIL_LLM_TIMEOUT_S="30",
        )
    return env


def _cli(srv, data_dir: Path, *args: str, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [srv.PY, "-m", "assistant.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=_env(srv, data_dir, **extra), cwd=ROOT,
    )


def _ask_json(srv, data_dir: Path, chroma_url: str, question: str) -> dict:
    done = _cli(srv, data_dir, "ask", question, "--llm", "none", "--chroma-url", chroma_url, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


class App:
    """`guiderail serve` in its own process and data folder, reached through the Gradio API."""

    def __init__(self, srv, tmp: Path, chroma_url: str, llm_server, name: str) -> None:
        self.port = srv.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{name}.log"
        env = _env(srv, tmp / f"data-{name}", llm_server)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [srv.PY, "-m", "assistant.cli", "serve", "--port", str(self.port), "--chroma-url", chroma_url],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True,
            )
        lt = _loadtest()
        lt.wait_ready(self.url, self.proc, 240)
        from gradio_client import Client

        self.client = Client(self.url, verbose=False)
        self.ep = lt.Endpoint(self.client)
        self.lock = threading.Lock()

    def ask(self, question: str) -> dict:
        with self.lock:  # one client = one session; sessions are per client
            out = self.client.submit(question, "clinician", api_name="/ask").result(timeout=300)
        labels = [lab.lower() for lab in self.ep.labels]
        sources = out[labels.index("sources")] if "sources" in labels else ""
        status = out[self.ep.status] if self.ep.status is not None else ""
        chat = out[self.ep.chat]
        return {"sources": str(sources), "status": str(status), "answer": str(chat[-1]["content"]) if chat else ""}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, srv, chroma, llm_server):
    """One ingest (machine I) into the Chroma server, then two app processes (machines A and B)."""
    tmp = tmp_path_factory.mktemp("scaleout")
    docs = tmp / "docs"
    docs.mkdir()
    for rel in SUBSET:
        shutil.copy(CORPUS / rel, docs / Path(rel).name)
    done = _cli(srv, tmp / "data-ingest", "ingest", str(docs), "--chroma-url", chroma.url, "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    apps = []
    try:
        apps = [App(srv, tmp, chroma.url, llm_server, name) for name in ("a", "b")]
        yield {"tmp": tmp, "docs": docs, "apps": apps, "chroma": chroma, "llm": llm_server}
    finally:
        for app in apps:
            app.stop()


def _chunk_ids(sources_html: str) -> list[str]:
    import re

    return re.findall(r"chunk <code>([^<]+)</code>", sources_html)


def test_two_app_processes_answer_from_the_shared_servers(deployment):
    answers = [app.ask(QUESTION) for app in deployment["apps"]]
    for a in answers:
        assert "model server" in a["status"], a["status"]
        assert "answer mode: llm" in a["status"], f"the LLM server's answer should be used: {a['status']}"
        assert _chunk_ids(a["sources"]), "the answer must cite passages from the shared index"
    assert _chunk_ids(answers[0]["sources"]) == _chunk_ids(answers[1]["sources"]), "same index, same sources"


def test_fresh_cli_process_reads_the_server_index(deployment, srv):
    data = deployment["tmp"] / "data-fresh-reader"
    result = _ask_json(srv, data, deployment["chroma"].url, QUESTION)
    assert result["citations"] and not result["abstained"]


def test_ingest_into_the_server_while_another_process_answers(deployment, srv):
    app = deployment["apps"][0]
    new = deployment["tmp"] / "new-docs"
    new.mkdir(exist_ok=True)
    (new / "quokka.md").write_text(NEW_DOC, encoding="utf-8")

    errors: list[str] = []
    answered: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                a = app.ask(QUESTION)
                if not _chunk_ids(a["sources"]):
                    errors.append(f"answer without sources during ingest: {a['status']}")
                answered.append(1)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    asker = threading.Thread(target=keep_asking, daemon=True)
    asker.start()
    try:
        done = _cli(srv, deployment["tmp"] / "data-ingest", "ingest", str(new), "--chroma-url",
                    deployment["chroma"].url, "--no-progress")
    finally:
        stop.set()
        asker.join(120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "added 1" in done.stdout, done.stdout
    assert answered and not errors, errors[:5]

    result = _ask_json(srv, deployment["tmp"] / "data-reader-after", deployment["chroma"].url, NEW_QUESTION)
    assert any(c["doc_id"] == NEW_DOC_ID for c in result["citations"]), "a new process must see the new document"
    old = _ask_json(srv, deployment["tmp"] / "data-reader-after", deployment["chroma"].url, QUESTION)
    assert old["citations"], "documents ingested earlier must still be there"


def test_running_app_sees_documents_ingested_by_another_process(deployment):
    """A long-running worker must pick up what another machine ingested, without a restart."""
    app = deployment["apps"][1]
    deadline = time.monotonic() + 30
    seen = False
    while time.monotonic() < deadline and not seen:
        a = app.ask(NEW_QUESTION)
        seen = any(NEW_DOC_ID in cid or "Quokka" in a["sources"] for cid in _chunk_ids(a["sources"]))
        if not seen:
            time.sleep(3)
    assert seen, "the running app never saw the document ingested into the shared server"


def test_ingest_from_a_second_machine_keeps_what_the_first_ingested(deployment, srv):
    """A second ingesting machine (its own data folder) must add to the shared index, never wipe it."""
    other = deployment["tmp"] / "other-docs"
    other.mkdir(exist_ok=True)
    (other / "second.md").write_text(
        NEW_DOC.replace(NEW_DOC_ID, "wombat-flu-test").replace("Quokka", "Wombat").replace("quokka", "wombat"),
        encoding="utf-8",
    )
    before = _ask_json(srv, deployment["tmp"] / "data-check-1", deployment["chroma"].url, QUESTION)
    done = _cli(srv, deployment["tmp"] / "data-second-ingester", "ingest", str(other), "--chroma-url",
                deployment["chroma"].url, "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    after = _ask_json(srv, deployment["tmp"] / "data-check-2", deployment["chroma"].url, QUESTION)
    assert after["citations"] and not after["abstained"], "the first machine's documents were lost"
    assert {c["chunk_id"] for c in after["citations"]} == {c["chunk_id"] for c in before["citations"]}
    wombat = _ask_json(srv, deployment["tmp"] / "data-check-3", deployment["chroma"].url, "What is recommended for wombat flu?")
    assert any(c["doc_id"] == "wombat-flu-test" for c in wombat["citations"])


def test_two_ingesting_machines_alternate_without_deleting_each_others_documents(deployment, srv):
    """Machine I ingests again after machine II added a document: II's document must survive I's run
    (each machine's manifest only knows what it ingested; the shared index must not be 'cleaned' of the rest)."""
    koala = deployment["tmp"] / "koala-docs"
    koala.mkdir(exist_ok=True)
    (koala / "koala.md").write_text(
        NEW_DOC.replace(NEW_DOC_ID, "koala-cough-test").replace("Quokka", "Koala").replace("quokka", "koala"),
        encoding="utf-8",
    )
    done = _cli(srv, deployment["tmp"] / "data-ingest", "ingest", str(koala), "--chroma-url",
                deployment["chroma"].url, "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    reader = deployment["tmp"] / "data-check-4"
    wombat = _ask_json(srv, reader, deployment["chroma"].url, "What is recommended for wombat flu?")
    assert any(c["doc_id"] == "wombat-flu-test" for c in wombat["citations"]), (
        "machine I's ingest deleted the document machine II had added"
    )
    koala_answer = _ask_json(srv, reader, deployment["chroma"].url, "What is recommended for koala cough?")
    assert any(c["doc_id"] == "koala-cough-test" for c in koala_answer["citations"])
