"""The app's wiring: named API endpoints, one concurrency group for answering, analytics off, and
`launch(settings)` serving on the configured host/port."""

from __future__ import annotations

import os
import urllib.request

import pytest

from assistant.settings import load_settings
from assistant.web.app import CONCURRENCY, build_app, launch

from .conftest import FakeAssistant, free_port

ENDPOINTS = {"ask", "follow_up_1", "follow_up_2", "follow_up_3", "correct_context", "set_audience", "new_chat",
             "export_markdown", "export_audit"}
ANSWERING = {"ask", "follow_up_1", "follow_up_2", "follow_up_3", "correct_context", "set_audience"}


@pytest.mark.parametrize("backend", ["local", "openai", "none"])
def test_endpoints_are_named_and_answering_shares_one_bounded_queue(backend):
    built: list[str] = []
    demo = build_app(lambda s: built.append("x") or FakeAssistant(), load_settings(llm=backend))
    public = {fn.api_name: fn for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert set(public) == ENDPOINTS
    for name in ANSWERING:
        fn = public[name]
        assert fn.concurrency_id == "answer" and fn.concurrency_limit == CONCURRENCY[backend], name
    # Decoding is serialised by the pipeline (tests/pipeline: one answer decoded at a time); the UI only
    # bounds how many sessions are in flight, so plans are not stuck behind another session's generation.
    assert 1 < CONCURRENCY["local"] <= CONCURRENCY["none"]
    assert built == [], "the assistant (index, model) is built on first use, not with the page"
    assert demo.analytics_enabled is False


@pytest.mark.integration
def test_launch_serves_on_the_configured_loopback_port():
    settings = load_settings("rules-only", host="127.0.0.1", port=free_port())
    demo = launch(settings, assistant_factory=lambda s: FakeAssistant(), block=False)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/", timeout=30) as resp:
            page = resp.read().decode("utf-8", "replace")
        assert resp.status == 200 and "GuideRail" in page
        assert demo.server_name == "127.0.0.1" and demo.share is False
        assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"
    finally:
        demo.close()


def test_default_settings_bind_loopback_only():
    assert load_settings().host == "127.0.0.1"
