"""The Gradio app: layout and wiring only. Handlers live in ``session`` and renderers in
``render``; each event makes at most one pipeline call.

- Per-session state is a ``ChatSession`` in ``gr.State`` (created on the first event of a session).
- The assistant is built once, lazily, by the factory given (``build_assistant`` in production) and
  shared: it holds the index and the model, not conversation state.
- Answering events share one queue concurrency group whose limit depends on the backend. The local
  model decodes one answer at a time, but the pipeline serialises decoding itself (its LLM lock), so
  several sessions may be in flight: each gets its rule-checked plan and sources at once instead of
  waiting behind another session's whole generation (measured: plan after ~175 s with a limit of 1).
- Bad input becomes a ``gr.Warning`` toast; a store or model failure that stops an answer becomes a
  ``gr.Error`` after the page is shown, so API clients get an error event too. Nothing shows a
  traceback (``show_error=False``).
- Exports (patient records) live in a private per-process folder that is also Gradio's cache for this
  app: owner-only, per session, deleted at session end, at server stop and at the next start after a
  kill (``session.ExportVault``).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from assistant.errors import GuideRailError
from assistant.settings import Settings
from assistant.web import render as R
from assistant.web import session as S

log = logging.getLogger("guiderail.webapp")

AssistantFactory = Callable[[Settings], S.AssistantLike]

# Events in flight per backend. Local decoding is serialised inside the pipeline, not here (see above).
CONCURRENCY = {"local": 4, "openai": 4, "none": 8}
QUEUE_MAX = 200
"""Requests waiting beyond this are refused with a clear "queue full" message instead of piling up."""
SESSION_TTL_S = 8 * 3600
"""A session's conversation and patient facts are dropped this long after its last change (privacy)."""
EXPORT_TTL_S = 3600
"""Exported files (patient data) are deleted after this long even while their session lasts."""

_CSS = """
#gr-disclaimer .gr-disclaimer{background:#f5f7fb;border-left:4px solid #4a6fa5;padding:6px 10px;font-size:.9em;color:#1f2d3d}
.gr-status{display:flex;flex-wrap:wrap;gap:10px;align-items:center;font-size:.9em}
.gr-backend{background:#eef3ee;border:1px solid #9bb59b;border-radius:10px;padding:1px 9px;color:#1d3b1d}
.gr-mode{color:#555}
.gr-banner{flex-basis:100%;background:#fff4e0;border:1px solid #e0a030;border-radius:6px;padding:6px 10px;color:#5a3b00;font-weight:600}
.gr-abstain{flex-basis:100%;background:#f3f0ff;border:1px solid #9a8ad0;border-radius:6px;padding:6px 10px}
.gr-empty{color:#777;font-style:italic;font-size:.9em}
.gr-sources{max-height:640px;overflow-y:auto}
.gr-src{border:1px solid #d8dde6;border-radius:6px;padding:6px 9px;margin:0 0 8px 0;background:#fff;color:#1f2d3d}
.gr-src summary{cursor:pointer}
.gr-src.gr-flash{outline:3px solid #f0b429;transition:outline .2s}
.gr-num{font-weight:700;color:#2b5797}
.gr-meta,.gr-chunk,.gr-fmeta{font-size:.82em;color:#555;margin-top:2px}
.gr-passage{margin:6px 0;padding:4px 8px;border-left:3px solid #c9d3e3;font-size:.88em;white-space:pre-wrap}
.gr-passage mark{background:#fff1a8;color:inherit}
.gr-badge{font-size:.75em;border-radius:8px;padding:0 6px;margin-left:4px;font-weight:600}
.gr-unverified{background:#fde2e1;color:#8a1c1c;border:1px solid #e6a1a1}
.gr-outdated{background:#fff0d6;color:#7a4b00;border:1px solid #e3b766}
.gr-flagged{background:#ffe3f1;color:#7a0f45;border:1px solid #d98ab4}
.gr-flagnote{font-size:.82em;color:#7a0f45;margin-top:2px}
.gr-rules-list{max-height:560px;overflow-y:auto;padding-right:4px}
.gr-group>summary{cursor:pointer;font-weight:700;font-size:.92em;margin:4px 0}
.gr-count{color:#666;font-weight:400}
#gr-rules ul.gr-findings{list-style:none !important;padding:0 !important;margin:0 !important}
#gr-rules li.gr-finding{list-style:none !important;margin-left:0 !important}
.gr-finding{border-radius:6px;padding:5px 8px;margin:0 0 6px 0;font-size:.9em;color:#1f2d3d}
.gr-kind{display:inline-block;min-width:92px;font-weight:700;text-transform:uppercase;font-size:.78em}
.gr-recommend{background:#e9f6ec;border-left:4px solid #2e8b57}
.gr-consider{background:#eaf2fb;border-left:4px solid #3b78c2}
.gr-exclude{background:#fdecec;border-left:4px solid #c0392b}
.gr-warn{background:#fff6e0;border-left:4px solid #e0a030}
.gr-ask{background:#f3f0ff;border-left:4px solid #7d6bc4}
.gr-nocite{color:#999;font-size:.85em}
a.gr-cite{text-decoration:none;font-weight:600}
.gr-context{border-collapse:collapse;font-size:.9em;width:100%}
#gr-context table.gr-context th,#gr-context table.gr-context td{border:none !important;border-bottom:1px solid #e6e9ef !important;padding:3px 6px !important}
.gr-context th{text-align:left;padding:2px 8px 2px 0;color:#555;font-weight:600;white-space:nowrap;vertical-align:top}
.gr-context td{padding:2px 0}
.gr-hint{font-size:.85em;color:#555}
.gr-fixes{font-size:.85em;margin-top:6px;color:#5a3b00}
"""

