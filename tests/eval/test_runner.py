"""End-to-end eval with a scripted assistant: files, resume after a crash, determinism, compare, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.evaluation.configs import parse_config
from assistant.evaluation.dataset import load_cases
from assistant.evaluation.runner import run_eval
from assistant.settings import load_settings

from .conftest import CASES, SCRIPT, ScriptedAssistant

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(llm="none", data_dir=tmp_path / "data")


def _strip_latency(m: dict) -> dict:
    m = json.loads(json.dumps(m))
    for s in m["configs"].values():
        s.pop("latency_ms", None)
    for scores in m["case_scores"].values():
        for s in scores:
            s.pop("timings_ms", None)
    m.get("summary", {}).pop("latency_ms", None)
    return m


def test_end_to_end_writes_all_files(settings, qa_file, tmp_path, scripted, factory_for):
    out = tmp_path / "run"
    probe_calls = []

    def probe(q, k):
        probe_calls.append((q, k))
        return [{"doc_id": "aua-apc-2023", "rec_id": "AUA-APC-S28", "section_path": "", "chunk_id": "c1"}]

    metrics = run_eval(settings, qa_file, out, factory=factory_for(scripted, probe), progress=False)

    for name in ("answers.jsonl", "metrics.json", "report.md", "metrics.png", "per_case.png", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes().startswith(PNG)
    lines = [json.loads(x) for x in (out / "answers.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == [c["id"] for c in CASES]
    assert {"answer_markdown", "citations", "findings", "verification", "timings_ms"} <= set(lines[0])
    # multi-turn history reaches the assistant as role/content dicts
    assert scripted.calls[1][2] == CASES[1]["history"]
    assert scripted.calls[0][2] is None

    s = metrics["summary"]
    assert s["cases"] == 4
    assert s["must_have_recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert s["forbidden_hits"] == 1  # T-4 asserts radium; T-1 negates its forbidden phrase
    assert s["abstention_accuracy"] == 1.0
    assert s["gold_therapy_accuracy"] == 1.0
    assert s["citation_validity"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)  # [7] in T-2 is invalid
    assert s["retrieval_recall_at_k"] == 1.0 and probe_calls == [(CASES[0]["question"], settings.top_k)]
    report = (out / "report.md").read_text()
    assert "Must-have recall" in report and "T-4" in report and "latency.png" in report


def test_deterministic_apart_from_latency(settings, qa_file, tmp_path, factory_for):
    a = run_eval(settings, qa_file, tmp_path / "a", factory=factory_for(ScriptedAssistant(SCRIPT)), progress=False)
    b = run_eval(settings, qa_file, tmp_path / "b", factory=factory_for(ScriptedAssistant(SCRIPT)), progress=False)
    assert _strip_latency(a) | {"qa_file": ""} == _strip_latency(b) | {"qa_file": ""}


def test_resume_after_crash(settings, qa_file, tmp_path, factory_for):
    out = tmp_path / "run"
    crashing = ScriptedAssistant(SCRIPT, crash_on=CASES[2]["question"])
    with pytest.raises(KeyboardInterrupt):
        run_eval(settings, qa_file, out, factory=factory_for(crashing), progress=False)
    assert len((out / "answers.jsonl").read_text().splitlines()) == 2
    # a torn half-line, as a kill during write would leave
    with (out / "answers.jsonl").open("a") as fh:
        fh.write('{"id": "T-3", "answer_mark')

    again = ScriptedAssistant(SCRIPT)
    metrics = run_eval(settings, qa_file, out, factory=factory_for(again), progress=False)
    assert [c[0] for c in again.calls] == [CASES[2]["question"], CASES[3]["question"]]
    ids = [json.loads(x)["id"] for x in (out / "answers.jsonl").read_text().splitlines()]
    assert ids == ["T-1", "T-2", "T-3", "T-4"]
    assert metrics["summary"]["cases"] == 4

    fresh = ScriptedAssistant(SCRIPT)
    run_eval(settings, qa_file, out, resume=False, factory=factory_for(fresh), progress=False)
    assert len(fresh.calls) == 4


def test_resume_reanswers_only_changed_questions(settings, qa_file, tmp_path, factory_for):
    out = tmp_path / "run"
    run_eval(settings, qa_file, out, factory=factory_for(ScriptedAssistant(SCRIPT)), progress=False)
    cases = [json.loads(x) for x in qa_file.read_text().splitlines()]
    cases[0]["must_have"] = [{"point": "trial", "keywords": ["clinical trial"]}]  # a scoring change only
    cases[2]["question"] = "Dose of vincristine in a 6-year-old?"  # the question itself changed
    qa_file.write_text("".join(json.dumps(c) + "\n" for c in cases))
    again = ScriptedAssistant(SCRIPT)
    m = run_eval(settings, qa_file, out, factory=factory_for(again), progress=False)
    assert [c[0] for c in again.calls] == ["Dose of vincristine in a 6-year-old?"]
    ids = [json.loads(x)["id"] for x in (out / "answers.jsonl").read_text().splitlines()]
    assert sorted(ids) == ["T-1", "T-2", "T-3", "T-4"]  # the stale T-3 answer was replaced, not duplicated
    assert m["case_scores"]["none"][0]["must_have_recall"] == 0.0  # re-scored with the new keywords


def test_resume_refuses_another_configuration(settings, qa_file, tmp_path, factory_for):
    out = tmp_path / "run"
    run_eval(settings, qa_file, out, factory=factory_for(ScriptedAssistant(SCRIPT)), progress=False, limit=1)
    with pytest.raises(ConfigError, match="no-resume"):
        run_eval(settings.model_copy(update={"llm": "local"}), qa_file, out,
                 factory=factory_for(ScriptedAssistant(SCRIPT)), progress=False)


def test_a_failing_case_is_recorded_not_fatal(settings, qa_file, tmp_path, factory_for):
    failing = ScriptedAssistant(SCRIPT, fail_on=CASES[0]["question"])
    m = run_eval(settings, qa_file, tmp_path / "r", factory=factory_for(failing), progress=False)
    assert m["summary"]["errors"] == 1
    first = json.loads((tmp_path / "r" / "answers.jsonl").read_text().splitlines()[0])
    assert "RuntimeError" in first["error"]


def test_compare_runs_each_configuration(settings, qa_file, tmp_path, factory_for):
    fac = factory_for(ScriptedAssistant(SCRIPT))
    m = run_eval(settings, qa_file, tmp_path / "c", compare=["none", "naive-none", "none@top_k=3"], factory=fac,
                 progress=False)
    assert fac.built == ["none", "naive-none", "none@top_k=3"]
    assert set(m["configs"]) == {"none", "naive-none", "none@top_k=3"}
    assert set(m["summary"]["must_have_recall"]) == {"none", "naive-none", "none@top_k=3"}
    for d in ("none", "naive-none", "none@top_k=3"):
        assert (tmp_path / "c" / d / "answers.jsonl").is_file()
    assert (tmp_path / "c" / "comparison.png").read_bytes().startswith(PNG)
    assert "| Must-have recall |" in (tmp_path / "c" / "report.md").read_text()


def test_parse_config(settings):
    assert parse_config("naive-local", settings).system == "naive"
    assert parse_config("naive-local", settings).settings.llm == "local"
    cfg = parse_config("none@top_k=3@min_relevance=0.1", settings)
    assert cfg.settings.top_k == 3 and cfg.settings.min_relevance == 0.1 and cfg.system == "guiderail"
    assert settings.top_k != 3  # the base settings are untouched
    for bad in ("gpt", "none@top_k", "none@nope=1", "none@top_k=0"):
        with pytest.raises(ConfigError):
            parse_config(bad, settings)


def test_load_cases_names_bad_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "a", "question": "q"}\n\n{"id": "b"}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:3"):
        load_cases(p)
    p.write_text('{"id": "a", "question": "q"}\n{"id": "a", "question": "r"}\n')
    with pytest.raises(ConfigError, match="duplicate"):
        load_cases(p)
