"""Per-session chat state and the UI's event handlers, without Gradio.

Each handler is: one UI event in → at most one pipeline call (``Assistant.ask_stream``) → ``View``s
out. ``assistant/web/app.py`` only wires these to components, so everything here is unit-tested with a
fake assistant and plain values. A session's state lives in its own ``ChatSession`` object (held in a
``gr.State``), never in module globals, so two browser sessions cannot see each other's facts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from assistant.errors import GuideRailError
from assistant.models import Answer, AnswerEvent, Citation, Finding, PatientContext
from assistant.web import render as R

log = logging.getLogger("guiderail.webapp")

NO_FOLLOW_UPS: tuple[str, str, str] = ("", "", "")
WORKING = "_Checking the rules and retrieving guideline passages…_"
WRITING = "_Rule checks done; writing the cited answer…_"


class AssistantLike(Protocol):
    """What the UI needs from ``assistant.pipeline.Assistant``."""

    def ask_stream(
        self,
        question: str,
        *,
        patient: str | None = None,
        history: list[dict[str, str]] | None = None,
        audience: str = "clinician",
        context: PatientContext | None = None,
        context_is_final: bool = False,
    ) -> Iterator[AnswerEvent]: ...


@dataclass
class Turn:
    """One question and the answer shown for it (a recomputed answer supersedes the earlier one)."""

    question: str
    audience: str = "clinician"
    patient: str | None = None
    context: PatientContext | None = None
    answer: Answer | None = None
    superseded: bool = False
    note: str = ""
    asked_at: str = ""

    def as_mapping(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "audience": self.audience,
            "patient": self.patient,
            "context": self.context,
            "answer": self.answer,
            "superseded": self.superseded,
            "note": self.note,
            "asked_at": self.asked_at,
        }


@dataclass
class ChatSession:
    """Everything one browser session knows: its turns (kept for the audit) and the clinician's corrections."""

    turns: list[Turn] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    export_key: str = ""  # the folder its exports went to (deleted with the session)

    def visible(self) -> list[Turn]:
        return [t for t in self.turns if not t.superseded]

    def last(self) -> Turn | None:
        vis = self.visible()
        return vis[-1] if vis else None

    def current_context(self) -> PatientContext | None:
        last = self.last()
        return last.answer.patient_context if last and last.answer else None

    def history(self, *, drop_last: bool = False) -> list[dict[str, str]]:
        """Earlier turns as chat messages for the pipeline (which re-extracts facts from them)."""
        vis = self.visible()
        if drop_last and vis:
            vis = vis[:-1]
        out: list[dict[str, str]] = []
        for t in vis:
            if t.answer is None:
                continue
            user = t.question if not t.patient else f"{t.question}\n\nPatient details: {t.patient}"
            out.append({"role": "user", "content": user})
            out.append({"role": "assistant", "content": t.answer.answer_markdown})
        return out


@dataclass
class View:
    """Everything the page shows after one step. ``question_box=None`` leaves the input as it is."""

    chat: list[dict[str, str]]
    sources: str
    rules: str
    context: str
    context_json: str
    status: str
    follow_ups: tuple[str, str, str] = NO_FOLLOW_UPS
    warning: str | None = None
    question_box: str | None = None
    error: str | None = None
    """A store or model failure stopped the answer: raised as an error event (``gr.Error``) after the
    page is shown, so an API client gets it too (a warning toast never reaches ``Client.predict``)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _chat_for(turns: list[Turn]) -> list[dict[str, str]]:
    msgs: list[dict[str, str]] = []
    for t in turns:
        user = R.user_markdown(t.question)
        if t.patient:
            user += "\n\n_Patient details:_ " + R.user_markdown(t.patient)
        msgs.append({"role": "user", "content": user})
        if t.answer is not None:
            body = R.answer_markdown(t.answer.answer_markdown, t.answer.citations)
            if t.note:
                body = f"_{R.user_markdown(t.note)}_\n\n{body}"
            msgs.append({"role": "assistant", "content": body})
    return msgs


def _follow_ups(answer: Answer | None) -> tuple[str, str, str]:
    qs = [q.strip() for q in (answer.follow_ups if answer else []) if q and q.strip()][:3]
    qs += [""] * (3 - len(qs))
    return (qs[0], qs[1], qs[2])


def follow_ups_of(session: ChatSession) -> tuple[str, str, str]:
    """The three suggestions under the last answer ("" where there is none)."""
    last = session.last()
    return _follow_ups(last.answer if last else None)


def view_of(
    session: ChatSession, configured_backend: str, *, warning: str | None = None, error: str | None = None
) -> View:
    """The page for a session at rest: the last answer's panels, or the empty page."""
    last = session.last()
    answer = last.answer if last else None
    return View(
        chat=_chat_for(session.visible()),
        sources=R.sources_html(answer.citations if answer else [], answer.answer_markdown if answer else ""),
        rules=R.findings_html(answer.findings if answer else []),
        context=R.context_html(answer.patient_context if answer else None, session.corrections),
        context_json=R.context_json(answer.patient_context if answer else None),
        status=R.status_html(configured_backend, answer),
        follow_ups=_follow_ups(answer),
        warning=warning,
        error=error,
    )


