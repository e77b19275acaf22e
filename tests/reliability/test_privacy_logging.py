"""Privacy: patient text is redacted from every log record unless settings.log_patient_text is set."""

from __future__ import annotations

import io
import logging
from pathlib import Path

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


# ---------------------------------------------------------------- the product, end to end
SECRET_NAME = "Quigglesworth"
SECRET_PLACE = "Ashfordshire"


@pytest.mark.integration
@pytest.mark.slow
def test_verbose_cli_ask_does_not_log_patient_text(tmp_path, helpers, real_index):
    """`guiderail -v ask` at DEBUG, through a (stub) model server: stderr carries no patient words."""
    server = helpers.servers.StubLLMProcess().start()
    try:
        env = helpers.child_env(
            GUIDERAIL_STORE_DIR=str(real_index), GUIDERAIL_OPENAI_BASE_URL=server.base_url("ok")
        )
        import subprocess

        done = subprocess.run(
            [helpers.PY, "-m", "assistant.cli", "-v", "ask",
             f"Mr {SECRET_NAME}, 71, mCRPC progressed on enzalutamide, BRCA2 pathogenic. Options?",
             "--patient", f"lives in {SECRET_PLACE}, creatinine clearance 38", "--llm", "openai"],
            capture_output=True, text=True, timeout=300, env=env, cwd=helpers.ROOT,
        )
    finally:
        server.stop()
    assert "DEBUG" in done.stderr, "the run must actually log at DEBUG for this test to mean anything"
    assert SECRET_NAME not in done.stderr and SECRET_PLACE not in done.stderr, [
        ln for ln in done.stderr.splitlines() if SECRET_NAME in ln or SECRET_PLACE in ln
    ][:5]


def _files_mentioning(roots: list, needle: str) -> list[str]:
    hits = []
    for root in roots:
        for path in root.rglob("*") if root.exists() else []:
            if path.is_file():
                try:
                    if needle in path.read_text(encoding="utf-8", errors="ignore"):
                        hits.append(str(path))
                except OSError:
                    pass
    return hits


@pytest.mark.integration
def test_audit_record_is_written_only_on_request(tmp_path, monkeypatch, helpers, rules_assistant):
    """Through the real Gradio app and API: asking writes no file with the patient's words; the audit
    export writes exactly one, when asked for."""
    import tempfile

    from gradio_client import Client

    from assistant.settings import load_settings
    from assistant.web.app import build_app

    gradio_tmp = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(gradio_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    settings = load_settings(llm="none", data_dir=tmp_path / "data", port=helpers.free_port())
    demo = build_app(lambda s: rules_assistant, settings)
    demo.launch(server_name="127.0.0.1", server_port=settings.port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{settings.port}", verbose=False)
        client.predict(f"Mr {SECRET_NAME}, mCRPC after enzalutamide, BRCA2 pathogenic: options?", "clinician", api_name="/ask")
        roots = [tmp_path, helpers.ROOT / ".data", helpers.ROOT / "runs"]
        assert _files_mentioning(roots, SECRET_NAME) == [], "patient text was written to disk without a request"
        path = client.predict(api_name="/export_audit")
        written = _files_mentioning([tmp_path], SECRET_NAME)
        # the export itself, plus the copy Gradio serves for download (deleted by the app's cache timer)
        assert written and all(Path(w).name.startswith("guiderail-audit-") for w in written), written
        assert path and str(path).endswith(".json")
    finally:
        demo.close()


def test_records_without_patient_text_keep_their_args(captured):
    """Formatters that unpack record.args (uvicorn's access log) must keep working."""
    ls.install_redaction()
    ls.register_patient_text(QUESTION)
    record = logging.getLogger("tests.reliability.privacy").makeRecord(
        "x", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", "/config", "1.1", 200), None
    )
    made = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                                         ("127.0.0.1:5", "GET", "/config", "1.1", 200), None)
    assert made.args == ("127.0.0.1:5", "GET", "/config", "1.1", 200)
    assert record.getMessage() == made.getMessage()
