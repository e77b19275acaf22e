"""Backend factory, and the OpenAI-compatible path against a stub /v1/chat/completions server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from assistant.errors import ConfigError
from assistant.llm import backends
from assistant.settings import load_settings

STUB_ANSWER = "## Bottom line\nCabazitaxel prolonged overall survival after docetaxel [1]."


class _Stub(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []
    fail = False

    def log_message(self, *a):  # keep test output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if _Stub.fail:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "boom"}}')
            return
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for word in STUB_ANSWER.split(" "):
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            return
        payload = {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": STUB_ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def stub_server():
    _Stub.requests = []
    _Stub.fail = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _fresh_cache():
    backends.clear_cache()
    yield
    backends.clear_cache()


def test_none_backend_is_none(tmp_path):
    assert backends.make_chat_model(load_settings(data_dir=tmp_path, llm="none")) is None


def test_openai_backend_needs_a_base_url(tmp_path):
    with pytest.raises(ConfigError, match="BASE_URL"):
        backends.make_chat_model(load_settings(data_dir=tmp_path, llm="openai"))


def test_local_backend_is_lazy_and_cached(tmp_path):
    s = load_settings(data_dir=tmp_path, llm="local")
    m = backends.make_chat_model(s)
    assert m is backends.make_chat_model(s), "one model per process for the same settings"
    assert not m.loaded, "nothing is loaded until first use"


def test_local_backend_reports_a_missing_model_as_llm_error(tmp_path, monkeypatch):
    from assistant.errors import LLMError
    from assistant.llm import assets

    def no_parts(*a, **k):
        raise LLMError("model parts missing")

    monkeypatch.setattr(assets, "find_parts", no_parts)
    m = backends.make_chat_model(load_settings(data_dir=tmp_path, llm="local"))
    with pytest.raises(LLMError, match="parts missing"):
        m.invoke("hi")


@pytest.mark.integration
def test_openai_compatible_streaming_against_stub(tmp_path, stub_server):
    s = load_settings(data_dir=tmp_path, llm="openai", openai_base_url=stub_server, openai_model="stub-model", openai_api_key="sekret")
    model = backends.make_chat_model(s)
    pieces = [c.content for c in model.stream("Which option?")]
    assert len(pieces) > 3, "tokens arrive as a stream"
    assert "".join(pieces).strip() == STUB_ANSWER
    req = _Stub.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["body"]["stream"] is True
    assert req["body"]["model"] == "stub-model" and req["auth"] == "Bearer sekret"
    assert req["body"]["messages"][-1]["content"] == "Which option?"


@pytest.mark.integration
def test_openai_compatible_non_streaming_against_stub(tmp_path, stub_server):
    s = load_settings(data_dir=tmp_path, llm="openai", openai_base_url=stub_server, openai_model="m")
    out = backends.make_chat_model(s).invoke("Which option?")
    assert out.content.strip() == STUB_ANSWER


@pytest.mark.integration
def test_pipeline_end_to_end_over_the_stub_and_fallback_when_it_fails(tmp_path, stub_server, fake_embedder):
    """The OpenAI path through the whole Assistant: streamed deltas, then a verified answer; a 500 falls back."""
    from assistant.models import Finding, PatientContext, RetrievedPassage
    from assistant.pipeline import Assistant

    passage = RetrievedPassage(chunk_id="c1", doc_id="d", text="Cabazitaxel prolonged overall survival after docetaxel.", title="T", score=0.9)

    class R:
        def retrieve(self, q, k=None, filters=None):
            return [passage]

        def passages_for_refs(self, refs):
            return {r: [passage] for r in refs}

    class E:
        def evaluate(self, ctx):
            return [Finding(rule_id="R1", kind="recommend", therapy="cabazitaxel", reason="Prolonged overall survival after docetaxel.", refs=["X"])]

    s = load_settings(data_dir=tmp_path, llm="openai", openai_base_url=stub_server, openai_model="m", llm_timeout_s=10)
    asst = Assistant(s, retriever=R(), engine=E(), chat_model=backends.make_chat_model(s), embedder=fake_embedder,
                     extract_context=lambda *a, **k: PatientContext(disease_state="mCRPC"))
    events = list(asst.ask_stream("What after docetaxel for cabazitaxel survival?"))
    assert events[0].kind == "plan" and events[-1].kind == "final"
    assert sum(1 for e in events if e.kind == "delta") > 3
    ans = events[-1].answer
    assert ans.backend == "openai" and ans.verification.mode == "llm" and ans.verification.verified, ans.verification
    _Stub.fail = True
    ans = asst.ask("What after docetaxel for cabazitaxel survival?")
    assert ans.verification.mode == "composer-fallback" and ans.banner