# Citation links ([n] in the answer and in the rule panel) open and scroll to the source card. One
# document-level listener (installed once) so links rendered later by the Chatbot are covered too.
_CLICK_JS = f"""
if (!window.__guiderailCites) {{
  window.__guiderailCites = true;
  document.addEventListener('click', function (ev) {{
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href*="#{R.ANCHOR_PREFIX}"]') : null;
    if (!a) return;
    const id = a.getAttribute('href').split('#').pop();
    const card = document.getElementById(id);
    if (!card) return;
    ev.preventDefault();
    ev.stopPropagation();
    card.open = true;
    card.scrollIntoView({{behavior: 'smooth', block: 'center'}});
    card.classList.add('gr-flash');
    setTimeout(function () {{ card.classList.remove('gr-flash'); }}, 1600);
  }}, true);
}}
"""


# After an answer, show its beginning (the bottom line), not the end of a long answer.
_SHOW_ANSWER_START_JS = """
() => {
  const users = document.querySelectorAll('#gr-chat [data-testid="user"]');
  const last = users[users.length - 1];
  if (last) last.scrollIntoView({block: 'start'});
  window.scrollTo({top: 0});
}
"""


class _AssistantHolder:
    """Builds the shared assistant on first use (index + model load are slow; the page must not wait)."""

    def __init__(self, factory: AssistantFactory, settings: Settings) -> None:
        self._factory = factory
        self._settings = settings
        self._lock = threading.Lock()
        self._assistant: S.AssistantLike | None = None

    def get(self) -> S.AssistantLike:
        with self._lock:
            if self._assistant is None:
                self._assistant = self._factory(self._settings)
            return self._assistant


def _settings_summary(settings: Settings) -> dict[str, Any]:
    """What the audit needs to reproduce an answer; no secrets (the API key is never exported)."""
    return {
        "llm": settings.llm,
        "openai_base_url": settings.openai_base_url if settings.llm == "openai" else None,
        "openai_model": settings.openai_model if settings.llm == "openai" else None,
        "model_path": str(settings.model_path) if settings.model_path else None,
        "embedding_model": settings.embedding_model,
        "collection": settings.collection,
        "index": settings.chroma_url or str(settings.index_dir),
        "top_k": settings.top_k,
        "min_relevance": settings.min_relevance,
    }


def _export_base() -> Path | None:
    """Where the private folder goes: the operator's GRADIO_TEMP_DIR if set (never one of our own
    folders, when a second app is built in the same process), else the system temp dir."""
    configured = os.environ.get("GRADIO_TEMP_DIR")
    if not configured:
        return None
    path = Path(configured)
    return path.parent if path.name.startswith(S.APP_DIR_PREFIX) else path


def _private_cache(vault: S.ExportVault) -> None:
    """Make the vault Gradio's cache for this app: files returned by the export handlers are already
    inside it, so Gradio serves them in place instead of copying them to a shared cache folder."""
    os.environ["GRADIO_TEMP_DIR"] = str(vault.root)


_STOP_SIGNALS = ("SIGTERM", "SIGHUP")


