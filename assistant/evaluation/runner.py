"""`guiderail eval`: run every Q&A case through one or more configurations, score, and write the report.

Layout of --out:
  single configuration:  answers.jsonl, metrics.json, report.md, *.png
  --compare a,b,...:     <config>/answers.jsonl per configuration, plus the same top-level files, with a
                         side-by-side table and plot.
Resumable: answers.jsonl is appended (and fsynced) one case at a time; a rerun skips cases already there.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from assistant.errors import ConfigError
from assistant.evaluation.configs import BuiltConfig, EvalConfig, build_config, default_configs
from assistant.evaluation.dataset import QACase, file_digest, input_digest, load_cases
from assistant.evaluation.metrics import CaseScore, score_case, summarize
from assistant.evaluation.report import write_report
from assistant.evaluation.therapies import TherapyLexicon
from assistant.settings import Settings

log = logging.getLogger(__name__)

ConfigFactory = Callable[[EvalConfig], BuiltConfig]
ANSWERS = "answers.jsonl"
JUDGE = "judge.jsonl"
RUN_INFO = "run.json"


def _safe_dirname(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=@-]+", "_", name)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (crash mid-write) is dropped and the file rewritten without it."""
    if not path.is_file():
        return []
    good: list[dict[str, Any]] = []
    bad = 0
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        if not line.strip():
            continue
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            bad += 1
    if bad:
        log.warning("%s: dropped %d unreadable line(s) left by an interrupted run", path, bad)
        _rewrite(path, good)
    return good


