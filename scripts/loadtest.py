#!/usr/bin/env python
"""Bounded load test of the chat app through its Gradio API (gradio_client), on 127.0.0.1.

N concurrent chat sessions each ask a question and a follow-up with their own patient facts (a
distinct age, PSA value and prior therapy per session). Checked: no errors, and no cross-session
leakage (each session's patient context holds its own facts and nobody else's; its chat holds its
own two questions only). Latency percentiles (time to the first streamed update = the rule-checked
plan, and to the final answer) go to a JSON file.

    # 20 sessions, rules-only backend, app started by this script on a free port
    python scripts/loadtest.py --sessions 20 --llm none --store .data/index --out runs/loadtest-none.json
    # a smaller run with the embedded local model
    python scripts/loadtest.py --sessions 3 --llm local --store .data/index --out runs/loadtest-local.json
    # against an app that is already running
    python scripts/loadtest.py --url http://127.0.0.1:7860 --sessions 20

Bounded: at most --sessions sessions, 2 questions each, and --deadline seconds in all (requests not
finished by then count as errors). Exit code 0 only when every request succeeded without leakage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("guiderail.loadtest")

THERAPIES = ["enzalutamide", "abiraterone", "apalutamide", "darolutamide", "docetaxel"]


# ---------------------------------------------------------------- the sessions' patients
@dataclass(frozen=True)
class Patient:
    """Distinct, checkable facts for one session."""

    index: int
    age: int
    psa: float
    therapy: str

    def question(self) -> str:
        return (
            f"{self.age}-year-old man with metastatic castration-resistant prostate cancer that progressed on "
            f"{self.therapy}; PSA {self.psa:g} ng/mL and rising. What are the next treatment options?"
        )

    def follow_up(self) -> str:
        return "He also has a germline BRCA2 pathogenic variant. Does that change the options?"


def patients(n: int) -> list[Patient]:
    # ages 45.. and PSA values 11.5, 13.5 … never repeat across sessions, so any leak is visible
    return [Patient(i, 45 + i, 11.5 + 2 * i, THERAPIES[i % len(THERAPIES)]) for i in range(n)]


# ---------------------------------------------------------------- results
@dataclass
class Request:
    session: int
    turn: int
    ok: bool = False
    first_update_ms: float | None = None
    total_ms: float | None = None
    error: str = ""


@dataclass
class SessionResult:
    session: int
    requests: list[Request] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    backend_status: str = ""
    final: tuple[Any, ...] | None = None  # the page after the last answer
    endpoint: Any = None


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}
    v = sorted(values)

    def pct(p: float) -> float:  # nearest-rank
        return v[max(0, math.ceil(p / 100 * len(v)) - 1)]

    return {
        "n": len(v),
        "p50": round(pct(50), 1),
        "p95": round(pct(95), 1),
        "max": round(v[-1], 1),
        "mean": round(sum(v) / len(v), 1),
    }


# ---------------------------------------------------------------- talking to the app
class Endpoint:
    """Where the interesting outputs of /ask sit, read from the app's own API description."""

    def __init__(self, client: Any) -> None:
        info = client.view_api(print_info=False, return_format="dict")
        named = info["named_endpoints"]
        if "/ask" not in named:
            raise SystemExit(f"the app has no /ask endpoint (found {sorted(named)})")
        returns = named["/ask"]["returns"]
        labels = [str(r.get("label", "")) for r in returns]
        kinds = [str(r.get("component", "")) for r in returns]
        self.n_inputs = len(named["/ask"]["parameters"])
        self.chat = kinds.index("Chatbot")
        self.context_json = next(i for i, k in enumerate(kinds) if k == "Code")
        self.status = next((i for i, lab in enumerate(labels) if "status" in lab.lower()), None)
        self.labels = labels


