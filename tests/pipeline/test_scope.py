"""Abstention decided from what the corpus covers (issue 13 item 4): the asking sentence of a long vignette, words
found together in one passage, technical words the index has never seen, and oncology questions about
alterations no approval targets. Uses the real knowledge and a stub index (document frequencies given)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.answer.scope import (
    ScopeJudge,
    _is_common,
    asking_sentence,
    best_passage_coverage,
    focused_question,
    question_coverage,
    question_subject,
    spelling_variants,
    topical_words,
)
from assistant.knowledge import load_knowledge
from assistant.models import Finding, PatientContext, RetrievedPassage, TumourContext, TumourMarker
from assistant.rules import RuleEngine

CORPUS = Path(__file__).resolve().parents[2] / "corpus"

VIGNETTE = (
    "A 71-year-old woman has atrial fibrillation on apixaban and type 2 diabetes on metformin. Her eGFR is 48. "
    "She had a fall last year. Her HbA1c is 7.1%. Which eye drop should be started first for her glaucoma?"
)


def _p(text: str, i: int = 0) -> RetrievedPassage:
    return RetrievedPassage(chunk_id=f"c{i}", doc_id=f"d{i}", text=text, score=1.0)


class StubIndex:
    """Document frequencies for the scope judge (the real one reads the BM25 vocabulary)."""

    def __init__(self, df: dict[str, int]) -> None:
        self.df = df

    def term_doc_freq(self, tokens):
        return {t: self.df.get(t, 0) for t in tokens}

    def retrieve(self, *a, **k):  # pragma: no cover - not used by the judge
        return []

    def passages_for_refs(self, refs):  # pragma: no cover - not used by the judge
        return {}


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge(CORPUS)


def _judge(knowledge, df):
    from assistant.patient import extract_context

    return ScopeJudge(knowledge, StubIndex(df), RuleEngine(knowledge), extract_context)


def test_the_asking_sentence_is_the_last_question():
    assert asking_sentence(VIGNETTE) == "Which eye drop should be started first for her glaucoma?"
    assert asking_sentence("No question mark here. Second sentence") == "Second sentence"
    assert focused_question(VIGNETTE).startswith("A 71-year-old woman") and focused_question(VIGNETTE).endswith("glaucoma?")
    assert focused_question("Short one?") == "Short one?"


def test_topical_words_drop_asking_words_and_split_compounds():
    assert topical_words("What should he switch to?") == []
    assert "nrg1" in topical_words("Anything NRG1-directed approved?")


def test_words_scattered_over_passages_are_not_coverage_together():
    passages = [_p("The usual dose is given for five days.", 1), _p("An antibiotic is chosen by local resistance.", 2)]
    q = "Which antibiotic dose for a COPD exacerbation?"
    assert question_coverage(q, passages) > best_passage_coverage(q, passages)


def test_spelling_and_inflection():
    assert "tumor" in spelling_variants("tumour")
    assert "esophageal" in spelling_variants("oesophageal")
    common = frozenset({"step", "dose", "apply"})
    assert _is_common("stepped", common) and _is_common("dosed", common)
    assert not _is_common("levothyroxine", common)


def test_a_technical_word_the_index_never_saw_is_out_of_scope(knowledge):
    from ingest.embedder import common_words

    if not common_words():
        pytest.skip("the embedding model package (everyday vocabulary) is not installed")
    judge = _judge(knowledge, {"glaucoma": 0})
    # history findings (AF, diabetes) must not back a question about something else
    finding = Finding(rule_id="GEN-AF-APIXABAN", kind="recommend", therapy="apixaban", reason="x", domain="atrial_fibrillation", citations=[1])
    timings: dict[str, float] = {}
    off_topic, backed = judge.judge_scope(VIGNETTE, [_p("apixaban for atrial fibrillation")], [finding], True, timings)
    assert off_topic and not backed
    assert timings.get("asked_unknown_term") == 1.0
    # the same vignette asking about its own anticoagulant stays answerable
    q2 = VIGNETTE.replace("Which eye drop should be started first for her glaucoma?", "Which anticoagulant dose should she take?")
    off2, backed2 = judge.judge_scope(q2, [_p("Apixaban dose for atrial fibrillation: reduce the dose when two criteria apply.")], [finding], True, {})
    assert not (off2 and not backed2)


def test_a_question_about_an_alteration_nothing_targets_says_so(knowledge):
    judge = _judge(knowledge, {})
    ctx = PatientContext(
        tumour=TumourContext(tumour="nsclc", settings=["metastatic"], markers=[TumourMarker(marker="STK11", alteration="mutation")]),
        focus=["oncology"],
    )
    assert judge.unapproved_asked("Metastatic NSCLC with an STK11 mutation. Is any STK11-directed drug approved?", ctx, []) == [
        "STK11 alteration"
    ]
    # a KRAS G12C tumour has a directed approval: no such statement
    ctx2 = ctx.model_copy(update={"tumour": ctx.tumour.model_copy(update={"markers": [TumourMarker(marker="KRAS", alteration="G12C")]})})
    assert judge.unapproved_asked("Is a KRAS-directed drug approved?", ctx2, []) == []


def test_records_for_another_tumour_are_never_quoted(knowledge):
    judge = _judge(knowledge, {})
    ctx = PatientContext(tumour=TumourContext(tumour="nsclc"))
    other = judge.other_tumour_records(ctx)
    assert any(a.startswith("ONC-CRC-") for a in other)
    assert not any(a.startswith("ONC-NSCLC-") for a in other)
    assert not any(a.startswith("ONC-SOLID-") for a in other)  # tumour-agnostic records apply to NSCLC


# ------------------------------------------------------------------ the question's subject must be a documented topic
class TopicIndex(StubIndex):
    """A stub index that also lists the words of its documents' titles, topics and headings."""

    def __init__(self, df: dict[str, int], topics: set[str]) -> None:
        super().__init__(df)
        self.topics = frozenset(topics)

    def topic_terms(self):
        return self.topics


