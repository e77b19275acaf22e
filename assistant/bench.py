"""`guiderail bench`: speed and memory, each GuideRail figure beside the naive RAG baseline measured in the same run.

Sections (``--only`` picks some):
- ``ingest``    ingest throughput vs raw MiniLM encode on the same chunks, index size, and hybrid retrieval p50/p95
                at that scale — delegated to ``ingest.scale.measure_ingest`` (the NCI folder with ``--nci``, else
                the shipped corpus), so the figures here and in the ingest scale report are the same measurement;
- ``retrieval`` on the configured index: GuideRail's hybrid retrieval vs the baseline's dense top-k, dev questions;
- ``rules``     patient-context extraction + rule evaluation + plan per dev question;
- ``answer``    first useful content (the rule-checked 'plan' event), first text and full answer, p50/p95, for the
                ``none`` and ``local`` backends (``--questions N`` for local: ~20–30 s per answer on 2 cores), the
                verification share of the total, and the naive baseline with the same backend.
Peak RSS is always recorded. Writes ``bench.json`` and ``bench.md``.
"""

from __future__ import annotations

import json
import logging
import platform
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.evaluation.dataset import QACase, load_cases
from assistant.evaluation.metrics import is_time_key, percentile
from assistant.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

SECTIONS = ("ingest", "retrieval", "rules", "answer")
DEFAULT_QA = PROJECT_ROOT / "eval" / "dev.jsonl"
DEFAULT_LOCAL_QUESTIONS = 5

# factories are parameters so tests can run every section with fakes
AssistantFactory = Callable[[Settings], Any]  # -> object with ask_stream(question, patient=, history=)
BaselineFactory = Callable[[Settings], Any]  # -> NaiveRAG-like object with ask_stream
ScaleFn = Callable[..., dict[str, Any]]


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def current_rss_mb() -> float | None:
    try:
        import psutil

        return round(psutil.Process().memory_info().rss / 1e6, 1)
    except Exception:  # psutil missing or restricted: the peak figure still stands
        return None


def _r(x: float | None) -> float | None:
    return round(x, 2) if x is not None else None


def stats(values: Sequence[float]) -> dict[str, float | int | None]:
    vals = [float(v) for v in values if v is not None]
    r = _r
    return {
        "n": len(vals),
        "p50": r(percentile(vals, 50)),
        "p95": r(percentile(vals, 95)),
        "mean": r(sum(vals) / len(vals)) if vals else None,
    }


def _query(case: QACase) -> str:
    return "\n".join(filter(None, [case.patient, case.question]))


# ---------------------------------------------------------------- sections
def bench_rules(settings: Settings, cases: Sequence[QACase]) -> dict[str, Any]:
    """Context extraction, rule evaluation and plan building, timed separately per question."""
    from assistant.knowledge import load_knowledge
    from assistant.patient import extract_context
    from assistant.plan import build_plan
    from assistant.rules import RuleEngine

    t = time.perf_counter()
    knowledge = load_knowledge(settings.corpus_dir)
    load_s = time.perf_counter() - t
    engine = RuleEngine(knowledge)
    ctx_ms, rules_ms, plan_ms, findings = [], [], [], []
    for c in cases:
        history = [turn.model_dump() for turn in c.history] or None
        t0 = time.perf_counter()
        ctx = extract_context(_query(c), history=history, lexicon=knowledge.lexicon)
        t1 = time.perf_counter()
        found = engine.evaluate(ctx)
        t2 = time.perf_counter()
        build_plan(found, ctx, knowledge.lexicon)
        t3 = time.perf_counter()
        ctx_ms.append((t1 - t0) * 1000)
        rules_ms.append((t2 - t1) * 1000)
        plan_ms.append((t3 - t2) * 1000)
        findings.append(len(found))
    return {
        "questions": len(cases),
        "rules_loaded": len(engine.rules),
        "knowledge_load_s": round(load_s, 2),
        "context_ms": stats(ctx_ms),
        "rules_ms": stats(rules_ms),
        "plan_ms": stats(plan_ms),
        "findings_per_question": stats(findings),
    }