def run_session(url: str, patient: Patient, deadline: float, poll_s: float = 0.02) -> SessionResult:
    from gradio_client import Client

    result = SessionResult(patient.index)
    try:
        client = Client(url, verbose=False)
        ep = Endpoint(client)
    except Exception as exc:
        result.requests.append(Request(patient.index, 0, error=f"connect: {type(exc).__name__}: {exc}"))
        return result
    outputs: tuple[Any, ...] | None = None
    for turn, question in enumerate((patient.question(), patient.follow_up()), start=1):
        req = Request(patient.index, turn)
        result.requests.append(req)
        if time.monotonic() > deadline:
            req.error = "deadline passed before the request was sent"
            continue
        t0 = time.perf_counter()
        try:
            job = client.submit(question, "clinician", api_name="/ask")
            while not job.done():
                if req.first_update_ms is None and job.outputs():
                    req.first_update_ms = (time.perf_counter() - t0) * 1000
                if time.monotonic() > deadline:
                    job.cancel()
                    raise TimeoutError("deadline passed while waiting for the answer")
                time.sleep(poll_s)
            outputs = job.result(timeout=max(1.0, deadline - time.monotonic()))
            req.total_ms = (time.perf_counter() - t0) * 1000
            if req.first_update_ms is None:
                req.first_update_ms = req.total_ms
            req.ok = True
        except Exception as exc:
            req.error = f"{type(exc).__name__}: {exc}"[:300]
            outputs = None
            break
    if outputs is not None:
        result.final, result.endpoint = outputs, ep
        if ep.status is not None:
            result.backend_status = str(outputs[ep.status])[:300]
    return result


def check_isolation(outputs: tuple[Any, ...], ep: Endpoint, me: Patient, everyone: list[Patient] | None = None) -> list[str]:
    """The session's final page must show its own facts and questions, and nobody else's."""
    problems: list[str] = []
    try:
        ctx = json.loads(outputs[ep.context_json] or "{}")
    except (TypeError, ValueError):
        return [f"session {me.index}: patient context is not JSON: {str(outputs[ep.context_json])[:120]}"]
    if ctx.get("age") != me.age:
        problems.append(f"session {me.index}: age {ctx.get('age')} in its context, expected {me.age}")
    psa = (ctx.get("labs") or {}).get("psa") or {}
    if psa.get("value") is not None and abs(float(psa["value"]) - me.psa) > 1e-6:
        problems.append(f"session {me.index}: PSA {psa.get('value')} in its context, expected {me.psa:g}")
    therapies = {t.get("therapy") for t in ctx.get("therapies") or []}
    if me.therapy not in therapies:
        problems.append(f"session {me.index}: own prior therapy {me.therapy} missing from context {sorted(therapies)}")
    chat = outputs[ep.chat] or []
    users = [m for m in chat if isinstance(m, dict) and m.get("role") == "user"]
    if len(users) != 2:
        problems.append(f"session {me.index}: {len(users)} user messages in its chat, expected 2")
    page = json.dumps(outputs[ep.chat], ensure_ascii=False) + " " + json.dumps(ctx)
    for other in everyone or []:
        if other.index != me.index and f"{other.age}-year-old" in page:
            problems.append(f"session {me.index}: shows session {other.index}'s question ({other.age}-year-old)")
    return problems


# ---------------------------------------------------------------- the app under test
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(args: argparse.Namespace, log_path: Path):
    """Start `guiderail serve` on a free 127.0.0.1 port (its own process group) and stop it by PID."""
    port = args.port or free_port()
    env = {k: v for k, v in os.environ.items()}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    cmd = [sys.executable, "-m", "assistant.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--llm", args.llm]
    if args.chroma_url:
        cmd += ["--chroma-url", args.chroma_url]
    elif args.store:
        cmd += ["--store", str(args.store)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, args.start_timeout)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    import httpx

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"the app at {url} was not ready within {timeout:g} s")


def warm_up(url: str, timeout: float) -> float:
    """One untimed question so the index and model are loaded before the clock starts."""
    from gradio_client import Client

    t0 = time.perf_counter()
    client = Client(url, verbose=False)
    client.submit("What is the first-line treatment for mCRPC?", "clinician", api_name="/ask").result(timeout=timeout)
    return (time.perf_counter() - t0) * 1000


