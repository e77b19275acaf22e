"""Bad-input catalogue, questions: the production Assistant (rules-only backend, real retriever, rules,
composer and verifier over the shipped corpus; fake embedder) gives a clear QuestionError or an
answer — never another exception — and nothing is lost from the index."""

from __future__ import annotations

import contextlib
import re

import pytest

from assistant.errors import QuestionError
from assistant.models import Answer

BASE = "Patient with mCRPC progressed on enzalutamide, BRCA2 pathogenic germline mutation. What are the options?"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _answer_ok(answer: Answer) -> None:
    assert isinstance(answer, Answer)
    assert answer.answer_markdown.strip(), "an answer (or an abstention) must say something"
    if not answer.abstained:
        assert answer.citations, "a non-abstaining answer must cite"


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("", ("empty",)),
        ("   \n\t  \r\n ", ("empty",)),
        ("\x00\x01\x02\x1b", ("empty",)),
        ("x" * 100_000, ("limit", "long")),
        ("What next? " * 10_000, ("limit", "long")),
    ],
    ids=["empty", "whitespace", "only-control-chars", "100KB-one-word", "100KB-sentences"],
)
def test_unanswerable_question_gives_a_clear_question_error(rules_assistant, question, words):
    with pytest.raises(QuestionError) as exc:
        rules_assistant.ask(question)
    msg = str(exc.value).lower()
    assert any(w in msg for w in words), msg
    if len(question) > 1000:
        assert f"{rules_assistant.settings.max_question_chars:,}" in str(exc.value), "name the limit"


@pytest.mark.parametrize("bad", [None, b"bytes question", 42, ["list"]], ids=["none", "bytes", "int", "list"])
def test_non_text_question_gives_a_question_error(rules_assistant, bad):
    with pytest.raises(QuestionError):
        rules_assistant.ask(bad)


def test_oversized_patient_box_gives_a_clear_error(rules_assistant):
    with pytest.raises(QuestionError, match="limit"):
        rules_assistant.ask("What are the options?", patient="history " * 20_000)


def test_bad_audience_gives_a_clear_error(rules_assistant):
    with pytest.raises(QuestionError, match="audience"):
        rules_assistant.ask(BASE, audience="martian")


@pytest.mark.parametrize(
    "question",
    [
        "Patient avec un cancer de la prostate résistant à la castration et une mutation BRCA2 : quelles options ?",
        "Paciente con cáncer de próstata resistente a la castración y mutación BRCA2, ¿qué opciones hay?",
        "前列腺癌患者 BRCA2 突变 去势抵抗 治疗选择?",
        "مريض بسرطان البروستاتا المقاوم للإخصاء مع طفرة BRCA2، ما هي الخيارات؟",
        "Пациент с кастрационно-резистентным раком простаты и мутацией BRCA2: какие варианты?",
    ],
    ids=["french", "spanish", "chinese", "arabic", "russian"],
)
def test_non_english_question_is_answered_or_abstains(rules_assistant, question):
    _answer_ok(rules_assistant.ask(question))


@pytest.mark.parametrize(
    "question",
    [
        "What about olaparib 💊🧬 for BRCA2 mCRPC? 🙏🏽👨‍⚕️",
        "mCRPC\x00 after enzalutamide\x07, BRCA2\x1b[31m positive — options?\x7f",
        "mCRPC after\u200b enzalutamide\u202e, BRCA2 positive: options?\u2066",
        "????!!!...",
        "olaparib",
        "'; DROP TABLE embeddings; -- ../../etc/passwd $(rm -rf /) {{7*7}}",
        "\ufeffmCRPC after enzalutamide with BRCA2: options?\ufffd",
    ],
    ids=["emoji", "control-chars", "bidi-zero-width", "punctuation", "single-drug", "sql-shell-template", "bom-replacement"],
)
def test_odd_characters_never_crash_and_never_reach_the_answer(rules_assistant, question):
    answer = rules_assistant.ask(question)
    _answer_ok(answer)
    assert not _CONTROL.search(answer.answer_markdown), "control/bidi characters must not reach the rendered answer"
    assert "\x00" not in answer.question


def test_long_history_is_handled(rules_assistant):
    history = []
    for i in range(300):
        history.append({"role": "user", "content": f"Turn {i}: mCRPC, PSA {i + 1}.0 ng/mL rising"})
        history.append({"role": "assistant", "content": "Noted [1]."})
    _answer_ok(rules_assistant.ask("What now?", history=history))


def test_malformed_history_entries_do_not_crash(rules_assistant):
    history = [{"role": "user"}, {"content": "no role"}, {"role": "user", "content": None}, {"role": "tool", "content": "x"}]
    try:
        answer = rules_assistant.ask(BASE, history=history)
    except QuestionError:
        return  # a clear refusal is fine
    _answer_ok(answer)


# ---------------------------------------------------------------- contradictory patient facts
CONTRADICTIONS = [
    ("mCRPC patient with a BRCA2 pathogenic mutation; BRCA2 testing was negative. Options?", "brca2"),
    ("He has mCRPC. He also has castration-sensitive metastatic disease (mHSPC). Options?", "state"),
    ("ECOG 1. ECOG 3. mCRPC after enzalutamide. Options?", "ecog"),
    ("67-year-old man, age 81, mCRPC after enzalutamide. Options?", "age"),
    ("mCRPC, no bone metastases, bone metastases present on scan. Options?", "bone"),
]


def _conflict_visible(answer: Answer, key: str) -> bool:
    ctx = answer.patient_context
    in_notes = any(key in n.lower() for n in ctx.notes)
    in_changes = any(key in ch.field.lower() for ch in ctx.changes)
    in_answer = bool(re.search(rf"(conflict|contradict|inconsistent)[^\n]*{key}|{key}[^\n]*(conflict|contradict)",
                               answer.answer_markdown, re.I))
    return in_notes or in_changes or in_answer


@pytest.mark.parametrize(("question", "key"), CONTRADICTIONS, ids=[c[1] for c in CONTRADICTIONS])
def test_contradictory_facts_in_one_message_are_shown_not_silently_resolved(rules_assistant, question, key):
    answer = rules_assistant.ask(question)
    _answer_ok(answer)
    assert _conflict_visible(answer, key), (
        f"the message states two values for {key!r}; one was picked silently. "
        f"notes={answer.patient_context.notes} changes={answer.patient_context.changes}"
    )


def test_contradiction_across_turns_is_shown_as_a_change(rules_assistant):
    history = [{"role": "user", "content": "mCRPC after enzalutamide with a BRCA2 pathogenic mutation"}]
    answer = rules_assistant.ask("Correction: BRCA2 testing was negative. Options now?", history=history)
    _answer_ok(answer)
    assert _conflict_visible(answer, "brca2")


def test_bad_questions_leave_the_index_untouched(rules_assistant, corpus_store):
    before = (corpus_store.count(), corpus_store.manifest().generation, len(corpus_store.all_chroma_ids()))
    for q in ["", "x" * 100_000, "'; DROP TABLE embeddings; --", CONTRADICTIONS[0][0], "前列腺癌"]:
        with contextlib.suppress(QuestionError):
            rules_assistant.ask(q)
    after = (corpus_store.count(), corpus_store.manifest().generation, len(corpus_store.all_chroma_ids()))
    assert after == before
    assert rules_assistant.ask(BASE).citations, "the assistant still answers afterwards"