def bench_retrieval(settings: Settings, cases: Sequence[QACase], *, repeats: int = 1) -> dict[str, Any]:
    """Hybrid (GuideRail) vs dense-only (naive baseline) retrieval latency on the configured index."""
    from assistant.evaluation.configs import dense_search
    from assistant.retrieval import HybridRetriever
    from ingest.embedder import load_embedder
    from ingest.store import open_store

    store = open_store(settings, load_embedder(settings))
    hybrid = HybridRetriever(store, settings)
    dense = dense_search(settings)
    queries = [_query(c) for c in cases]
    for q in queries[:3]:  # warm-up: model and caches
        hybrid.retrieve(q)
        dense(q, settings.top_k)
    h_ms, d_ms = [], []
    for _ in range(repeats):
        for q in queries:
            t = time.perf_counter()
            hybrid.retrieve(q)
            h_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            dense(q, settings.top_k)
            d_ms.append((time.perf_counter() - t) * 1000)
    return {
        "index_chunks": store.count(),
        "queries": len(h_ms),
        "top_k": settings.top_k,
        "guiderail_hybrid_ms": stats(h_ms),
        "naive_dense_ms": stats(d_ms),
    }


def _timed_stream(events: Iterator[Any]) -> dict[str, Any]:
    """Times of the first 'plan', first 'delta' and 'final' events from the start of the stream."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"plan_ms": None, "first_text_ms": None, "total_ms": None, "timings": {}}
    for ev in events:
        now = (time.perf_counter() - t0) * 1000
        if ev.kind == "plan" and out["plan_ms"] is None:
            out["plan_ms"] = now
        elif ev.kind == "delta" and out["first_text_ms"] is None and ev.text.strip():
            out["first_text_ms"] = now
        elif ev.kind == "final":
            out["total_ms"] = now
            if ev.answer is not None:
                out["timings"] = dict(ev.answer.timings_ms)
        elif ev.kind == "error":
            out["error"] = ev.text
    return out


def _answer_runs(system: Any, cases: Sequence[QACase]) -> dict[str, Any]:
    runs = []
    for c in cases:
        history = [t.model_dump() for t in c.history] or None
        try:
            runs.append(_timed_stream(system.ask_stream(c.question, patient=c.patient, history=history)))
        except Exception as exc:  # one failure is reported, the benchmark goes on
            log.warning("bench answer failed on %s: %s", c.id, exc)
            runs.append({"error": f"{type(exc).__name__}: {exc}"})
    ok = [r for r in runs if r.get("total_ms") is not None]
    verify_share = [
        100.0 * r["timings"]["verify"] / r["timings"]["total"]
        for r in ok
        if r["timings"].get("verify") is not None and r["timings"].get("total")
    ]
    first_useful = [r["plan_ms"] if r["plan_ms"] is not None else r["first_text_ms"] for r in ok]
    return {
        "questions": len(cases),
        "errors": len(runs) - len(ok),
        "first_useful_content_ms": stats([v for v in first_useful if v is not None]),
        "first_text_ms": stats([r["first_text_ms"] for r in ok if r["first_text_ms"] is not None]),
        "full_answer_ms": stats([r["total_ms"] for r in ok]),
        "verification_pct_of_total": stats(verify_share) if verify_share else None,
        "stage_ms": {
            k: stats([r["timings"][k] for r in ok if k in r["timings"]])
            for k in sorted({k for r in ok for k in r["timings"] if is_time_key(k)})
        },
    }


def _default_assistant(settings: Settings) -> Any:
    from assistant.pipeline import build_assistant

    return build_assistant(settings)


def _default_baseline(settings: Settings) -> Any:
    from assistant.evaluation.baseline import DenseStoreRetriever, NaiveRAG
    from assistant.evaluation.configs import dense_search

    chat = None
    if settings.llm != "none":
        from assistant.llm.backends import make_chat_model

        chat = make_chat_model(settings)
    return NaiveRAG(DenseStoreRetriever(search=dense_search(settings), k=settings.top_k), chat, backend=settings.llm)


def bench_answer(
    settings: Settings,
    cases: Sequence[QACase],
    *,
    backends: Sequence[str] = ("none", "local"),
    local_questions: int = DEFAULT_LOCAL_QUESTIONS,
    assistant_factory: AssistantFactory = _default_assistant,
    baseline_factory: BaselineFactory = _default_baseline,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend in backends:
        s = settings.model_copy(update={"llm": backend})
        subset = list(cases) if backend == "none" else list(cases)[:local_questions]
        entry: dict[str, Any] = {}
        for label, factory in (("guiderail", assistant_factory), ("naive", baseline_factory)):
            try:
                system = factory(s)
                _warm(system, subset)
                entry[label] = _answer_runs(system, subset)
            except Exception as exc:  # e.g. no local model file: the other figures still stand
                log.warning("answer bench %s/%s skipped: %s", backend, label, exc)
                entry[label] = {"skipped": f"{type(exc).__name__}: {exc}"}
        out[backend] = entry
    return out


def _warm(system: Any, cases: Sequence[QACase]) -> None:
    """One untimed answer so model loading is not charged to the first question."""
    if cases:
        for _ in system.ask_stream(cases[0].question, patient=cases[0].patient):
            pass


# ---------------------------------------------------------------- driver
def run_bench(
    settings: Settings,
    out_dir: Path,
    *,
    nci_dir: Path | None = None,
    only: Sequence[str] | None = None,
    questions: int | None = None,
    qa_path: Path | None = None,
    backends: Sequence[str] | None = None,
    scale_fn: ScaleFn | None = None,
    assistant_factory: AssistantFactory = _default_assistant,
    baseline_factory: BaselineFactory = _default_baseline,
) -> dict[str, Any]:
    """Run the selected sections; write out_dir/bench.json and bench.md; return the results dict."""
    selected = list(only) if only else list(SECTIONS)
    unknown = [s for s in selected if s not in SECTIONS]
    if unknown:
        raise ConfigError(f"--only: unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if questions is not None and questions < 1:
        raise ConfigError(f"--questions must be >= 1, got {questions}")
    if nci_dir is not None and not Path(nci_dir).is_dir():
        raise ConfigError(f"--nci: not a folder: {nci_dir}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = load_cases(qa_path or DEFAULT_QA)
    answerable = [c for c in cases if not c.expect_abstain] or cases
    backends = list(backends) if backends else ["none", "local"] if settings.llm != "openai" else ["none", "openai"]

    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": _cpus()},
        "settings": {"llm": settings.llm, "top_k": settings.top_k, "candidates_k": settings.candidates_k,
                     "index": settings.chroma_url or str(settings.index_dir)},
        "sections": selected,
    }
    timer = time.perf_counter()
    for section in selected:
        t = time.perf_counter()
        try:
            if section == "ingest":
                result["ingest"] = _bench_ingest(settings, out_dir, nci_dir, scale_fn)
            elif section == "retrieval":
                result["retrieval"] = bench_retrieval(settings, cases)
            elif section == "rules":
                result["rules"] = bench_rules(settings, cases)
            elif section == "answer":
                result["answer"] = bench_answer(
                    settings, answerable, backends=backends,
                    local_questions=questions or DEFAULT_LOCAL_QUESTIONS,
                    assistant_factory=assistant_factory, baseline_factory=baseline_factory,
                )
        except ConfigError:
            raise
        except Exception as exc:  # a missing index or model skips its section, not the whole benchmark
            log.exception("bench section %s failed", section)
            result[section] = {"skipped": f"{type(exc).__name__}: {exc}"}
        result.setdefault("section_seconds", {})[section] = round(time.perf_counter() - t, 1)
    result["wall_s"] = round(time.perf_counter() - timer, 1)
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_now_mb"] = current_rss_mb()
    (out_dir / "bench.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    (out_dir / "bench.md").write_text(render_markdown(result), encoding="utf-8")
    return result


def _cpus() -> int | None:
    import os

    return os.cpu_count()


def _bench_ingest(settings: Settings, out_dir: Path, nci_dir: Path | None, scale_fn: ScaleFn | None) -> dict[str, Any]:
    if scale_fn is None:
        from functools import partial

        from assistant.retrieval import HybridRetriever
        from ingest.scale import measure_ingest

        scale_fn = partial(measure_ingest, retriever_factory=HybridRetriever)
    folder = Path(nci_dir) if nci_dir else settings.corpus_dir
    res = scale_fn(settings, folder, out_dir / "scale-index", queries=250 if nci_dir else 100, progress=False)
    res["source"] = "nci" if nci_dir else "shipped corpus (no --nci given)"
    return res


# ---------------------------------------------------------------- markdown
def _f(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        v = f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return f"{v}{unit}"


def _pair(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("n") in (0, None):
        return "–"
    return f"{_f(stat.get('p50'))} / {_f(stat.get('p95'))}"


def render_markdown(r: dict[str, Any]) -> str:
    lines = ["# GuideRail benchmark", "",
             f"Machine: {r['machine']['platform']}, {r['machine']['cpus']} CPUs, Python {r['machine']['python']}. "
             f"Index: `{r['settings']['index']}`. Wall time {r.get('wall_s')} s; peak RSS {r.get('peak_rss_mb')} MB.", ""]
    ing = r.get("ingest")
    if ing:
        lines += ["## Ingest and retrieval at scale", ""]
        if "skipped" in ing:
            lines += [f"_skipped: {ing['skipped']}_", ""]
        else:
            lines += [
                f"Source: {ing.get('source')} (`{ing.get('corpus')}`): {ing.get('documents')} documents, "
                f"{ing.get('chunks')} chunks, {ing.get('input_mb')} MB in, store {ing.get('store_mb')} MB.", "",
                "| figure | value |", "|---|---|",
                f"| ingest throughput (chunks/s, end to end) | {_f(ing.get('ingest_chunks_per_s'))} |",
                f"| raw MiniLM encode on the same chunks (chunks/s) | {_f(ing.get('raw_encode_chunks_per_s'))} |",
                f"| ingest / raw encode | {_f(ing.get('ingest_vs_raw_encode'))} |",
                f"| full ingest wall time (s) | {_f(ing.get('ingest_wall_s'))} |",
                f"| re-ingest, nothing changed (s) | {_f(ing.get('reingest_unchanged_s'))} |",
                f"| hybrid retrieval p50 / p95 (ms, {ing.get('queries')} queries) | "
                f"{_f(ing.get('query_p50_ms'))} / {_f(ing.get('query_p95_ms'))} |",
                f"| dense search alone p50 (ms) | {_f(ing.get('dense_search_p50_ms'))} |",
                f"| BM25 search alone p50 (ms) | {_f(ing.get('bm25_search_p50_ms'))} |",
                f"| peak RSS during ingest (MB) | {_f(ing.get('peak_rss_mb'))} |", "",
            ]
    ret = r.get("retrieval")
    if ret:
        lines += ["## Retrieval on the product index: GuideRail vs naive baseline", ""]
        if "skipped" in ret:
            lines += [f"_skipped: {ret['skipped']}_", ""]
        else:
            lines += [f"{ret['index_chunks']} chunks, {ret['queries']} dev-set queries, top-k {ret['top_k']}.", "",
                      "| system | p50 / p95 ms |", "|---|---|",
                      f"| GuideRail hybrid (dense + BM25, fused, deduplicated) | {_pair(ret['guiderail_hybrid_ms'])} |",
                      f"| naive baseline (dense top-k) | {_pair(ret['naive_dense_ms'])} |", ""]
    rules = r.get("rules")
    if rules:
        lines += ["## Rule engine per question", ""]
        if "skipped" in rules:
            lines += [f"_skipped: {rules['skipped']}_", ""]
        else:
            lines += [f"{rules['rules_loaded']} rules, {rules['questions']} dev questions; corpus load "
                      f"{rules['knowledge_load_s']} s (once per process). The naive baseline has no rule stage.", "",
                      "| stage | p50 / p95 ms | mean ms |", "|---|---|---|"]
            for k, label in (("context_ms", "patient-context extraction"), ("rules_ms", "rule evaluation"),
                             ("plan_ms", "answer plan")):
                lines.append(f"| {label} | {_pair(rules[k])} | {_f(rules[k].get('mean'))} |")
            lines.append("")
    ans = r.get("answer")
    if ans:
        lines += ["## Answer latency: GuideRail vs naive baseline, same backend", "",
                  "First useful content = the rule-checked plan event (GuideRail) or the first text (baseline).", "",
                  "| backend | system | questions | first useful p50 / p95 ms | first text p50 / p95 ms | "
                  "full answer p50 / p95 ms | verification % of total, p50 |",
                  "|---|---|---|---|---|---|---|"]
        for backend, entry in ans.items():
            for system, res in entry.items():
                if "skipped" in res:
                    lines.append(f"| {backend} | {system} | – | skipped: {res['skipped'][:80]} | | | |")
                    continue
                vs = res.get("verification_pct_of_total") or {}
                lines.append(
                    f"| {backend} | {system} | {res['questions']} | {_pair(res['first_useful_content_ms'])} | "
                    f"{_pair(res['first_text_ms'])} | {_pair(res['full_answer_ms'])} | {_f(vs.get('p50'))} |"
                )
        lines.append("")
    lines += ["## Memory", "", f"Peak RSS of the benchmark process: {r.get('peak_rss_mb')} MB "
              f"(current {r.get('rss_now_mb')} MB).", ""]
    return "\n".join(lines)