# ---------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    if args.url:
        url_cm: Any = contextlib.nullcontext(args.url)
    else:
        url_cm = serve(args, out.with_suffix(".server.log"))
    with url_cm as url:
        if args.url:
            wait_ready(url, None, args.start_timeout)
        warm_ms = warm_up(url, args.start_timeout) if args.warmup else None
        people = patients(args.sessions)
        deadline = time.monotonic() + args.deadline
        t0 = time.perf_counter()
        barrier = threading.Barrier(len(people))

        def one(p: Patient) -> SessionResult:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=60)  # start together: the point is concurrency
            return run_session(url, p, deadline)

        with ThreadPoolExecutor(max_workers=len(people)) as pool:
            results = list(pool.map(one, people))
        wall_s = time.perf_counter() - t0
    # cross-check each session's final page against its own facts and every other session's
    by_index = {p.index: p for p in people}
    for s in results:
        if s.final is not None:
            s.leaks = check_isolation(s.final, s.endpoint, by_index[s.session], people)
    requests = [r for s in results for r in s.requests]
    errors = [f"session {r.session} turn {r.turn}: {r.error}" for r in requests if not r.ok]
    leaks = [leak for s in results for leak in s.leaks]
    summary = {
        "url": None if not args.url else args.url,
        "llm": args.llm,
        "sessions": args.sessions,
        "requests": len(requests),
        "succeeded": sum(r.ok for r in requests),
        "errors": errors,
        "leaks": leaks,
        "wall_s": round(wall_s, 2),
        "throughput_rps": round(sum(r.ok for r in requests) / wall_s, 2) if wall_s else None,
        "warmup_ms": None if warm_ms is None else round(warm_ms, 1),
        "latency_ms": {
            "first_update": percentiles([r.first_update_ms for r in requests if r.ok and r.first_update_ms is not None]),
            "total": percentiles([r.total_ms for r in requests if r.ok and r.total_ms is not None]),
            "total_turn1": percentiles([r.total_ms for r in requests if r.ok and r.turn == 1 and r.total_ms]),
            "total_turn2": percentiles([r.total_ms for r in requests if r.ok and r.turn == 2 and r.total_ms]),
        },
        "backend_status_example": next((s.backend_status for s in results if s.backend_status), ""),
        "machine": {"cpus": os.cpu_count()},
        "per_request": [asdict(r) for r in requests],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=20, help="concurrent chat sessions (default 20)")
    p.add_argument("--llm", choices=["none", "local", "openai"], default="none", help="backend of the app it starts")
    p.add_argument("--url", help="test an app that is already running instead of starting one")
    p.add_argument("--store", type=Path, help="index folder for the app it starts (default: the app's default)")
    p.add_argument("--chroma-url", help="Chroma server for the app it starts")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--deadline", type=float, default=600.0, help="seconds for all sessions together (default 600)")
    p.add_argument("--start-timeout", type=float, default=300.0, help="seconds for the app to start and warm up")
    p.add_argument("--no-warmup", dest="warmup", action="store_false", help="do not send an untimed first question")
    p.add_argument("--out", default="runs/loadtest.json", help="JSON results file")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if not 1 <= args.sessions <= 200:
        print(f"--sessions must be between 1 and 200, got {args.sessions}", file=sys.stderr)
        return 2
    summary = run(args)
    lat = summary["latency_ms"]
    print(
        f"{summary['succeeded']}/{summary['requests']} requests ok over {summary['sessions']} sessions "
        f"(llm={summary['llm']}) in {summary['wall_s']} s; "
        f"first update p50 {lat['first_update']['p50']} ms p95 {lat['first_update']['p95']} ms; "
        f"answer p50 {lat['total']['p50']} ms p95 {lat['total']['p95']} ms max {lat['total']['max']} ms; "
        f"{len(summary['errors'])} error(s), {len(summary['leaks'])} leak(s) → {args.out}"
    )
    for line in summary["errors"][:10] + summary["leaks"][:10]:
        print(f"  {line}", file=sys.stderr)
    return 0 if not summary["errors"] and not summary["leaks"] else 1


if __name__ == "__main__":
    sys.exit(main())
