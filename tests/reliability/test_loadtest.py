"""Load: scripts/loadtest.py drives concurrent chat sessions through the Gradio API and checks isolation.

A fast test proves the isolation check catches a leak; a slow one runs 5 real sessions against the
real app (rules-only backend, real MiniLM index of the shipped corpus) started on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "loadtest.py"


def _loadtest():
    spec = importlib.util.spec_from_file_location("_guiderail_loadtest", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _Ep:
    chat, context_json, status = 0, 1, None


def _page(patient, lt, *, age=None, psa=None, extra_question=None):
    ctx = {
        "age": patient.age if age is None else age,
        "labs": {"psa": {"name": "psa", "value": patient.psa if psa is None else psa}},
        "therapies": [{"therapy": patient.therapy}],
    }
    chat = [
        {"role": "user", "content": patient.question()},
        {"role": "assistant", "content": "answer [1]"},
        {"role": "user", "content": extra_question or patient.follow_up()},
        {"role": "assistant", "content": "answer [1]"},
    ]
    return (chat, json.dumps(ctx))


def test_isolation_check_passes_a_clean_page_and_catches_each_kind_of_leak():
    lt = _loadtest()
    people = lt.patients(4)
    me, other = people[1], people[2]
    assert lt.check_isolation(_page(me, lt), _Ep, me, people) == []
    assert lt.check_isolation(_page(me, lt, age=other.age), _Ep, me, people), "another session's age"
    assert lt.check_isolation(_page(me, lt, psa=other.psa), _Ep, me, people), "another session's PSA"
    assert lt.check_isolation(_page(me, lt, extra_question=other.question()), _Ep, me, people), "another's question"


def test_patients_never_share_a_checkable_fact():
    people = _loadtest().patients(200)
    assert len({p.age for p in people}) == 200 and len({p.psa for p in people}) == 200


def test_percentiles_are_nearest_rank():
    pct = _loadtest().percentiles([float(v) for v in range(1, 101)])
    assert (pct["p50"], pct["p95"], pct["max"]) == (50.0, 95.0, 100.0)
    assert _loadtest().percentiles([])["p50"] is None


@pytest.mark.slow
@pytest.mark.integration
def test_five_concurrent_sessions_through_the_gradio_api(tmp_path, helpers):
    store = tmp_path / "index"
    env = helpers.child_env(GUIDERAIL_INCLUDE_OPEN_MEDICINE="false")
    done = subprocess.run(
        [helpers.PY, "-m", "assistant.cli", "ingest", "--store", str(store), "--no-progress"],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "loadtest.json"
    run = subprocess.run(
        [helpers.PY, str(SCRIPT), "--sessions", "5", "--llm", "none", "--store", str(store),
         "--deadline", "300", "--out", str(out)],
        capture_output=True, text=True, timeout=900, env=env, cwd=ROOT,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["succeeded"] == result["requests"] == 10
    assert result["errors"] == [] and result["leaks"] == []
    for key in ("first_update", "total"):
        lat = result["latency_ms"][key]
        assert lat["n"] == 10 and 0 < lat["p50"] <= lat["p95"] <= lat["max"]
    assert "rules-only" in result["backend_status_example"]
