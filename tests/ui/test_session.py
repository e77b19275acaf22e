"""Unit tests of the UI handlers: one event in → one pipeline call → views out, with a fake assistant."""

from __future__ import annotations

import itertools
import json

from assistant.errors import LLMError
from assistant.models import Biomarker, PatientContext
from assistant.web import render as R
from assistant.web import session as S

QUESTION = "mCRPC with a CHEK2 mutation, PSA rising on Pluvicto after docetaxel and abiraterone: options?"


def ask(fake, session, question=QUESTION, **kw):
    return list(S.stream_answer(fake, session, question, configured_backend="none", **kw))


def test_stream_shows_progress_then_plan_then_text_then_final(fake_assistant):
    session = S.ChatSession()
    views = ask(fake_assistant, session)
    assert len(fake_assistant.calls) == 1, "one event → one pipeline call"
    assert views[0].chat[-1]["content"] == S.WORKING and views[0].question_box == ""
    assert views[1].chat[-1]["content"] == S.WRITING
    assert "CABAZITAXEL" in views[1].rules.upper() and "CHEK2" in views[1].context, "plan panels before any text"
    partial = [v.chat[-1]["content"] for v in views[2:-1]]
    assert partial and all(len(a) <= len(b) for a, b in itertools.pairwise(partial)), "text grows"
    final = views[-1]
    assert f"#{R.ANCHOR_PREFIX}1" in final.chat[-1]["content"]
    assert f'id="{R.ANCHOR_PREFIX}1"' in final.sources and "CHEK2" in final.context
    assert all(final.follow_ups) and final.warning is None
    assert len(session.turns) == 1 and session.turns[0].answer is not None


def test_empty_or_too_long_question_warns_without_calling_the_pipeline(fake_assistant):
    session = S.ChatSession()
    for q in ("", "   ", None, "x" * 501):
        views = ask(fake_assistant, session, q, max_chars=500)
        assert len(views) == 1 and views[0].warning
    assert fake_assistant.calls == [] and session.turns == []


def test_guiderail_error_becomes_an_error_and_leaves_the_session_unchanged(fake_assistant):
    """A store/model failure is an error (raised to API clients by the app), not a warning toast."""
    session = S.ChatSession()
    ask(fake_assistant, session)
    fake_assistant.fail_with = LLMError("model server unreachable")
    views = ask(fake_assistant, session, "another question")
    assert views[-1].error == "model server unreachable" and views[-1].warning is None
    assert len(session.turns) == 1 and len(views[-1].chat) == 2, "the failed question is not kept"


def test_unexpected_error_shows_no_traceback(fake_assistant):
    fake_assistant.fail_with = KeyError("secret internals")
    views = ask(fake_assistant, S.ChatSession())
    assert "server log" in views[-1].error and "secret internals" not in views[-1].error


def test_error_event_from_the_pipeline_is_shown(fake_assistant):
    class Failing:
        def ask_stream(self, question, **kw):
            yield S.AnswerEvent(kind="error", text="index missing <b>")

    views = list(S.stream_answer(Failing(), S.ChatSession(), "q", configured_backend="none"))
    assert views[-1].error == "index missing <b>" and "<b>" not in views[-1].chat[-1]["content"]


def test_follow_up_passes_history_and_accumulated_context(fake_assistant):
    session = S.ChatSession()
    ask(fake_assistant, session)
    ask(fake_assistant, session, "What monitoring does cabazitaxel need?", context=session.current_context())
    call = fake_assistant.calls[-1]
    assert call["context"].disease_state == "mCRPC" and call["context"].biomarkers[0].name == "CHEK2"
    assert call["history"] is None, "the carried context already holds the earlier turns' facts"
    assert len(session.visible()) == 2
    ask(fake_assistant, session, "Other patient entirely", context=None)
    assert [m["role"] for m in fake_assistant.calls[-1]["history"]] == ["user", "assistant"] * 2
    assert QUESTION in fake_assistant.calls[-1]["history"][0]["content"]


def test_correction_recomputes_the_last_answer_with_the_new_facts(fake_assistant):
    session = S.ChatSession()
    before = ask(fake_assistant, session)[-1]
    assert "cabazitaxel" in before.chat[-1]["content"]
    edited = json.loads(before.context_json)
    edited["biomarkers"] = [Biomarker(name="BRCA2", origin="germline").model_dump(mode="json")]
    views = list(S.recompute(fake_assistant, session, json.dumps(edited), "ECOG 1", configured_backend="none"))
    call = fake_assistant.calls[-1]
    assert call["question"] == QUESTION and call["history"] is None, "recomputes the same question"
    assert call["context"].biomarkers[0].name == "BRCA2" and call["patient"] == "ECOG 1"
    after = views[-1]
    assert "olaparib" in after.chat[-1]["content"], "the answer changed with the corrected fact"
    assert "Recomputed after a correction" in after.chat[-1]["content"]
    assert len(after.chat) == 2, "the recomputed answer replaces the old one on screen"
    assert [t.superseded for t in session.turns] == [True, False], "the old answer is kept for the audit"
    assert "biomarkers" in session.corrections[0] and "ECOG 1" in session.corrections[0]
    assert "Corrected by the clinician" in after.context and views[-1].question_box is None