# Titles/topics of a small guideline shelf: AF anticoagulation, type 2 diabetes and CKD, asthma incl. biologics.
SHELF = {"atrial", "fibrillation", "anticoagulation", "diabetes", "kidney", "chronic", "disease", "asthma",
         "biologic", "dupilumab", "inhaled", "corticosteroid", "prostate", "cancer", "pneumonia", "pulmonary",
         "embolism", "urinary", "infection"}


@pytest.mark.parametrize(
    ("question", "where", "phrase"),
    [
        ("He has diabetes and AF. Should he start an alpha-blocker or both for his benign prostatic hyperplasia?",
         "asked", "benign prostatic hyperplasia"),
        ("She has CKD. She keeps a diary. Which shingles vaccine should she receive, and when?", "asked", "shingles"),
        ("A 26-year-old man with moderate-to-severe ulcerative colitis has needed prednisone. He has no infections. "
         "What is the next step: a biologic, a JAK inhibitor or something else?", "opening",
         "moderate-to-severe ulcerative colitis"),
        ("What should he switch to?", "", ""),
    ],
)
def test_question_subject(question, where, phrase):
    assert question_subject(question) == (where, phrase)


@pytest.mark.parametrize(
    "question",
    [
        # each one's history (AF, diabetes, CKD, asthma) is on the shelf; what is asked about is not
        "A 68-year-old man has lower urinary tract symptoms. He has AF on apixaban and type 2 diabetes on metformin. "
        "His eGFR is 70. Should he start an alpha-blocker or a 5-alpha-reductase inhibitor for his benign prostatic "
        "hyperplasia?",
        "A 19-year-old woman has moderate-to-severe atopic dermatitis affecting her hands. She has asthma on an inhaled "
        "steroid. Her kidney function is normal. Should she start dupilumab or an oral JAK inhibitor?",
        "A 66-year-old woman has type 2 diabetes and CKD with an eGFR of 44. She takes metformin. She has never had a "
        "zoster vaccine. Which shingles vaccine should she receive and how many doses?",
    ],
)
def test_a_subject_no_document_is_about_is_not_covered(question, knowledge):
    judge = ScopeJudge(knowledge, TopicIndex({}, SHELF), RuleEngine(knowledge), _extract())
    assert judge.uncovered_subject(question)
    timings: dict[str, float] = {}
    finding = Finding(rule_id="GEN-AF-APIXABAN", kind="recommend", therapy="apixaban", domain="atrial_fibrillation",
                      reason="Apixaban for AF.", refs=["R"], citations=[1])
    off_topic, backed = judge.judge_scope(question, [_p("apixaban for atrial fibrillation with diabetes")], [finding],
                                          True, timings)
    assert (off_topic, backed) == (True, False) and timings.get("subject_uncovered") == 1.0


@pytest.mark.parametrize(
    "question",
    [
        # covered subjects: named by a title/topic, or read by the rules under another name
        "A 70-year-old man with type 2 diabetes has an eGFR of 40. He takes metformin. Which drug protects his kidneys "
        "for his chronic kidney disease?",
        "Acute PE in a 45-year-old woman with epilepsy well controlled on carbamazepine; normal renal function. "
        "Which anticoagulant?",
        "22 weeks pregnant: fever 39 °C, right flank pain with costovertebral angle tenderness, pyuria. How should "
        "this urinary infection be treated?",
        "A 64-year-old man has metastatic castration-resistant prostate cancer after docetaxel. His PSA is rising. "
        "What should he switch to?",
    ],
)
def test_a_documented_or_known_subject_is_covered(question, knowledge):
    judge = ScopeJudge(knowledge, TopicIndex({}, SHELF), RuleEngine(knowledge), _extract())
    assert judge.uncovered_subject(question) == ""


def test_no_topic_list_means_no_subject_judgement(knowledge):
    judge = ScopeJudge(knowledge, StubIndex({}), RuleEngine(knowledge), _extract())
    assert judge.uncovered_subject("Which eye drop should be started first for her glaucoma?") == ""


def test_inflections_are_stripped_not_letters():
    common = frozenset({"shin", "step", "dose", "monitor"})
    assert not _is_common("shingle", common)
    assert _is_common("stepped", common) and _is_common("dosed", common) and _is_common("monitored", common)


def _extract():
    from assistant.patient import extract_context

    return extract_context


def test_the_sentence_before_the_question_gives_the_subject_only_when_it_is_the_request():
    request = ("A 52-year-old woman is admitted with epigastric pain. She has type 2 diabetes. The admitting team asks "
               "how to manage fluids for her pancreatitis. Which fluid, at what rate?")
    assert question_subject(request) == ("asked", "pancreatitis")
    finding = ("A 70-year-old man had a stroke 9 hours ago. He takes apixaban. CT perfusion shows a penumbra of "
               "about 110 mL. What next?")
    assert question_subject(finding)[1] != "about 110 mL"


def test_a_question_pointing_back_is_searched_with_the_sentence_it_points_to():
    q = ("A 40-year-old woman has moderate depression. She has hypertension. Her doctor is weighing sertraline, "
         "bupropion or mirtazapine. Which of these should she start?")
    fq = focused_question(q)
    assert "sertraline" in fq and fq.endswith("Which of these should she start?")
    plain = "A 40-year-old woman has moderate depression. She has hypertension. She sleeps badly. What should she start?"
    assert "sleeps" not in focused_question(plain)
