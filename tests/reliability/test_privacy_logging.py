"""Privacy: patient text is redacted from every log record unless settings.log_patient_text is set."""

from __future__ import annotations

import io
import logging

import pytest

from assistant import logging_setup as ls
from assistant.models import PatientContext, TherapyExposure
from assistant.settings import load_settings

QUESTION = "My 67 year old patient with mCRPC progressed on enzalutamide and carries a BRCA2 mutation, what next?"
PATIENT = "Lives alone in Ashford, creatinine clearance 38, allergic to sulfonamides"


@pytest.fixture
def captured():
    """A fresh logger writing to a buffer, redaction installed for this test only."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("tests.reliability.privacy")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    ls.uninstall_redaction()
    yield logger, stream
    ls.uninstall_redaction()
    logger.handlers.clear()


def test_registered_question_and_patient_text_never_reach_the_log(captured):
    logger, stream = captured
    ls.install_redaction(load_settings(llm="none"))
    ls.register_patient_text(QUESTION, PATIENT)
    logger.info("question=%s", QUESTION)
    logger.debug("patient box: %r", PATIENT)
    logger.warning(f"prompt was: SYSTEM ... {QUESTION.upper()} ... END")  # f-string, changed case
    out = stream.getvalue()
    assert "enzalutamide and carries" not in out.lower()
    assert "Ashford" not in out and "sulfonamides" not in out
    assert out.count(ls.REDACTED) >= 3
    assert "question=" in out and "SYSTEM" in out and "END" in out, "the rest of the message must survive"


def test_fragments_of_registered_text_are_redacted_but_unrelated_words_are_not(captured):
    logger, stream = captured
    ls.install_redaction()
    ls.register_patient_text(QUESTION)
    logger.info("extracted therapy from 'progressed on enzalutamide' for the record")
    logger.info("retrieval took 12 ms for 6 passages")
    out = stream.getvalue()
    assert "progressed on enzalutamide" not in out
    assert "retrieval took 12 ms for 6 passages" in out


def test_log_patient_text_setting_turns_redaction_off(captured):
    logger, stream = captured
    ls.install_redaction(load_settings(llm="none", log_patient_text=True))
    ls.register_patient_text(QUESTION)
    logger.info("question=%s", QUESTION)
    assert QUESTION in stream.getvalue()


def test_patient_text_wrapper_and_patient_records_are_replaced_even_when_unregistered(captured):
    logger, stream = captured
    ls.install_redaction()
    ctx = PatientContext(
        disease_state="mCRPC", age=67, therapies=[TherapyExposure(therapy="enzalutamide", mention="zorblax-unique")]
    )
    logger.info("ctx=%s q=%s", ctx, ls.PatientText("free text zorblax-two"))
    logger.info(ctx)
    out = stream.getvalue()
    assert "zorblax" not in out
    assert "<PatientContext" in out


def test_tracebacks_are_redacted(captured):
    logger, stream = captured
    ls.install_redaction()
    ls.register_patient_text(QUESTION)
    try:
        raise ValueError(f"could not parse {QUESTION}")
    except ValueError:
        logger.exception("ask failed")
    out = stream.getvalue()
    assert "Traceback" in out and "ValueError" in out
    assert "carries a BRCA2" not in out


def test_loggers_and_handlers_created_after_install_are_covered(captured):
    """Third-party libraries (uvicorn, httpx, LangChain) set up their loggers late; the record factory covers them."""
    _, _ = captured
    ls.install_redaction()
    ls.register_patient_text(PATIENT)
    stream = io.StringIO()
    late = logging.getLogger("tests.reliability.late_library")
    late.handlers[:] = [logging.StreamHandler(stream)]
    late.propagate = False
    late.setLevel(logging.INFO)
    try:
        late.info("sending %s", {"messages": [{"role": "user", "content": PATIENT}]})
    finally:
        late.handlers.clear()
    assert "sulfonamides" not in stream.getvalue() and ls.REDACTED in stream.getvalue()


def test_filter_class_works_on_a_handler_without_the_global_install(captured):
    logger, stream = captured
    logger.handlers[0].addFilter(ls.PatientTextFilter())
    ls.register_patient_text(PATIENT)
    logger.info("box=%s", PATIENT)
    assert "Ashford" not in stream.getvalue()


def test_registry_is_bounded_in_a_long_running_server(captured):
    ls.install_redaction()
    for i in range(3 * ls._MAX_REGISTERED):
        ls.register_patient_text(f"patient number {i} has distinct words w{i}a w{i}b")
    assert len(ls._registry._texts) <= ls._MAX_REGISTERED
    # the newest are still redacted
    assert ls.REDACTED in ls.redact_text(f"x words w{3 * ls._MAX_REGISTERED - 1}a w{3 * ls._MAX_REGISTERED - 1}b y")


def test_history_turns_are_registered(captured):
    logger, stream = captured
    ls.install_redaction()
    history = [{"role": "user", "content": "he also had docetaxel for six cycles"}, {"role": "assistant", "content": None}]
    ls.register_patient_text(None, history)
    logger.info("turn 1: he also had docetaxel for six cycles")
    assert "docetaxel for six" not in stream.getvalue()


def test_malformed_log_call_does_not_crash_or_leak(captured):
    logger, stream = captured
    ls.install_redaction()
    ls.register_patient_text(PATIENT)
    logger.info("two args %s %s", PATIENT)  # wrong arity: logging would print a traceback to stderr
    out = stream.getvalue()
    assert "Ashford" not in out and "two args" in out