def check_question(question: str | None, max_chars: int) -> str:
    text = (question or "").strip()
    if not text:
        raise _UserInputError("Type a question first.")
    if len(text) > max_chars:
        raise _UserInputError(f"The question is {len(text):,} characters long; the limit is {max_chars:,}.")
    return text


class _UserInputError(GuideRailError):
    """Bad input caught in the UI before any pipeline call."""


def stream_answer(
    assistant: AssistantLike,
    session: ChatSession,
    question: str | None,
    *,
    configured_backend: str,
    audience: str = "clinician",
    patient: str | None = None,
    context: PatientContext | None = None,
    note: str = "",
    replace_last: bool = False,
    max_chars: int = 20_000,
    context_is_final: bool = False,
) -> Iterator[View]:
    """Ask once and yield the page as the answer streams: plan (rules, sources, context) → text → final.

    The session is changed only when the final answer arrives, so an error leaves it as it was.
    `context_is_final`: the context is the clinician's corrected record; the question is not re-read
    over it (that would undo the correction).
    """
    try:
        text = check_question(question, max_chars)
    except GuideRailError as exc:
        yield view_of(session, configured_backend, warning=str(exc))
        return
    earlier = session.visible()[:-1] if replace_last else session.visible()
    turn = Turn(question=text, audience=audience, patient=patient or None, context=context, note=note, asked_at=_now())
    base_chat = _chat_for(earlier) + _chat_for([turn])
    citations: list[Citation] = []
    findings: list[Finding] = []
    ctx: PatientContext | None = None
    streamed = ""

    def page(body: str, *, warning: str | None = None, answer: Answer | None = None, error: str | None = None) -> View:
        return View(
            chat=[*base_chat, {"role": "assistant", "content": body}],
            sources=R.sources_html(citations, answer.answer_markdown if answer else streamed),
            rules=R.findings_html(findings),
            context=R.context_html(ctx, session.corrections),
            context_json=R.context_json(ctx),
            status=R.status_html(configured_backend, answer),
            follow_ups=_follow_ups(answer),
            warning=warning,
            question_box="" if not replace_last else None,
            error=error,
        )

    yield page(WORKING)
    # A carried context already holds every fact from the earlier turns (and the clinician's
    # corrections); re-reading the history on top of it would replay old values over newer ones.
    history = session.history(drop_last=replace_last) if context is None else None
    final: Answer | None = None
    try:
        extra = {"context_is_final": True} if context_is_final and context is not None else {}
        for ev in assistant.ask_stream(
            text, patient=patient or None, history=history, audience=audience, context=context, **extra
        ):
            if ev.kind == "plan":
                citations, findings, ctx = list(ev.citations), list(ev.findings), ev.patient_context
                yield page(WRITING)
            elif ev.kind == "delta":
                streamed += ev.text
                yield page(R.answer_markdown(streamed, citations))
            elif ev.kind == "error":
                yield page(f"⚠ {R.user_markdown(ev.text)}", error=ev.text)
                return
            elif ev.kind == "final" and ev.answer is not None:
                final = ev.answer
    except GuideRailError as exc:
        log.warning("answer failed: %s", type(exc).__name__)
        yield view_of(session, configured_backend, error=str(exc))
        return
    except Exception as exc:
        # never a traceback in the browser; the log gets the code path but not the message, which
        # may quote patient text (validation errors echo their input)
        log.error("unexpected %s while answering:\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
        yield view_of(session, configured_backend, error="Unexpected error while answering; see the server log.")
        return
    if final is None:
        yield view_of(session, configured_backend, error="The answer stream ended without a final answer.")
        return
    turn.answer = final
    if replace_last and session.visible():
        session.visible()[-1].superseded = True
    session.turns.append(turn)
    view = view_of(session, configured_backend)
    view.question_box = "" if not replace_last else None
    yield view


# ---------------------------------------------------------------- corrections
def parse_context(text: str | None) -> PatientContext:
    """The clinician's edited context JSON → PatientContext, or a GuideRailError that says what is wrong."""
    raw = (text or "").strip() or "{}"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _UserInputError(f"Patient context is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.") from exc
    if not isinstance(data, dict):
        raise _UserInputError("Patient context must be a JSON object, e.g. {\"ecog\": 1}.")
    try:
        return PatientContext.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "context"
        raise _UserInputError(f"Patient context field '{where}': {first.get('msg', 'invalid value')}.") from exc


def describe_correction(old: PatientContext | None, new: PatientContext, added: str) -> str:
    """One line for the panel and the export: which fields changed and what was added in words."""
    before = (old or PatientContext()).model_dump(mode="json", exclude={"changes"})
    after = new.model_dump(mode="json", exclude={"changes"})
    changed = sorted(k for k in after if before.get(k) != after[k])
    bits = []
    if changed:
        bits.append("edited " + ", ".join(changed))
    if added:
        bits.append(f"added “{added}”")
    return "; ".join(bits) or "recomputed with the same facts"


def recompute(
    assistant: AssistantLike,
    session: ChatSession,
    context_text: str | None,
    added_fact: str | None,
    *,
    configured_backend: str,
    audience: str = "clinician",
    max_chars: int = 20_000,
) -> Iterator[View]:
    """Apply the clinician's corrected/added facts and recompute the last answer with them."""
    last = session.last()
    if last is None:
        yield view_of(session, configured_backend, warning="Ask a question first; then correct the patient facts.")
        return
    try:
        ctx = parse_context(context_text)
    except GuideRailError as exc:
        yield view_of(session, configured_backend, warning=str(exc))
        return
    added = (added_fact or "").strip()
    note = describe_correction(session.current_context(), ctx, added)
    # The corrected context already holds the earlier patient text's facts; only the new fact is read on top.
    patient = added or None
    n_before = len(session.turns)
    session.corrections.append(note)  # shown in the context panel while the answer is recomputed
    yield from stream_answer(
        assistant,
        session,
        last.question,
        configured_backend=configured_backend,
        audience=audience,
        patient=patient,
        context=ctx,
        note=f"Recomputed after a correction: {note}.",
        replace_last=True,
        max_chars=max_chars,
        context_is_final=True,
    )
    if len(session.turns) == n_before:  # no new answer: the correction did not take effect
        session.corrections.pop()


def reword(
    assistant: AssistantLike, session: ChatSession, audience: str, *, configured_backend: str, max_chars: int = 20_000
) -> Iterator[View]:
    """The audience toggle: the same question and facts, worded for the clinician or the patient."""
    last = session.last()
    if last is None or last.audience == audience:
        yield view_of(session, configured_backend)
        return
    yield from stream_answer(
        assistant,
        session,
        last.question,
        configured_backend=configured_backend,
        audience=audience,
        patient=last.patient,
        context=last.context,
        note=f"Reworded for the {audience}.",
        replace_last=True,
        max_chars=max_chars,
        context_is_final=last.context is not None,
    )


# ---------------------------------------------------------------- exports
# Exports hold patient records. They are written owner-only (0600 files in 0700 folders), one folder per
# browser session inside one private folder per server process, and deleted when the session ends, when
# the server stops, and at the next start for a server that was killed (its pid is in the folder name).
# The private folder is also Gradio's cache for this app (``GRADIO_TEMP_DIR``), so Gradio serves the
# export in place instead of copying it into a shared, world-readable cache (see ``app.build_app``).
APP_DIR_PREFIX = "guiderail-app-"
LEGACY_PREFIX = "guiderail-exports-"  # folders of earlier versions: exports left in the shared temp dir
EXPORTS = "exports"
_APP_DIR = re.compile(rf"^{re.escape(APP_DIR_PREFIX)}(\d+)-")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _private_dir(path: Path) -> Path:
    """``path`` as an owner-only folder (created 0700; an existing one is narrowed to 0700)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to a new file readable by the owner only (0600 from creation, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)  # O_CREAT honours the umask; an existing file keeps its mode
        fh.write(text)
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return True


def sweep_leftovers(base: Path, *, legacy_max_age_s: float = 3600.0) -> list[Path]:
    """Delete this user's app folders left by servers that are no longer running (killed, crashed),
    and this user's export folders of earlier versions older than ``legacy_max_age_s``. Returns them."""
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    now = time.time()
    for path in entries:
        try:
            st = path.lstat()
        except OSError:
            continue
        if not path.is_dir() or path.is_symlink() or (uid is not None and st.st_uid != uid):
            continue
        m = _APP_DIR.match(path.name)
        stale = (m is not None and not _pid_alive(int(m.group(1)))) or (
            path.name.startswith(LEGACY_PREFIX) and now - st.st_mtime > legacy_max_age_s
        )
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed %d export folder(s) left by earlier servers", len(removed))
    return removed


def session_key(session_hash: str | None, session: ChatSession | None = None) -> str:
    """Folder name for one browser session: a hash of Gradio's session hash (never the raw value),
    else the chat session's own id (direct calls without a request)."""
    if session_hash:
        return hashlib.sha256(session_hash.encode()).hexdigest()[:24]
    return re.sub(r"[^a-zA-Z0-9]", "", session.session_id if session else "") or "anonymous"


class ExportVault:
    """The server's private folder for exports (and Gradio's cache for this app); see above."""

    def __init__(self, root: Path) -> None:
        self.root = _private_dir(root)
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def create(cls, base: Path | None = None) -> ExportVault:
        """A fresh private folder under ``base`` (default: the system temp dir), after sweeping leftovers."""
        base = Path(base or tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        sweep_leftovers(base)
        return cls(Path(tempfile.mkdtemp(prefix=f"{APP_DIR_PREFIX}{os.getpid()}-", dir=base)))

    def session_dir(self, key: str) -> Path:
        return _private_dir(_private_dir(self.root / EXPORTS) / key)  # parents=True would use the umask

    def end_session(self, key: str | None) -> None:
        """Delete one session's exports (the tab closed, a new chat, the session's state expired)."""
        if key:
            shutil.rmtree(self.root / EXPORTS / key, ignore_errors=True)

    def purge_older_than(self, max_age_s: float) -> int:
        """Delete exports older than ``max_age_s`` (a session that never ends still loses its files)."""
        cutoff = time.time() - max_age_s
        n = 0
        for path in (self.root / EXPORTS).glob("*/guiderail-*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    n += 1
            except OSError:  # removed by another worker or a session end
                continue
        return n

    def close(self) -> None:
        """Delete everything (server stop). Safe to call twice and from a signal handler."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        shutil.rmtree(self.root, ignore_errors=True)


def export_markdown(session: ChatSession, out_dir: Path) -> Path:
    if not session.visible():
        raise _UserInputError("Nothing to export yet: ask a question first.")
    _private_dir(out_dir)
    path = out_dir / f"guiderail-conversation-{session.session_id}-{_stamp()}.md"
    text = R.conversation_markdown([t.as_mapping() for t in session.visible()], _now())
    return write_private(path, text)


def export_audit(
    session: ChatSession, out_dir: Path, *, app_version: str, settings_summary: dict[str, Any]
) -> Path:
    if not session.turns:
        raise _UserInputError("Nothing to export yet: ask a question first.")
    _private_dir(out_dir)
    path = out_dir / f"guiderail-audit-{session.session_id}-{_stamp()}.json"
    record = R.audit_record(
        [t.as_mapping() for t in session.turns],
        exported_at=_now(),
        app_version=app_version,
        settings_summary=settings_summary,
    )
    record["session_id"] = session.session_id
    record["corrections"] = list(session.corrections)
    return write_private(path, json.dumps(record, indent=2, ensure_ascii=False))
