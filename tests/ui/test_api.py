"""The app served on 127.0.0.1 and driven headless through its Gradio API (gradio_client): the same
flow a clinician follows in the browser, and two sessions at once that must never share facts."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from gradio_client import Client

from assistant.models import AnswerEvent
from assistant.web import render as R

from .conftest import FakeAssistant

pytestmark = pytest.mark.integration

QUESTION = ("mCRPC with a CHEK2 mutation, PSA rising during Pluvicto after docetaxel, Zytiga (abiraterone) and "
            "orchiectomy: what are the options?")
OUT = ("chat", "sources", "rules", "context", "context_json", "status", "follow_ups", "question")


def as_dict(result) -> dict:
    """Outputs by name; /correct_context has one more (the "add a fact" box, emptied once applied)."""
    named = dict(zip(OUT, result[: len(OUT)], strict=True))
    if len(result) > len(OUT):
        named["added_box"] = result[len(OUT)]
    return named


def last_text(chat) -> str:
    content = chat[-1]["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def test_full_flow_through_the_api(served_app, tmp_path):
    fake = FakeAssistant()
    _, url = served_app(lambda settings: fake)
    client = Client(url, verbose=False, download_files=str(tmp_path))

    r = as_dict(client.predict(QUESTION, "clinician", api_name="/ask"))
    assert f"#{R.ANCHOR_PREFIX}1" in last_text(r["chat"]), "cited answer with citation links"
    assert f'id="{R.ANCHOR_PREFIX}1"' in r["sources"] and "gr-finding" in r["rules"]
    assert "CHEK2" in r["context"] and "rules-only" in r["status"]
    assert len([q for q in r["follow_ups"] if q]) == 3

    suggested = r["follow_ups"]
    r = as_dict(client.predict("clinician", api_name="/follow_up_1"))
    assert fake.calls[-1]["question"] == suggested[0], "the follow-up asks the first suggestion"
    assert len(r["chat"]) == 4 and "CHEK2" in r["context"], "follow-up carries the conversation's facts"
    assert fake.calls[-1]["context"].biomarkers[0].name == "CHEK2"

    before = last_text(r["chat"])
    assert "olaparib" not in before
    r = as_dict(client.predict(r["context_json"], "germline BRCA2 pathogenic variant", "clinician",
                               api_name="/correct_context"))
    assert "olaparib" in last_text(r["chat"]), "correcting a fact recomputes the answer"
    assert "BRCA2" in r["context"] and fake.calls[-1]["patient"] == "germline BRCA2 pathogenic variant"
    assert r["added_box"] == "", "an applied correction empties the box"

    md = Path(client.predict(api_name="/export_markdown")).read_text()
    assert QUESTION in md and "olaparib" in md
    audit = json.loads(Path(client.predict(api_name="/export_audit")).read_text())
    assert next(t["question"] for t in audit["turns"]) == QUESTION
    assert audit["turns"][-1]["passages"][0]["chunk_id"] and audit["settings"]["llm"] == "none"
    assert "openai_api_key" not in json.dumps(audit)

    r = client.predict(api_name="/new_chat")
    assert r[0] == [] and "appear here" in r[3]
    r = as_dict(client.predict("What about radium-223?", "clinician", api_name="/ask"))
    assert fake.calls[-1]["history"] == [] and fake.calls[-1]["context"] is None, "new chat forgets the context"


def test_assistant_that_cannot_start_gives_an_error_event_not_a_traceback(served_app, store_error, tmp_path):
    def broken(settings):
        raise store_error

    _, url = served_app(broken)
    client = Client(url, verbose=False, download_files=str(tmp_path))
    with pytest.raises(Exception, match="index missing") as info:
        client.predict(QUESTION, "clinician", api_name="/ask")
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize("where", ["store", "event", "unexpected"])
def test_a_failure_that_stops_an_answer_reaches_the_api_client_as_an_error(served_app, store_error, tmp_path, where):
    """Issue 14: the page stays as it was, but the client is told; it never gets the previous page as if
    it were the answer."""
    fake = FakeAssistant()
    _, url = served_app(lambda settings: fake)
    client = Client(url, verbose=False, download_files=str(tmp_path))
    first = as_dict(client.predict(QUESTION, "clinician", api_name="/ask"))
    assert len(first["chat"]) == 2
    if where == "store":
        fake.fail_with = store_error
    elif where == "unexpected":
        fake.fail_with = KeyError("secret internals")
    else:
        fake.ask_stream = lambda *a, **k: iter([AnswerEvent(kind="error", text="model server unreachable")])
    message = {"store": "index missing", "event": "model server unreachable", "unexpected": "server log"}[where]
    with pytest.raises(Exception, match=message) as info:
        client.predict("And what about radium-223?", "clinician", api_name="/ask")
    assert "secret internals" not in str(info.value) and "Traceback" not in str(info.value)
    fake.fail_with = None
    if where == "event":
        del fake.ask_stream
    again = as_dict(client.predict("clinician", api_name="/follow_up_1"))
    assert len(again["chat"]) == 4, "the failed question left the session as it was"


def test_two_sessions_at_once_never_share_context(served_app, tmp_path):
    fake = FakeAssistant()
    _, url = served_app(lambda settings: fake)
    patients = {"a": ("mCRPC with BRCA2, after docetaxel", "BRCA2", "CHEK2"),
                "b": ("mCRPC with CHEK2, after abiraterone", "CHEK2", "BRCA2")}
    results: dict[str, list[dict]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(patients))

    def session(name: str) -> None:
        try:
            client = Client(url, verbose=False, download_files=str(tmp_path / name))
            question, _, _ = patients[name]
            barrier.wait(timeout=30)
            out = [as_dict(client.predict(question, "clinician", api_name="/ask"))]
            out.append(as_dict(client.predict("clinician", api_name="/follow_up_2")))
            facts = out[-1]["context_json"]
            out.append(as_dict(client.predict(facts, "ECOG 1", "clinician", api_name="/correct_context")))
            results[name] = out
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(n,)) for n in patients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for name, (question, own, other) in patients.items():
        for step in results[name]:
            assert own in step["context"] and other not in step["context"], (name, step["context"])
            assert other not in json.dumps(step["chat"])
        assert question in json.dumps(results[name][-1]["chat"])
    for call in fake.calls:
        seen = json.dumps(call["history"]) + (call["context"].model_dump_json() if call["context"] else "")
        assert not ("BRCA2" in seen and "CHEK2" in seen), "a pipeline call saw both sessions' facts"
