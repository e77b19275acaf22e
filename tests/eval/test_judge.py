"""The --judge path against a stub OpenAI-compatible server (real HTTP, real langchain-openai client)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from assistant.errors import ConfigError
from assistant.evaluation.dataset import KeyPoint, QACase
from assistant.evaluation.judge import judge_case, make_judge_model, parse_verdict
from assistant.evaluation.runner import run_eval
from assistant.settings import load_settings

from .conftest import SCRIPT, ScriptedAssistant


class _Stub(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.requests.append(body)
        prompt = body["messages"][-1]["content"].lower()
        statement = prompt.split("reference statement:", 1)[1].split("answer:", 1)[0]
        if "cabazitaxel" in statement:
            verdict = "ENTAILED"
        elif "olaparib" in statement:
            verdict = "Verdict: contradicted."
        else:
            verdict = "NOT_MENTIONED"
        payload = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body.get("model", "stub"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": verdict}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_url():
    _Stub.requests = []
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_parse_verdict():
    assert parse_verdict("entailed.") == "ENTAILED"
    assert parse_verdict("The answer is NOT MENTIONED") == "NOT_MENTIONED"
    assert parse_verdict("maybe") == "UNPARSED"


def test_judge_needs_a_server(tmp_path):
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        make_judge_model(load_settings(llm="none", data_dir=tmp_path))


def test_judge_case_statement_by_statement(stub_url, tmp_path):
    model = make_judge_model(load_settings(llm="none", data_dir=tmp_path, openai_base_url=stub_url, openai_model="stub"))
    case = QACase(
        id="J", question="q",
        must_have=[KeyPoint(point="offer cabazitaxel", keywords=["cabazitaxel"]),
                   KeyPoint(point="refer to a trial", keywords=["trial"])],
        nice_to_have=[KeyPoint(point="olaparib is label-approved", keywords=["olaparib"])],
    )
    result = judge_case(model, case, "Offer cabazitaxel.")
    assert [v["verdict"] for v in result["verdicts"]] == ["ENTAILED", "NOT_MENTIONED", "CONTRADICTED"]
    assert result["comprehensiveness"] == 0.5
    assert result["contradictions"] == 1
    assert len(_Stub.requests) == 3 and _Stub.requests[0]["temperature"] == 0.0


def test_run_eval_with_judge(stub_url, qa_file, tmp_path: Path, factory_for):
    settings = load_settings(llm="none", data_dir=tmp_path, openai_base_url=stub_url, openai_model="stub")
    out = tmp_path / "j"
    m = run_eval(settings, qa_file, out, judge=True, factory=factory_for(ScriptedAssistant(SCRIPT)), progress=False)
    assert (out / "judge.jsonl").stat().st_size > 0
    # T-1 (cabazitaxel entailed, trial not mentioned) and T-2 (olaparib contradicted) are judged
    assert m["summary"]["judge_comprehensiveness"] == pytest.approx(0.25)
    assert m["summary"]["judge_contradictions"] == 1
    assert "Judge: comprehensiveness" in (out / "report.md").read_text()
