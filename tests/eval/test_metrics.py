"""Metric functions on hand-made answers with known scores."""

from __future__ import annotations

import pytest

from assistant.evaluation.dataset import ForbiddenClaim, KeyPoint, QACase
from assistant.evaluation.metrics import (
    citation_validity,
    forbidden_hits,
    gold_accuracy,
    keypoint_recall,
    percentile,
    score_case,
    source_recall,
    summarize,
    supported_rate,
    therapy_precision,
)
from assistant.evaluation.textmatch import citation_markers, normalize, sentences
from assistant.evaluation.therapies import TherapyLexicon, recommended_therapies

LEX = TherapyLexicon.from_entries([
    {"id": "olaparib", "classes": ["PARPi"], "names": ["olaparib", "Lynparza"]},
    {"id": "cabazitaxel", "classes": ["taxane"], "names": ["cabazitaxel", "Jevtana"]},
    {"id": "docetaxel", "classes": ["taxane"], "names": ["docetaxel"]},
    {"id": "abiraterone", "classes": ["ARPI"], "names": ["abiraterone", "Zytiga"]},
    {"id": "enzalutamide", "classes": ["ARPI"], "names": ["enzalutamide"]},
    {"id": "talazoparib", "classes": ["PARPi"], "names": ["talazoparib"]},
    {"id": "niraparib+abiraterone", "classes": ["PARPi"], "names": ["Akeega"]},
    {"id": "niraparib", "classes": ["PARPi"], "names": ["niraparib"]},
    {"id": "radium223", "classes": ["radiopharmaceutical"], "names": ["radium-223", "Xofigo"]},
    {"id": "lu177_psma617", "classes": ["PSMA_radioligand"], "names": ["Lu-177-PSMA-617", "Pluvicto"]},
    {"id": "adt", "classes": ["ADT"], "names": ["ADT"]},
    {"id": "prednisone", "classes": ["corticosteroid"], "names": ["prednisone"]},
    {"id": "carboplatin", "classes": ["platinum"], "names": ["carboplatin"]},
    {"id": "pembrolizumab", "classes": ["PD1_inhibitor"], "names": ["pembrolizumab"]},
])


def kp(*kw: str, point: str = "") -> KeyPoint:
    return KeyPoint(point=point or kw[0], keywords=list(kw))


def fc(*kw: str) -> ForbiddenClaim:
    return ForbiddenClaim(claim=kw[0], keywords=list(kw))


def test_normalize_strips_case_punctuation_and_citation_markers():
    assert normalize("Lu-177–PSMA-617 [2], (Pluvicto)!") == "lu 177 psma 617 pluvicto"
    assert normalize("Don't") == "dont"


def test_citation_markers_forms():
    assert citation_markers("a [1] b [2, 3] c [4-6] d [7][8]") == [1, 2, 3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize(
    ("text", "expected", "missing"),
    [
        ("Offer CABAZITAXEL; refer to a clinical-trial.", 1.0, []),
        ("Offer cabazitaxel.", 0.5, ["trial"]),
        ("Nothing useful.", 0.0, ["cabazitaxel", "trial"]),
        ("cabazitaxelum is not a word match", 0.0, ["cabazitaxel", "trial"]),
    ],
)
def test_keypoint_recall(text, expected, missing):
    points = [kp("cabazitaxel", "Jevtana"), kp("clinical trial", point="trial")]
    recall, miss = keypoint_recall(text, points)
    assert recall == expected
    assert miss == missing


def test_keypoint_recall_none_without_points():
    assert keypoint_recall("anything", []) == (None, [])


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("Continue Lu-177 after progression.", True),
        ("Do not continue Lu-177 after progression.", False),
        ("Lu-177 should not be continued; continue Lu-177 is not advised.", False),
        ("Continuing is unwise. Continue Lu-177 after progression [2].", True),
        ("It is outdated to continue Lu-177 after progression.", False),
        ("## Not recommended\n- continue Lu-177 after progression", False),
        ("## Options\n- continue Lu-177 after progression", True),
        # clause-level: the negation belongs to another clause
        ("Continue Lu-177 after progression, although PSA is not reliable.", True),
        ("Radium-223 is not an option, continue Lu-177 after progression.", True),
    ],
)
def test_forbidden_claim_negation(text, hit):
    hits = forbidden_hits(text, [fc("continue Lu-177")])
    assert bool(hits) is hit, sentences(text)


@pytest.mark.parametrize(
    ("text", "hit"),
    [("Stop ADT when cabazitaxel starts.", True), ("Do not stop ADT.", False), ("Never stop ADT; keep testosterone low.", False)],
)
def test_forbidden_claim_that_contains_a_cue_word(text, hit):
    assert bool(forbidden_hits(text, [fc("stop ADT")])) is hit


def test_forbidden_known_failure_mode_double_negation_is_missed():
    # documented limitation (eval/README.md): a double negation reads as negated, so no hit is reported
    assert forbidden_hits("It is not unreasonable to continue Lu-177.", [fc("continue Lu-177")]) == []


def test_citation_validity():
    cits = [{"number": 1, "passage": "x", "chunk_id": "a"}, {"number": 2, "passage": "", "chunk_id": "b"}]
    assert citation_validity("A [1]. B [2]. C [3]. D [1].", cits) == (0.5, [2, 3])
    assert citation_validity("no markers", cits) == (None, [])


def test_supported_rate():
    assert supported_rate({"support_scores": [0.9, 0.5, 0.1, 0.0]}) == 0.5
    assert supported_rate({"support_scores": []}) is None
    assert supported_rate(None) is None