def test_invalid_correction_is_explained_and_changes_nothing(fake_assistant):
    session = S.ChatSession()
    ask(fake_assistant, session)
    for bad, words in (("{not json", "not valid JSON"), ("[1]", "JSON object"), ('{"ecog": "high"}', "ecog"),
                       ('{"unknown_field": 1}', "unknown_field")):
        views = list(S.recompute(fake_assistant, session, bad, "", configured_backend="none"))
        assert words in views[-1].warning, (bad, views[-1].warning)
    assert len(fake_assistant.calls) == 1 and session.corrections == []


def test_correction_before_any_question_asks_for_one(fake_assistant):
    views = list(S.recompute(fake_assistant, S.ChatSession(), "{}", "BRCA2", configured_backend="none"))
    assert "Ask a question first" in views[-1].warning and not fake_assistant.calls


def test_failed_recompute_does_not_record_the_correction(fake_assistant):
    session = S.ChatSession()
    ask(fake_assistant, session)
    fake_assistant.fail_with = LLMError("down")
    list(S.recompute(fake_assistant, session, "{}", "BRCA2", configured_backend="none"))
    assert session.corrections == [] and len(session.visible()) == 1 and not session.turns[0].superseded


def test_audience_toggle_rewords_the_last_answer(fake_assistant):
    session = S.ChatSession()
    ask(fake_assistant, session)
    views = list(S.reword(fake_assistant, session, "patient", configured_backend="none"))
    assert fake_assistant.calls[-1]["audience"] == "patient"
    assert "In short" in views[-1].chat[-1]["content"] and len(views[-1].chat) == 2
    list(S.reword(fake_assistant, session, "patient", configured_backend="none"))
    assert len(fake_assistant.calls) == 2, "same audience again: no pipeline call"
    list(S.reword(fake_assistant, S.ChatSession(), "patient", configured_backend="none"))
    assert len(fake_assistant.calls) == 2, "nothing to reword yet"


def test_two_sessions_never_share_facts(fake_assistant):
    a, b = S.ChatSession(), S.ChatSession()
    ask(fake_assistant, a, "mCRPC with BRCA2 after docetaxel")
    ask(fake_assistant, b, "mCRPC with CHEK2 after abiraterone")
    va, vb = S.view_of(a, "none"), S.view_of(b, "none")
    assert "BRCA2" in va.context and "CHEK2" not in va.context
    assert "CHEK2" in vb.context and "BRCA2" not in vb.context
    assert fake_assistant.calls[1]["history"] == [] and a.session_id != b.session_id


def test_exports_write_markdown_and_audit_json(fake_assistant, tmp_path):
    session = S.ChatSession()
    ask(fake_assistant, session)
    list(S.recompute(fake_assistant, session, "{}", "BRCA2 germline", configured_backend="none"))
    md = S.export_markdown(session, tmp_path).read_text()
    assert QUESTION in md and "olaparib" in md and "Recomputed after a correction" in md
    rec = json.loads(S.export_audit(session, tmp_path, app_version="0.1", settings_summary={"llm": "none"}).read_text())
    assert rec["session_id"] == session.session_id and len(rec["turns"]) == 2
    assert rec["turns"][0]["superseded"] and not rec["turns"][1]["superseded"]
    assert rec["turns"][1]["passages"][0]["chunk_id"] == "aua-apc::c1" and rec["corrections"]
    assert rec["turns"][1]["corpus_version"] == "test-corpus-1"


def test_export_of_an_empty_session_is_refused(tmp_path):
    import pytest

    from assistant.errors import GuideRailError

    with pytest.raises(GuideRailError, match="Nothing to export"):
        S.export_markdown(S.ChatSession(), tmp_path)
    with pytest.raises(GuideRailError, match="Nothing to export"):
        S.export_audit(S.ChatSession(), tmp_path, app_version="x", settings_summary={})


def test_describe_correction_names_changed_fields():
    old = PatientContext(ecog=2, disease_state="mCRPC")
    new = PatientContext(ecog=1, disease_state="mCRPC")
    assert S.describe_correction(old, new, "") == "edited ecog"
    assert S.describe_correction(old, old, "") == "recomputed with the same facts"
    assert "added “no visceral disease”" in S.describe_correction(None, PatientContext(), "no visceral disease")


def test_unexpected_error_log_has_the_code_path_but_not_the_patient_text(fake_assistant, caplog):
    fake_assistant.fail_with = ValueError("patient John Doe, 71, BRCA2")
    with caplog.at_level("ERROR", logger="guiderail.webapp"):
        ask(fake_assistant, S.ChatSession())
    logged = caplog.text
    assert "ValueError" in logged and "ask_stream" in logged
    assert "John Doe" not in logged


def test_correction_is_final_and_not_re_read_from_the_question(fake_assistant):
    session = S.ChatSession()
    ask(fake_assistant, session)
    ctx = session.current_context()
    edited = ctx.model_copy(update={"biomarkers": [b.model_copy(update={"result": "vus"}) for b in ctx.biomarkers]})
    list(S.recompute(fake_assistant, session, edited.model_dump_json(), "", configured_backend="none"))
    call = fake_assistant.calls[-1]
    assert call["context_is_final"] is True
    assert all(b.result == "vus" for b in call["context"].biomarkers)
    assert all(b.result == "vus" for b in session.current_context().biomarkers), "the correction must stick"
