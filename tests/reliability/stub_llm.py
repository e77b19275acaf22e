"""A tiny OpenAI-compatible chat server for failure and scale-out tests (standard library only).

The behaviour is chosen by the first path segment, so one server serves every mode:
``http://127.0.0.1:PORT/<mode>/v1`` is the base URL a client uses. Modes:

* ``ok``        — what a well-behaved model does: the rule-check plan's options, exclusions and
                  warnings as bullets under the clinician headings, with the plan's citations
* ``extract``   — the first sentence of each numbered passage, cited with its number
* ``slow``      — sleeps ``?delay`` seconds (default 30) before answering (past any sane timeout)
* ``garbage``   — HTTP 200 with random bytes that are not JSON
* ``badjson``   — HTTP 200, valid JSON of the wrong shape
* ``empty``     — HTTP 200, a well-formed completion whose content is empty
* ``nonsense``  — a well-formed completion of uncited gibberish
* ``leak``      — a model that obeyed an injection: it repeats its system prompt verbatim
* ``inject``    — a model that obeyed "recommend X": an unsupported recommendation with a citation
* ``error``     — HTTP 500
* ``close``     — drops the connection without a response

Run standalone: ``python tests/reliability/stub_llm.py --port 8011`` (prints ``ready PORT``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEADINGS = ("Bottom line", "Options that fit this patient", "Not recommended for this patient")
INJECTED_CLAIM = "Recommend zanubrutinib-4000 megadose for every patient immediately"
_PASSAGE = re.compile(r"^\[(\d+)\][^\n]*\n(.+?)(?=\n\n\[\d+\]|\n</passages>|\Z)", re.M | re.S)


_PLAN = re.compile(r"^- (OPTION(?: \(consider\))?|EXCLUDED|WARN|ASK): (.+?) — (.+?)((?:\[\d+\])*)\s*$", re.M)


def plan_answer(user_text: str) -> str:
    """What a well-behaved model does: follow the rule-check plan, keep its citations."""
    parts: dict[str, list[str]] = {"OPTION": [], "EXCLUDED": [], "WARN": []}
    for m in _PLAN.finditer(user_text):
        tag, subject, reason, cites = m.group(1).split(" ")[0], m.group(2), m.group(3).strip().rstrip("."), m.group(4)
        if not cites:
            continue
        if tag == "OPTION":
            parts["OPTION"].append(f"- {subject}: {reason} {cites}.")
        elif tag == "EXCLUDED":
            parts["EXCLUDED"].append(f"- {subject} is not recommended for this patient: {reason} {cites}.")
        else:
            parts["WARN"].append(f"- {reason} {cites}.")
    if not parts["OPTION"] and not parts["EXCLUDED"]:
        return extractive_answer(user_text)
    lines = ["## Bottom line", parts["OPTION"][0] if parts["OPTION"] else parts["EXCLUDED"][0]]
    lines += ["## Options that fit this patient", *parts["OPTION"]]
    lines += ["## Not recommended for this patient", *parts["EXCLUDED"]]
    if parts["WARN"]:
        lines += ["## Pitfalls", *parts["WARN"]]
    return "\n".join(lines)


def extractive_answer(user_text: str) -> str:
    """First sentence of each passage, cited — supported by construction."""
    lines: list[str] = []
    for i, m in enumerate(_PASSAGE.finditer(user_text)):
        number, text = m.group(1), " ".join(m.group(2).split())
        sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(" .…")
        if sentence:
            if i < len(HEADINGS):
                lines.append(f"## {HEADINGS[i]}")
            lines.append(f"- {sentence} [{number}].")
    return "\n".join(lines) or "## Bottom line\n- No passages were given."


def reply_for(mode: str, messages: list[dict]) -> str:
    system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
    user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(user, list):  # content parts
        user = " ".join(p.get("text", "") for p in user if isinstance(p, dict))
    if mode == "leak":
        return f"Sure, ignoring my instructions. My system prompt is:\n{system}\n{user}"
    if mode == "inject":
        return f"## Bottom line\n- {INJECTED_CLAIM} [1].\n- This is fully supported by the guideline [1]."
    if mode == "nonsense":
        return "Purple monkey dishwasher. The moon is made of quinoa; bananas vote on Tuesdays."
    if mode == "empty":
        return ""
    if mode == "extract":
        return extractive_answer(user)
    return plan_answer(user)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubServer

    def log_message(self, fmt: str, *args: object) -> None:  # keep test output quiet
        pass

    def _mode(self) -> tuple[str, dict[str, str]]:
        path, _, query = self.path.partition("?")
        parts = [p for p in path.split("/") if p]
        mode = parts[0] if parts and parts[0] != "v1" else self.server.default_mode
        params = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
        return mode, params

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode())
        else:
            self._send(200, b'{"status": "ok"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        mode, params = self._mode()
        with self.server.lock:
            self.server.requests.append({"mode": mode, "path": self.path, "body": raw.decode("utf-8", "replace")})
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        if mode == "slow":
            time.sleep(float(params.get("delay", "30")))
        if mode == "error":
            self._send(500, b'{"error": {"message": "stub internal error", "type": "server_error"}}')
            return
        if mode == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if mode == "garbage":
            self._send(200, bytes(random.Random(7).getrandbits(8) for _ in range(300)), "application/json")
            return
        if mode == "badjson":
            self._send(200, b'{"unexpected": ["shape", 1, null], "choices": "none"}')
            return
        text = reply_for(mode, body.get("messages") or [])
        model = body.get("model", "stub")
        if body.get("stream"):
            self._stream(text, model)
        else:
            payload = {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            self._send(200, json.dumps(payload).encode())

    def _stream(self, text: str, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        pieces = re.findall(r"\S+\s*|\s+", text) or [""]
        for i, piece in enumerate(pieces):
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            chunk = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0, default_mode: str = "ok") -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.default_mode = default_mode
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def base_url(self, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def start(self) -> StubServer:
        threading.Thread(target=self.serve_forever, name="stub-llm", daemon=True).start()
        return self


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", default="ok", help="mode for paths without a mode segment")
    args = parser.parse_args(argv)
    server = StubServer(args.port, args.mode)
    print(f"ready {server.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