def _delete_on_signals(vault: S.ExportVault) -> None:
    """SIGTERM/SIGHUP skip atexit: delete the exports, then let the previous handler (or the default
    action) end the process as it would have."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in _STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        previous = signal.getsignal(signum)

        def handler(sig: int, frame: Any, _previous: Any = previous) -> None:
            vault.close()
            if callable(_previous):
                _previous(sig, frame)
                return
            if _previous == signal.SIG_IGN:
                return
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)

        signal.signal(signum, handler)


def _app_version() -> str:
    try:
        from importlib.metadata import version

        return version("guiderail")
    except Exception:
        return "unknown"


def build_app(assistant_factory: AssistantFactory, settings: Settings) -> Any:
    """The chat app as a ``gr.Blocks`` (queued); ``launch(settings)`` serves it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    holder = _AssistantHolder(assistant_factory, settings)
    backend = settings.llm
    max_chars = settings.max_question_chars
    vault = S.ExportVault.create(_export_base())
    _private_cache(vault)  # before any component exists: each takes its cache folder when created
    atexit.register(vault.close)
    empty = S.view_of(S.ChatSession(), backend)

    def outputs_of(view: S.View, session: S.ChatSession) -> tuple[Any, ...]:
        if view.warning:
            gr.Warning(view.warning)
        buttons = tuple(gr.Button(value=q or " ", visible=bool(q)) for q in view.follow_ups)
        box = gr.skip() if view.question_box is None else view.question_box
        return (
            session, view.chat, view.sources, view.rules, view.context, view.context_json, view.status,
            list(view.follow_ups), *buttons, box,
        )

    def run(make: Callable[[S.AssistantLike, S.ChatSession], Iterator[S.View]], session: S.ChatSession | None):
        session = session or S.ChatSession()
        try:
            assistant = holder.get()
        except GuideRailError as exc:
            error = f"The assistant is not ready: {exc}"
            yield outputs_of(S.view_of(session, backend, error=error), session)
            raise gr.Error(error, print_exception=False) from None
        except Exception:
            log.exception("building the assistant failed")
            error = "The assistant could not start; see the server log."
            yield outputs_of(S.view_of(session, backend, error=error), session)
            raise gr.Error(error, print_exception=False) from None
        for view in make(assistant, session):
            yield outputs_of(view, session)
            if view.error:
                # the page stays as it was; the error event tells the browser and API clients alike
                raise gr.Error(view.error, print_exception=False)

    def on_ask(question: str, audience: str, session: S.ChatSession | None):
        yield from run(
            lambda a, s: S.stream_answer(
                a, s, question, configured_backend=backend, audience=audience, context=s.current_context(), max_chars=max_chars
            ),
            session,
        )

    def on_follow_up(index: int, audience: str, session: S.ChatSession | None):
        # the question comes from this session's last answer, not from the button label, so an API
        # client (which sends no button values) gets the same behaviour as a click
        def make(a: S.AssistantLike, s: S.ChatSession) -> Iterator[S.View]:
            suggestions = S.follow_ups_of(s)
            if not suggestions[index]:
                return iter([S.view_of(s, backend, warning="No suggested follow-up question here yet.")])
            return S.stream_answer(
                a, s, suggestions[index], configured_backend=backend, audience=audience,
                context=s.current_context(), max_chars=max_chars,
            )

        yield from run(make, session)

    def on_correct(context_text: str, added: str, audience: str, session: S.ChatSession | None):
        session = session or S.ChatSession()
        n_turns = len(session.turns)
        pending: tuple[Any, ...] | None = None  # one step behind, so the last step can also clear the box
        try:
            for out in run(
                lambda a, s: S.recompute(
                    a, s, context_text, added, configured_backend=backend, audience=audience, max_chars=max_chars
                ),
                session,
            ):
                if pending is not None:
                    yield (*pending, gr.skip())
                pending = out
        except gr.Error:
            if pending is not None:
                yield (*pending, gr.skip())
            raise
        if pending is not None:
            applied = len(session.turns) > n_turns  # then empty the "add a fact" box
            yield (*pending, "" if applied else gr.skip())

    def on_audience(audience: str, session: S.ChatSession | None):
        yield from run(lambda a, s: S.reword(a, s, audience, configured_backend=backend, max_chars=max_chars), session)

    def end_exports(key: str | None) -> None:
        vault.end_session(key)

    def on_new_chat(session: S.ChatSession | None, request: gr.Request = None):
        # a new chat ends the old conversation: its exported records go with it
        end_exports(session.export_key if session else None)
        end_exports(S.session_key(getattr(request, "session_hash", None)))
        fresh = S.ChatSession()
        return (*outputs_of(S.view_of(fresh, backend), fresh)[:-1], "", None, None, "")

    def export_dir_for(session: S.ChatSession, request: gr.Request | None) -> Path:
        vault.purge_older_than(EXPORT_TTL_S)
        session.export_key = S.session_key(getattr(request, "session_hash", None), session)
        return vault.session_dir(session.export_key)

    def on_export_md(session: S.ChatSession | None, request: gr.Request = None):
        session = session or S.ChatSession()
        try:
            return str(S.export_markdown(session, export_dir_for(session, request)))
        except GuideRailError as exc:
            gr.Warning(str(exc))
            return None

    def on_export_audit(session: S.ChatSession | None, request: gr.Request = None):
        session = session or S.ChatSession()
        try:
            path = S.export_audit(
                session,
                export_dir_for(session, request),
                app_version=_app_version(),
                settings_summary=_settings_summary(settings),
            )
            return str(path)
        except GuideRailError as exc:
            gr.Warning(str(exc))
            return None

    def on_unload(request: gr.Request = None):
        # the tab closed or reloaded: this browser session's exports are deleted now, not in an hour
        end_exports(S.session_key(getattr(request, "session_hash", None)))

    def on_state_deleted(session: Any) -> None:
        if isinstance(session, S.ChatSession):
            end_exports(session.export_key)

    # Gradio finds the request parameter by its type; with postponed annotations (and gradio imported
    # here, not at module level) the string "gr.Request" cannot be resolved, so give it the class.
    for handler in (on_new_chat, on_export_md, on_export_audit, on_unload):
        handler.__annotations__["request"] = gr.Request

    with gr.Blocks(title="GuideRail", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.HTML(
            f"<style>{_CSS}</style><div class='gr-disclaimer'><b>Clinical decision support.</b> {R.esc(R.DISCLAIMER)}</div>",
            elem_id="gr-disclaimer",
            js_on_load=_CLICK_JS,
        )
        status = gr.HTML(empty.status, label="status", elem_id="gr-status")
        # the suggestions as data, for API clients (the buttons carry them for people)
        follow_data = gr.JSON(value=["", "", ""], label="follow_ups", visible=False)
        state = gr.State(None, time_to_live=SESSION_TTL_S, delete_callback=on_state_deleted)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                chat = gr.Chatbot(
                    label="Chat",
                    elem_id="gr-chat",
                    height=640,
                    autoscroll=False,
                    sanitize_html=True,
                    allow_tags=False,
                    latex_delimiters=[],
                    render_markdown=True,
                    feedback_options=None,
                    buttons=["copy"],
                    placeholder="Describe the patient and ask a question. Every claim in the answer is cited "
                    "to a guideline passage; the rule checks and sources appear on the right.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        label="Question",
                        show_label=False,
                        placeholder="e.g. mCRPC with a CHEK2 mutation, PSA rising on Lu-177-PSMA after docetaxel "
                        "and abiraterone — what are the options?",
                        lines=3,
                        max_lines=12,
                        scale=5,
                        elem_id="gr-question",
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="gr-send")
                with gr.Row():
                    follow = [
                        gr.Button(" ", visible=False, size="sm", elem_id=f"gr-followup-{i}", elem_classes=["gr-followup"])
                        for i in range(3)
                    ]
                with gr.Row():
                    audience = gr.Radio(
                        ["clinician", "patient"], value=settings.audience, label="Wording for", elem_id="gr-audience"
                    )
                    new_chat = gr.Button("New chat", elem_id="gr-new-chat")
                with gr.Row():
                    export_md = gr.Button("Export conversation (Markdown)", size="sm", elem_id="gr-export-md")
                    export_json = gr.Button("Export audit record (JSON)", size="sm", elem_id="gr-export-audit")
                with gr.Row():
                    md_file = gr.File(label="Conversation (Markdown)", interactive=False, visible=False, elem_id="gr-md-file")
                    audit_file = gr.File(label="Audit record (JSON)", interactive=False, visible=False, elem_id="gr-audit-file")
            with gr.Column(scale=2, min_width=360):
                gr.Markdown("### Rule checks")
                rules = gr.HTML(empty.rules, label="rule_checks", elem_id="gr-rules")
                gr.Markdown("### Patient context")
                context = gr.HTML(empty.context, label="patient_context", elem_id="gr-context")
                with gr.Accordion("Correct or add a patient fact", open=False, elem_id="gr-correct"):
                    gr.Markdown(
                        "Add a fact in words, or edit the extracted facts below, then recompute: the last "
                        "question is answered again with the corrected facts, and they carry into later questions.",
                        elem_classes=["gr-hint"],
                    )
                    added = gr.Textbox(
                        label="Add or correct a fact in words",
                        placeholder="e.g. germline BRCA2 pathogenic variant; ECOG 1; no visceral metastases",
                        elem_id="gr-added-fact",
                    )
                    context_json = gr.Code(
                        value=empty.context_json,
                        language="json",
                        interactive=True,
                        label="Patient facts (JSON, editable)",
                        lines=6,
                        max_lines=24,
                        elem_id="gr-context-json",
                    )
                    recompute = gr.Button("Apply and recompute the answer", variant="primary", elem_id="gr-recompute")
                gr.Markdown("### Sources")
                sources = gr.HTML(empty.sources, label="sources", elem_id="gr-sources")

        outs = [state, chat, sources, rules, context, context_json, status, follow_data, *follow, question]
        answer_opts: dict[str, Any] = {
            "concurrency_limit": CONCURRENCY.get(backend, 1),
            "concurrency_id": "answer",
            "show_progress": "minimal",
        }
        answer_events = [
            send.click(on_ask, [question, audience, state], outs, api_name="ask", **answer_opts),
            question.submit(on_ask, [question, audience, state], outs, api_visibility="private", **answer_opts),
            *[
                btn.click(partial(on_follow_up, i), [audience, state], outs, api_name=f"follow_up_{i + 1}", **answer_opts)
                for i, btn in enumerate(follow)
            ],
            recompute.click(
                on_correct, [context_json, added, audience, state], [*outs, added], api_name="correct_context", **answer_opts
            ),
            audience.input(on_audience, [audience, state], outs, api_name="set_audience", **answer_opts),
        ]
        for event in answer_events:
            event.then(None, None, None, js=_SHOW_ANSWER_START_JS, api_visibility="private")
        # the file boxes show only once there is a file (the API endpoints return plain paths)
        def show_if_set(value: Any) -> Any:
            return gr.File(visible=value is not None)

        new_chat.click(on_new_chat, [state], [*outs, md_file, audit_file, added], api_name="new_chat").then(
            lambda: (gr.File(visible=False), gr.File(visible=False)), None, [md_file, audit_file], api_visibility="private"
        )
        export_md.click(on_export_md, [state], md_file, api_name="export_markdown").then(
            show_if_set, md_file, md_file, api_visibility="private"
        )
        export_json.click(on_export_audit, [state], audit_file, api_name="export_audit").then(
            show_if_set, audit_file, audit_file, api_visibility="private"
        )
        demo.unload(on_unload)
    demo.queue(default_concurrency_limit=CONCURRENCY.get(backend, 1), max_size=QUEUE_MAX)
    demo.guiderail_holder = holder  # launch() warms it up in the background
    demo.guiderail_exports = vault  # launch() deletes it on SIGTERM/SIGHUP; tests close it
    return demo


def _warm(holder: _AssistantHolder) -> None:
    """Load the index and model before the first question; a failure is reported again on first use."""
    try:
        holder.get()
    except Exception as exc:
        log.warning("assistant warm-up failed (will retry on the first question): %s", exc)


def launch(settings: Settings, *, assistant_factory: AssistantFactory | None = None, block: bool = True) -> Any:
    """Serve the app on settings.host:settings.port (127.0.0.1 by default), analytics off, no share link."""
    from assistant.logging_setup import install_redaction

    install_redaction(settings)  # patient text never reaches the server's logs unless the operator opts in
    if assistant_factory is None:
        from assistant.pipeline import build_assistant

        assistant_factory = build_assistant
    demo = build_app(assistant_factory, settings)
    _delete_on_signals(demo.guiderail_exports)
    threading.Thread(target=_warm, args=(demo.guiderail_holder,), name="guiderail-warm", daemon=True).start()
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        share=False,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        quiet=False,
        prevent_thread_lock=not block,
    )
    if block:  # launch returned: the server stopped (Ctrl-C, close)
        demo.guiderail_exports.close()
    return demo