def test_recommended_vs_mentioned_therapies():
    text = (
        "After progression on abiraterone and docetaxel, offer cabazitaxel [1]. "
        "Olaparib is an option given the BRCA2 variant. Radium-223 is not appropriate with liver metastases. "
        "Continue ADT."
    )
    rec = recommended_therapies(sentences(text), LEX)
    assert rec == {"cabazitaxel", "olaparib", "adt"}


def test_gold_accuracy_requires_a_full_set():
    gold = [["enzalutamide", "talazoparib"], ["olaparib"]]
    assert gold_accuracy({"enzalutamide"}, gold, LEX) == 0.0
    assert gold_accuracy({"enzalutamide", "talazoparib"}, gold, LEX) == 1.0
    assert gold_accuracy({"olaparib", "docetaxel"}, gold, LEX) == 1.0
    assert gold_accuracy({"olaparib"}, [], LEX) is None


def test_regimen_gold_by_brand_name():
    # "Akeega" is the niraparib+abiraterone regimen: it expands to both components
    assert gold_accuracy({"niraparib", "abiraterone"}, [["Akeega"]], LEX) == 1.0


def test_therapy_precision_ignores_background_therapies():
    gold = [["cabazitaxel"], ["olaparib"]]
    assert therapy_precision({"cabazitaxel", "adt", "prednisone"}, gold, LEX) == 1.0
    assert therapy_precision({"cabazitaxel", "radium223"}, gold, LEX) == 0.5
    assert therapy_precision({"adt"}, gold, LEX) is None
    assert therapy_precision({"cabazitaxel"}, [], LEX) is None


def test_source_recall_matches_doc_rec_and_slug():
    passages = [
        {"doc_id": "aua-apc-2023", "rec_id": "AUA-APC-S28", "section_path": "mCRPC › After docetaxel"},
        {"doc_id": "label-olaparib", "rec_id": "", "section_path": "Indications"},
    ]
    assert source_recall(["AUA-APC-S28", "label-olaparib", "aua-apc-2023#after-docetaxel"], passages) == 1.0
    assert source_recall(["AUA-APC-S99", "aua-apc-2023#bone-health"], passages) == 0.0
    assert source_recall([], passages) is None


def test_percentile_linear():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10], 95) == 10
    assert percentile([], 50) is None
    assert percentile(list(range(101)), 95) == 95


def test_score_case_and_summary():
    case = QACase(
        id="X", question="q", must_have=[kp("cabazitaxel"), kp("trial")], forbidden=[fc("radium-223 is an option")],
        gold_therapies=[["cabazitaxel"]], sources=["AUA-APC-S28"],
    )
    answer = {
        "answer_markdown": "Offer cabazitaxel [1]. Radium-223 is an option [2].",
        "citations": [{"number": 1, "passage": "p", "chunk_id": "c", "doc_id": "aua", "rec_id": "AUA-APC-S28"}],
        "abstained": False,
        "verification": {"support_scores": [1.0, 0.0]},
        "timings_ms": {"total": 10.0},
    }
    sc = score_case(case, answer, LEX, retrieved=[{"doc_id": "aua", "rec_id": "AUA-APC-S28"}])
    assert sc.must_have_recall == 0.5
    assert sc.forbidden_hits == ["radium-223 is an option"]
    assert sc.citation_validity == 0.5 and sc.invalid_citations == [2]
    assert sc.supported_sentence_rate == 0.5
    assert sc.gold_therapy_accuracy == 1.0
    assert sc.therapy_precision == 0.5  # cabazitaxel (gold) + radium-223 (not gold)
    assert sc.retrieval_recall_at_k == 1.0 and sc.cited_source_recall == 1.0
    assert sc.abstention_correct

    abst = score_case(QACase(id="Y", question="q", expect_abstain=True), {"answer_markdown": "x", "abstained": False}, LEX)
    assert not abst.abstention_correct
    summary = summarize([sc, abst])
    assert summary["abstention_accuracy"] == 0.5
    assert summary["missed_abstentions"] == 1
    assert summary["forbidden_hits"] == 1 and summary["cases_with_forbidden_hit"] == 1
    assert summary["must_have_recall"] == 0.5 and summary["must_have_recall_n"] == 1
    assert summary["latency_ms"]["total"]["p50"] == 10.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("_Excluded by the rule checks for this patient: olaparib, radium-223._\nOffer cabazitaxel.", {"cabazitaxel"}),
        ("## Warnings and open questions\n- Radium-223 needs bone-only disease.\n## Options\n- Cabazitaxel.", {"cabazitaxel"}),
        ("Has MSI testing been done for pembrolizumab? Offer cabazitaxel.", {"cabazitaxel"}),
        ("Visceral metastases decide radium-223 eligibility. Cabazitaxel is preferred.", {"cabazitaxel"}),
        # a long lead-in before a colon is content, not an exclusion label
        ("Carboplatin (when a PARP inhibitor cannot be used, per NCCN and AUA statements): carboplatin with docetaxel.",
         {"carboplatin", "docetaxel"}),
    ],
)
def test_recommended_therapy_context_rules(text, expected):
    assert recommended_therapies(sentences(text), LEX) == expected


def test_quoted_evidence_is_not_an_assertion():
    text = "- \u201cOffer apalutamide to nmCRPC with PSADT of 10 months or less.\u201d [1]\n> Offer apalutamide.\nObserve."
    assert forbidden_hits(text, [fc("offer apalutamide")]) == []
    assert keypoint_recall(text, [kp("apalutamide")])[0] == 1.0  # coverage still counts quoted text
