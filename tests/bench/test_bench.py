"""`guiderail bench` with fakes: every section's figures land in bench.json and bench.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.bench import render_markdown, run_bench, stats
from assistant.errors import ConfigError
from assistant.models import Answer, AnswerEvent
from assistant.settings import load_settings

QA = [
    {"id": "A", "question": "mCRPC after docetaxel and abiraterone, BRCA2. Options?"},
    {"id": "B", "question": "Apixaban dose for AF, 82 years, 58 kg?", "history": [{"role": "user", "content": "AF."}]},
    {"id": "C", "question": "Psoriasis?", "expect_abstain": True},
]


class FakeSystem:
    def __init__(self, backend: str, with_plan: bool) -> None:
        self.backend = backend
        self.with_plan = with_plan
        self.asked: list[tuple[str, object]] = []

    def ask_stream(self, question, *, patient=None, history=None):
        self.asked.append((question, history))
        if self.with_plan:
            yield AnswerEvent(kind="plan")
        yield AnswerEvent(kind="delta", text="Offer cabazitaxel [1].")
        yield AnswerEvent(
            kind="final",
            answer=Answer(question=question, answer_markdown="x",
                          timings_ms={"verify": 5.0, "total": 50.0, "prompt_tokens": 900.0}),
        )


@pytest.fixture
def qa(tmp_path: Path) -> Path:
    p = tmp_path / "qa.jsonl"
    p.write_text("".join(json.dumps(c) + "\n" for c in QA))
    return p


def test_stats():
    s = stats([1.0, 2.0, 3.0, 4.0])
    assert s == {"n": 4, "p50": 2.5, "p95": 3.85, "mean": 2.5}
    assert stats([])["p50"] is None


def test_bench_sections_with_fakes(tmp_path, qa):
    settings = load_settings(llm="none", data_dir=tmp_path / "data")
    made: list[tuple[str, str]] = []

    def assistant_factory(s):
        made.append(("guiderail", s.llm))
        return FakeSystem(s.llm, with_plan=True)

    def baseline_factory(s):
        made.append(("naive", s.llm))
        if s.llm == "local":
            raise RuntimeError("no model file")
        return FakeSystem(s.llm, with_plan=False)

    def scale_fn(settings, folder, store_dir, *, queries, progress):
        assert folder == settings.corpus_dir and queries == 100 and progress is False
        return {"ingest_chunks_per_s": 40.0, "raw_encode_chunks_per_s": 50.0, "ingest_vs_raw_encode": 0.8,
                "query_p50_ms": 12.0, "query_p95_ms": 30.0, "queries": 100, "chunks": 2000, "documents": 10}

    out = tmp_path / "bench"
    r = run_bench(settings, out, only=["ingest", "rules", "answer"], qa_path=qa, questions=1,
                  scale_fn=scale_fn, assistant_factory=assistant_factory, baseline_factory=baseline_factory)

    assert r["ingest"]["ingest_vs_raw_encode"] == 0.8 and r["ingest"]["source"].startswith("shipped corpus")
    rules = r["rules"]
    assert rules["questions"] == 3 and rules["rules_loaded"] > 0 and rules["rules_ms"]["n"] == 3
    none = r["answer"]["none"]
    # the abstain case is left out of answer latency; 'none' runs every answerable question
    assert none["guiderail"]["questions"] == 2 and none["guiderail"]["full_answer_ms"]["n"] == 2
    assert none["guiderail"]["verification_pct_of_total"]["p50"] == pytest.approx(10.0)
    assert none["naive"]["first_useful_content_ms"]["n"] == 2  # first text stands in when there is no plan
    assert r["answer"]["local"]["guiderail"]["questions"] == 1  # --questions limits the slow backend
    assert "skipped" in r["answer"]["local"]["naive"]
    assert r["peak_rss_mb"] > 0
    assert "prompt_tokens" not in none["guiderail"]["stage_ms"]  # a counter, not a latency
    assert ("guiderail", "local") in made and ("naive", "none") in made

    saved = json.loads((out / "bench.json").read_text())
    assert saved["rules"]["rules_loaded"] == rules["rules_loaded"]
    md = (out / "bench.md").read_text()
    for heading in ("Ingest and retrieval at scale", "Rule engine per question", "Answer latency", "Memory"):
        assert heading in md
    assert "skipped: RuntimeError" in md


def test_bench_rejects_bad_arguments(tmp_path, qa):
    settings = load_settings(llm="none", data_dir=tmp_path / "data")
    with pytest.raises(ConfigError, match="unknown section"):
        run_bench(settings, tmp_path / "b", only=["speed"], qa_path=qa)
    with pytest.raises(ConfigError, match="questions"):
        run_bench(settings, tmp_path / "b", questions=0, qa_path=qa)
    with pytest.raises(ConfigError, match="not a folder"):
        run_bench(settings, tmp_path / "b", nci_dir=tmp_path / "nope", qa_path=qa)


def test_failed_section_is_reported_not_fatal(tmp_path, qa):
    settings = load_settings(llm="none", data_dir=tmp_path / "data")

    def broken(*a, **k):
        raise OSError("disk full")

    r = run_bench(settings, tmp_path / "b", only=["ingest"], qa_path=qa, scale_fn=broken)
    assert "disk full" in r["ingest"]["skipped"]
    assert "_skipped: OSError: disk full_" in render_markdown(r)