def _rewrite(path: Path, records: Sequence[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, path)


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _prepare_dir(cfg_dir: Path, info: dict[str, Any], resume: bool) -> None:
    cfg_dir.mkdir(parents=True, exist_ok=True)
    info_path = cfg_dir / RUN_INFO
    if not resume:
        for name in (ANSWERS, JUDGE):
            (cfg_dir / name).unlink(missing_ok=True)
    elif info_path.is_file():
        old = json.loads(info_path.read_text())
        if {k: old.get(k) for k in info} != info and (cfg_dir / ANSWERS).is_file():
            raise ConfigError(
                f"{cfg_dir} holds answers from a different configuration ({old.get('config')}); "
                "use --no-resume to start over or another --out"
            )
    info_path.write_text(json.dumps(info, indent=2))


def _answer_record(case: QACase, cfg: EvalConfig, built: BuiltConfig) -> dict[str, Any]:
    history = [t.model_dump() for t in case.history]
    t0 = time.perf_counter()
    try:
        answer = built.answerer.ask(
            case.question, patient=case.patient, history=history or None, audience=cfg.settings.audience
        )
        record = answer.model_dump(mode="json")
    except Exception as exc:  # one failing case must not end a 50-case run; it is scored as an error
        log.exception("case %s failed under %s", case.id, cfg.name)
        record = {
            "question": case.question,
            "answer_markdown": "",
            "citations": [],
            "abstained": False,
            "error": f"{type(exc).__name__}: {exc}",
            "timings_ms": {"total": (time.perf_counter() - t0) * 1000},
        }
    record = {"id": case.id, "config": cfg.name, "eval_input": input_digest(case), **record}
    if built.recall_probe is not None and case.sources:
        query = "\n".join(filter(None, [case.patient, case.question]))
        try:
            record["eval_retrieved"] = built.recall_probe(query, cfg.settings.top_k)
        except Exception as exc:  # recall is a side metric; its failure is logged, not fatal
            log.warning("retrieval probe failed for %s: %s", case.id, exc)
    return record


def run_config(
    cfg: EvalConfig,
    cases: Sequence[QACase],
    cfg_dir: Path,
    *,
    resume: bool,
    factory: ConfigFactory,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Answer every case not yet in cfg_dir/answers.jsonl; return the records in case order."""
    # the Q&A file itself may change between runs (keywords, new cases): each stored answer carries the digest
    # of what it was asked, and only cases whose question/patient/history changed are answered again
    info = {"config": cfg.name, "system": cfg.system, "llm": cfg.settings.llm,
            "overrides": {k: str(v) for k, v in cfg.overrides.items()}}
    _prepare_dir(cfg_dir, info, resume)
    path = cfg_dir / ANSWERS
    stored = read_jsonl(path)
    by_id = {c.id: c for c in cases}
    wanted = {c.id: input_digest(c) for c in cases}

    def current(r: dict[str, Any]) -> bool:
        case = by_id.get(r.get("id", ""))
        if case is None:
            return False
        if "eval_input" not in r:  # written before inputs were digested: the question text must still match
            return r.get("question") == case.question
        return r["eval_input"] == wanted[case.id]

    done = {r["id"]: r for r in stored if current(r)}
    if len(done) < sum(1 for r in stored if r.get("id") in wanted):
        # drop stale answers (their question changed) so the file holds one current answer per case
        _rewrite(path, [r for r in stored if r.get("id") not in wanted or r.get("id") in done])
    todo = [c for c in cases if c.id not in done]
    if done:
        log.info("%s: resuming, %d of %d cases already answered", cfg.name, len(cases) - len(todo), len(cases))
    if todo:
        built = factory(cfg)
        for case in tqdm(todo, desc=f"eval {cfg.name}", unit="q", disable=not progress):
            rec = _answer_record(case, cfg, built)
            _append(path, rec)
            done[case.id] = rec
    return [done[c.id] for c in cases]


def _judge_all(
    cases: Sequence[QACase], records: Sequence[dict[str, Any]], cfg_dir: Path, model: Any, progress: bool
) -> dict[str, dict[str, Any]]:
    from assistant.evaluation.judge import judge_case

    path = cfg_dir / JUDGE
    done = {r["id"]: r for r in read_jsonl(path) if "id" in r}
    for case, rec in tqdm(list(zip(cases, records, strict=True)), desc="judge", unit="q", disable=not progress):
        if case.id in done or rec.get("error") or not (case.must_have or case.nice_to_have):
            continue
        try:
            result = judge_case(model, case, str(rec.get("answer_markdown", "")))
        except Exception as exc:  # a judge outage leaves the keyword metrics intact
            log.warning("judge failed on %s: %s", case.id, exc)
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["id"] = case.id
        _append(path, result)
        done[case.id] = result
    return done


def score_records(
    cases: Sequence[QACase], records: Sequence[dict[str, Any]], lexicon: TherapyLexicon, config: str,
    judged: dict[str, dict[str, Any]] | None = None,
) -> list[CaseScore]:
    scores = []
    for case, rec in zip(cases, records, strict=True):
        sc = score_case(case, rec, lexicon, retrieved=rec.get("eval_retrieved"), config=config)
        if judged and case.id in judged:
            sc.judge = {k: v for k, v in judged[case.id].items() if k != "id"}
        scores.append(sc)
    return scores


def run_eval(
    settings: Settings,
    qa_path: Path,
    out_dir: Path,
    *,
    limit: int | None = None,
    judge: bool = False,
    compare: Sequence[str] | None = None,
    resume: bool = True,
    factory: ConfigFactory | None = None,
    judge_model: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate; returns the metrics dict also written to out_dir/metrics.json (its "summary" is printed)."""
    qa_path, out_dir = Path(qa_path), Path(out_dir)
    cases = load_cases(qa_path, limit)
    configs = default_configs(settings, compare)
    lexicon = TherapyLexicon.load(settings.corpus_dir)
    if judge and judge_model is None:
        from assistant.evaluation.judge import make_judge_model

        judge_model = make_judge_model(settings)  # fails early, before any answering, if unconfigured
    factory = factory or build_config
    digest = file_digest(qa_path)
    single = compare is None
    out_dir.mkdir(parents=True, exist_ok=True)

    per_config: dict[str, dict[str, Any]] = {}
    case_scores: dict[str, list[dict[str, Any]]] = {}
    for cfg in configs:
        cfg_dir = out_dir if single else out_dir / _safe_dirname(cfg.name)
        records = run_config(cfg, cases, cfg_dir, resume=resume, factory=factory, progress=progress)
        judged = _judge_all(cases, records, cfg_dir, judge_model, progress) if judge else None
        scores = score_records(cases, records, lexicon, cfg.name, judged)
        per_config[cfg.name] = summarize(scores)
        case_scores[cfg.name] = [s.to_dict() for s in scores]
        (cfg_dir / "case_scores.jsonl").write_text(
            "".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in scores), encoding="utf-8"
        )

    metrics: dict[str, Any] = {
        "qa_file": str(qa_path),
        "qa_digest": digest,
        "cases": len(cases),
        "configs": per_config,
        "case_scores": case_scores,
        "summary": per_config[configs[0].name] if single else compare_table(per_config),
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
    write_report(out_dir, metrics, cases)
    return metrics


HEADLINE = (
    "must_have_recall",
    "nice_to_have_recall",
    "forbidden_free_rate",
    "forbidden_hits",
    "citation_validity",
    "supported_sentence_rate",
    "gold_therapy_accuracy",
    "therapy_precision",
    "abstention_accuracy",
    "unsafe_offer_rate",
    "expected_option_recall",
    "retrieval_recall_at_k",
    "cited_source_recall",
)


def compare_table(per_config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Headline metric → {config: value}, plus total latency p50/p95."""
    table: dict[str, dict[str, Any]] = {}
    for m in HEADLINE:
        table[m] = {name: s.get(m) for name, s in per_config.items()}
    for q in ("p50", "p95"):
        table[f"latency_total_ms_{q}"] = {
            name: (s.get("latency_ms", {}).get("total") or {}).get(q) for name, s in per_config.items()
        }
    return table
