"""Output safety: HTML/JS planted in guideline passages, metadata, model answers or questions renders inert.

Every renderer's output is parsed as a browser would (HTML panels directly; Markdown first rendered by
markdown-it with raw HTML *allowed*, the worst case) and must contain no script-capable construct:
no dangerous element, no event-handler attribute, no javascript:/data:/vbscript: URL.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from assistant.models import (
    Answer,
    Citation,
    FactChange,
    Finding,
    PatientContext,
    TherapyExposure,
    VerificationReport,
)
from assistant.web import render as wr

PAYLOADS = [
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)></svg>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pixel](https://evil.example/track.png)",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "<iframe src='https://evil.example'></iframe>",
    "<style>body{display:none}</style>",
    "<!-- --><script>alert(1)</script>",
    "<details open ontoggle=alert(1)>",
    "<math><mi xlink:href='javascript:alert(1)'>x</mi></math>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "[ref]: javascript:alert(1)\n\n[x][ref]",
    "<javascript:alert(1)>",
    "{{7*7}} ${alert(1)}",
]

DANGEROUS_TAGS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "style", "link", "meta", "base", "form",
    "input", "button", "textarea", "svg", "math", "img", "video", "audio", "source", "template", "applet",
}
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "background", "poster", "srcdoc", "data"}


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DANGEROUS_TAGS:
            self.problems.append(f"<{tag}> element")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.problems.append(f"event handler {name}= on <{tag}>")
            if name in URL_ATTRS:
                compact = re.sub(r"[\x00-\x20]", "", value).lower()
                if compact.startswith(("javascript:", "data:", "vbscript:")):
                    self.problems.append(f"{name}={value!r} on <{tag}>")
            if name == "style" and re.search(r"url\(|expression\(", value, re.I):
                self.problems.append(f"style with url()/expression() on <{tag}>")

    handle_startendtag = handle_starttag


def assert_inert_html(html: str, where: str) -> None:
    inspector = _Inspector()
    inspector.feed(html)
    inspector.close()
    assert not inspector.problems, f"{where}: script-capable output {inspector.problems}\n{html[:600]}"


_MD = MarkdownIt("commonmark", {"html": True})


def assert_inert_markdown(md: str, where: str) -> None:
    assert_inert_html(_MD.render(md), where)


def _citation(payload: str, n: int = 1) -> Citation:
    return Citation(
        number=n,
        doc_id="evil-doc",
        title=f"Guideline {payload}",
        organisation=f"Org {payload}",
        year="2024",
        section=f"Section {payload}",
        chunk_id=f"chunk-{n}",
        passage=f"Offer monitoring every three months. {payload} Review outcomes.",
        url="javascript:alert(1)" if n % 2 else "https://example.org/ok",
        strength=f"Strong {payload}",
        rec_id=f"REC-{n}",
        last_reviewed="2026-01-01",
    )


def _answer(payload: str) -> Answer:
    c = _citation(payload)
    return Answer(
        question=f"What now? {payload}",
        answer_markdown=f"## Bottom line\n- Offer monitoring every three months [1]. {payload}\n",
        citations=[c],
        findings=[Finding(rule_id="R-1", kind="warn", title=f"Warn {payload}", reason=f"Because {payload}", citations=[1])],
        banner=f"Fallback {payload}",
        backend="openai",
        model=f"model {payload}",
        verification=VerificationReport(mode="composer-fallback"),
    )


@pytest.mark.parametrize("payload", PAYLOADS)
def test_answer_markdown_from_the_model_is_inert(payload):
    md = wr.answer_markdown(f"## Bottom line\n- Offer monitoring [1]. {payload}\n- More [2].", [_citation("x")])
    assert_inert_markdown(md, "answer_markdown")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_question_echoed_in_the_chat_is_inert(payload):
    assert_inert_markdown(wr.user_markdown(f"Patient question {payload}"), "user_markdown")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sources_panel_with_planted_passage_and_metadata_is_inert(payload):
    cites = [_citation(payload, 1), _citation(payload, 2)]
    html = wr.sources_html(cites, answer_md=f"Offer monitoring every three months [1][2]. {payload}")
    assert_inert_html(html, "sources_html")
    assert "Offer monitoring every three months." in re.sub(r"<[^>]+>", "", html), "passage text must stay visible"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_rule_panel_status_and_context_panels_are_inert(payload):
    answer = _answer(payload)
    assert_inert_html(wr.findings_html(answer.findings), "findings_html")
    assert_inert_html(wr.status_html("openai", answer), "status_html")
    ctx = PatientContext(
        disease_state=f"mCRPC {payload}",
        therapies=[TherapyExposure(therapy=f"enzalutamide{payload}", mention=payload)],
        notes=[f"unparsed: {payload}"],
        changes=[FactChange(field="state", old=payload, new="mCRPC", turn=2)],
        symptoms=[payload],
    )
    assert_inert_html(wr.context_html(ctx, corrections=[payload]), "context_html")


@pytest.mark.parametrize("payload", PAYLOADS[:8])
def test_exported_conversation_is_inert_when_opened_in_a_markdown_viewer(payload):
    """The export is a file a clinician opens elsewhere (a Markdown viewer renders raw HTML)."""
    answer = _answer(payload)
    md = wr.conversation_markdown([{"question": answer.question, "patient": payload, "answer": answer}], "2026-11-29")
    assert_inert_markdown(md, "conversation_markdown")


def test_the_inspector_itself_catches_each_payload_when_unescaped():
    """Control: the raw payloads are caught (else the tests above prove nothing)."""
    caught = 0
    for p in PAYLOADS:
        inspector = _Inspector()
        inspector.feed(_MD.render(f"x {p}"))
        caught += bool(inspector.problems)
    assert caught >= 12, f"only {caught} payloads detected raw; the inspector is too weak"
