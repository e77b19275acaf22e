"""report.md and PNG plots from the metrics dict (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.evaluation.dataset import QACase

log = logging.getLogger(__name__)

RATE_ROWS = (
    ("must_have_recall", "Must-have recall"),
    ("nice_to_have_recall", "Nice-to-have recall"),
    ("forbidden_free_rate", "Cases free of forbidden claims"),
    ("citation_validity", "Citation validity"),
    ("supported_sentence_rate", "Supported-sentence rate"),
    ("gold_therapy_accuracy", "Gold-therapy accuracy"),
    ("therapy_precision", "Therapy precision"),
    ("abstention_accuracy", "Abstention correctness"),
    ("unsafe_offer_rate", "Unsafe-offer rate (cases offering a must-not-offer drug; lower is better)"),
    ("expected_option_recall", "Expected-option recall"),
    ("retrieval_recall_at_k", "Retrieval recall@k"),
    ("cited_source_recall", "Cited-source recall"),
    ("judge_comprehensiveness", "Judge: comprehensiveness"),
    ("judge_hallucination_rate", "Judge: answers with a contradiction"),
)
COUNT_ROWS = (
    ("forbidden_hits", "Forbidden-claim hits (total)"),
    ("unsafe_offers", "Unsafe offers (total)"),
    ("false_abstentions", "False abstentions"),
    ("missed_abstentions", "Missed abstentions"),
    ("errors", "Errors"),
)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) <= 1.0 else f"{v:,.0f}"
    return str(v)


def _n(summary: dict[str, Any], key: str) -> str:
    n = summary.get(f"{key}_n")
    return f" (n={n})" if n is not None else ""


def overall_table(configs: dict[str, dict[str, Any]]) -> str:
    names = list(configs)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in (*RATE_ROWS, *COUNT_ROWS):
        if all(configs[n].get(key) is None for n in names):
            continue
        cells = [_fmt(configs[n].get(key)) + _n(configs[n], key) for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for q in ("p50", "p95"):
        cells = [_fmt((configs[n].get("latency_ms", {}).get("total") or {}).get(q)) for n in names]
        lines.append(f"| Total latency {q} (ms) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def latency_table(summary: dict[str, Any]) -> str:
    lat = summary.get("latency_ms") or {}
    if not lat:
        return "_no timings recorded_"
    lines = ["| stage | p50 ms | p95 ms | n |", "|---|---|---|---|"]
    for stage, v in lat.items():
        lines.append(f"| {stage} | {_fmt(v.get('p50'))} | {_fmt(v.get('p95'))} | {v.get('n')} |")
    return "\n".join(lines)


def case_table(scores: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| id | must-have | forbidden hits | citations valid | gold therapy | abstention ok | missing points |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        missing = "; ".join(s.get("must_have_missing") or [])[:160].replace("|", "/")
        hits = "; ".join(s.get("forbidden_hits") or []).replace("|", "/") or "0"
        ok = "yes" if s.get("abstention_correct") else ("**no** (error)" if s.get("error") else "**no**")
        lines.append(
            f"| {s['id']} | {_fmt(s.get('must_have_recall'))} | {hits} | {_fmt(s.get('citation_validity'))} | "
            f"{_fmt(s.get('gold_therapy_accuracy'))} | {ok} | {missing} |"
        )
    return "\n".join(lines)


def safety_table(scores: Sequence[dict[str, Any]]) -> str:
    """Per case of the safety set: unsafe offers with where they were made, and the expected-option hit."""
    lines = ["| id | unsafe offers | where | expected option offered | offered |", "|---|---|---|---|---|"]
    for s in scores:
        if not s.get("has_must_not_offer") and s.get("expected_option_hit") is None:
            continue
        unsafe = "; ".join(s.get("unsafe_offers") or []) or "0"
        where = " / ".join(s.get("unsafe_offer_evidence") or [])[:240]
        hit = s.get("expected_option_hit")
        hit_cell = "–" if hit is None else ("yes" if hit else "**no**")
        offered = ", ".join(s.get("offered_therapies") or [])[:160]
        cells = [s["id"], f"**{unsafe}**" if s.get("unsafe_offers") else unsafe, where, hit_cell, offered]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def _plots(out_dir: Path, metrics: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # headless: CI machines and servers have no display
    import matplotlib.pyplot as plt

    configs: dict[str, dict[str, Any]] = metrics["configs"]
    names = list(configs)
    rows = [(k, lbl) for k, lbl in RATE_ROWS if any(configs[n].get(k) is not None for n in names)]
    written: list[str] = []

    def grouped(filename: str, title: str) -> None:
        fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(rows) * max(1, len(names)) / 2 + 4), 4.5))
        width = 0.8 / max(1, len(names))
        for i, n in enumerate(names):
            vals = [configs[n].get(k) or 0.0 for k, _ in rows]
            ax.bar([x + i * width for x in range(len(rows))], vals, width, label=n)
        ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(rows))])
        ax.set_xticklabels([lbl for _, lbl in rows], rotation=35, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / filename, dpi=110)
        plt.close(fig)
        written.append(filename)

    grouped("metrics.png", "Dev-set metrics")
    if len(names) > 1:
        grouped("comparison.png", "GuideRail configurations vs naive RAG baseline")

    first = names[0]
    scores = metrics["case_scores"][first]
    fig, ax = plt.subplots(figsize=(max(7, 0.18 * len(scores) + 2), 3.8))
    ax.bar(range(len(scores)), [s.get("must_have_recall") or 0.0 for s in scores],
           color=["tab:red" if s.get("forbidden_hits") else "tab:blue" for s in scores])
    ax.set_xticks(range(len(scores)))
    ax.set_xticklabels([s["id"] for s in scores], rotation=90, fontsize=6)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Must-have recall per case ({first}; red = forbidden claim made)")
    fig.tight_layout()
    fig.savefig(out_dir / "per_case.png", dpi=110)
    plt.close(fig)
    written.append("per_case.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    stages = sorted({st for n in names for st in (configs[n].get("latency_ms") or {})})
    width = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        lat = configs[n].get("latency_ms") or {}
        p50 = [(lat.get(st) or {}).get("p50") or 0.0 for st in stages]
        p95 = [(lat.get(st) or {}).get("p95") or 0.0 for st in stages]
        xs = [x + i * width for x in range(len(stages))]
        ax.bar(xs, p95, width, alpha=0.35, label=f"{n} p95")
        ax.bar(xs, p50, width, label=f"{n} p50")
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(stages))])
    ax.set_xticklabels(stages, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("ms")
    if stages and max(((configs[n].get("latency_ms") or {}).get(st) or {}).get("p95") or 0 for n in names for st in stages) > 0:
        ax.set_yscale("symlog")
    ax.set_title("Latency per stage")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "latency.png", dpi=110)
    plt.close(fig)
    written.append("latency.png")
    return written


def write_report(out_dir: Path, metrics: dict[str, Any], cases: Sequence[QACase]) -> Path:
    out_dir = Path(out_dir)
    plots = _plots(out_dir, metrics)
    configs = metrics["configs"]
    parts = [
        "# GuideRail evaluation report",
        "",
        f"Q&A file: `{metrics['qa_file']}` (sha256 {metrics['qa_digest']}), {metrics['cases']} cases; "
        f"configurations: {', '.join(f'`{n}`' for n in configs)}.",
        "Metric definitions and the negation / therapy heuristics: `eval/README.md`.",
        "",
        "## Overall" if len(configs) == 1 else "## Side by side",
        "",
        overall_table(configs),
        "",
        *[f"![{p}]({p})" for p in plots],
        "",
    ]
    for name, summary in configs.items():
        parts += [f"## Latency per stage — `{name}`", "", latency_table(summary), ""]
    for name, scores in metrics["case_scores"].items():
        parts += [f"## Per case — `{name}`", "", case_table(scores), ""]
        safety = safety_table(scores)
        if safety:
            parts += [
                f"## Safety per case — `{name}`",
                "",
                "What the answer *offers* (recommend/consider findings, or named without negation in the bottom "
                "line and options): `eval/README.md`, \"Offered therapies\".",
                "",
                safety,
                "",
            ]
    path = out_dir / "report.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
