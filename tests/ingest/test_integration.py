"""Integration: the real MiniLM (its truncation measured), a real PersistentClient, a real Chroma server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import GUIDE_MD, make_pdf

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def minilm():
    from assistant.settings import load_settings
    from ingest.embedder import load_embedder

    return load_embedder(load_settings())


def test_minilm_truncates_at_256_and_chunks_fit(minilm) -> None:
    import numpy as np

    from ingest.chunking import chunk_sections
    from ingest.models import DocumentMeta, Section

    assert minilm.max_tokens == 256 and minilm.dimension == 384
    long = " ".join(f"olaparib{i} CHEK2 Lu-177-PSMA-617" for i in range(120))
    assert minilm.count_tokens(long) > 300
    a, b = minilm.embed([long, long + " completely different cardiology tail about warfarin"])
    assert np.allclose(a, b, atol=1e-5), "text past 256 word-pieces must be invisible to the model"
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-4

    meta = DocumentMeta(doc_id="t", title="Token limit test")
    chunks = chunk_sections(
        meta, [Section("t", ("H",), long)], minilm.count_tokens, max_tokens=230, overlap=30
    )
    assert len(chunks) > 1
    for c in chunks:
        with_special = len(minilm.tokenizer.encode(c.text).ids)  # [CLS] … [SEP]
        assert with_special <= 256, with_special


def _settings(tmp_path: Path, **kw):
    from assistant.settings import load_settings

    corpus = tmp_path / "corpus"
    (corpus / "guidelines").mkdir(parents=True, exist_ok=True)
    (corpus / "guidelines" / "demo.md").write_text(GUIDE_MD, encoding="utf-8")
    return load_settings(corpus_dir=corpus, include_open_medicine=False, **kw)


def test_persistent_store_real_model_and_reopen(tmp_path: Path, minilm) -> None:
    import chromadb

    from assistant.retrieval import HybridRetriever
    from ingest.pipeline import ingest_paths
    from ingest.store import open_store

    (tmp_path / "pdfs").mkdir()
    pdf = make_pdf(
        tmp_path / "pdfs" / "anticoag.pdf",
        "Atrial fibrillation",
        "Anticoagulant dosing",
        ["Apixaban is reduced to the lower dose when two of age, weight and creatinine criteria are met."],
    )
    s = _settings(tmp_path, store_dir=tmp_path / "index")
    store = open_store(s, minilm)
    r = ingest_paths(store, s, [])
    assert r.added == 1 and not r.errors
    r = ingest_paths(store, s, [pdf.parent])
    assert r.added == 1 and not r.errors
    retriever = HybridRetriever(store, s)
    top = retriever.retrieve("Which drug after docetaxel progression?", k=3)
    assert top[0].doc_id == "demo-apc" and top[0].dense_score and top[0].dense_score > 0.3
    pdf_hit = retriever.retrieve("apixaban dose reduction criteria", k=1)[0]
    assert pdf_hit.section_path == "Atrial fibrillation › Anticoagulant dosing"
    assert retriever.retrieve("CHEK2", k=1)[0].doc_id == "demo-apc"
    off = retriever.retrieve("recipe for sourdough bread", k=1)
    assert off[0].relevance < s.min_relevance <= top[0].relevance

    # A fresh client that does not pass an embedding function gets ours back from the registry
    # (Chroma's default would try to download a model).
    client = chromadb.PersistentClient(path=str(tmp_path / "index" / "chroma"))
    col = client.get_collection(s.collection)
    res = col.query(query_texts=["cabazitaxel after docetaxel"], n_results=1)
    assert res["metadatas"][0][0]["doc_id"] == "demo-apc"
    assert col.configuration_json["embedding_function"]["name"] == "guiderail_sentence_transformer"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_chroma_server_ingest_and_retrieve(tmp_path: Path, minilm) -> None:
    from assistant.retrieval import HybridRetriever
    from ingest.pipeline import ingest_paths
    from ingest.store import open_store

    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        pytest.skip("chroma CLI not installed in this environment")
    port = _free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"chroma server did not start (exit {proc.poll()})")
                time.sleep(0.5)
        s = _settings(tmp_path, chroma_url=f"http://127.0.0.1:{port}", store_dir=tmp_path / "local")
        store = open_store(s, minilm)
        r = ingest_paths(store, s, [])
        assert r.added == 1 and r.total_chunks > 0
        assert not (tmp_path / "local" / "chroma").exists(), "server mode must not create a local Chroma"
        again = ingest_paths(open_store(s, minilm), s, [])
        assert again.unchanged == 1 and again.chunks_written == 0
        top = HybridRetriever(open_store(s, minilm), s).retrieve("olaparib CHEK2", k=2)
        assert top and top[0].doc_id == "demo-apc"
    finally:
        proc.terminate()  # stop exactly the server we started, by its PID
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.poll() is not None
