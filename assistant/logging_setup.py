"""Privacy-safe logging: patient text stays out of log records unless `settings.log_patient_text` is set.

Clinicians type identifiable facts (age, history, test results) into the question and the patient box.
Log files outlive conversations and travel to places a chart never would, so by default every log
record is redacted before any handler sees it:

* text registered with `register_patient_text()` (the entry points and the pipeline register the
  question, the patient box and the history of each request) is removed wherever it shows up in a
  record — whole, or as any run of three or more of its words (so a log line quoting part of the
  question, or a prompt the LLM client logs, is caught too);
* arguments wrapped in `PatientText` and whole patient records (`PatientContext`, `Answer`,
  `AnswerEvent`) are replaced by a placeholder, whatever their content.

`install_redaction(settings)` wires this in once per process through the log-record factory, so it
also covers loggers and handlers that third-party libraries create later (uvicorn, httpx, LangChain).
`PatientTextFilter` is the same redaction as a `logging.Filter`, for handlers configured elsewhere.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

REDACTED = "[patient text redacted]"
_NGRAM = 3  # a run of this many words shared with registered patient text is redacted
_MIN_SHORT_CHARS = 6  # texts shorter than _NGRAM words are matched whole, if at least this long
_MAX_REGISTERED = 512  # texts remembered (oldest forgotten first): bounded memory in a long-lived server
_MAX_NGRAMS = 400_000  # and at most this many n-grams in all (a few tens of MB at worst)
_MAX_TEXT_CHARS = 200_000  # only this much of one registered text is indexed (questions are capped far lower)
_WORD = re.compile(r"\w+", re.UNICODE)
_MARK = "_guiderail_redacted"
_RECORD_TYPES = ("PatientContext", "Answer", "AnswerEvent", "PatientText")


class PatientText(str):
    """A string that must never reach a log record verbatim: `log.info("q=%s", PatientText(q))`."""

    __slots__ = ()


class _Registry:
    """Thread-safe, bounded memory of patient texts seen recently, indexed by word n-grams."""

    def __init__(self, capacity: int = _MAX_REGISTERED) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._texts: OrderedDict[str, tuple[frozenset[tuple[str, ...]], str | None]] = OrderedDict()
        self._ngrams: dict[tuple[str, ...], int] = {}
        self._short: dict[str, int] = {}

    def add(self, text: str) -> None:
        text = text[:_MAX_TEXT_CHARS].strip()
        if not text:
            return
        words = [w.lower() for w in _WORD.findall(text)]
        grams = frozenset(tuple(words[i : i + _NGRAM]) for i in range(len(words) - _NGRAM + 1))
        short = text.lower() if not grams and len(text) >= _MIN_SHORT_CHARS else None
        if not grams and short is None:
            return
        with self._lock:
            if text in self._texts:
                self._texts.move_to_end(text)
                return
            self._texts[text] = (grams, short)
            for g in grams:
                self._ngrams[g] = self._ngrams.get(g, 0) + 1
            if short is not None:
                self._short[short] = self._short.get(short, 0) + 1
            while len(self._texts) > 1 and (len(self._texts) > self._capacity or len(self._ngrams) > _MAX_NGRAMS):
                self._forget(*self._texts.popitem(last=False)[1])

    def _forget(self, grams: frozenset[tuple[str, ...]], short: str | None) -> None:
        for g in grams:
            left = self._ngrams[g] - 1
            if left:
                self._ngrams[g] = left
            else:
                del self._ngrams[g]
        if short is not None:
            left = self._short[short] - 1
            if left:
                self._short[short] = left
            else:
                del self._short[short]

    def clear(self) -> None:
        with self._lock:
            self._texts.clear()
            self._ngrams.clear()
            self._short.clear()

    def redact(self, message: str) -> str:
        if not self._texts:  # unlocked peek: the common case (nothing registered) costs nothing
            return message
        words = list(_WORD.finditer(message))
        keys = [m.group().lower() for m in words]
        windows = [tuple(keys[i : i + _NGRAM]) for i in range(len(keys) - _NGRAM + 1)]
        spans: list[tuple[int, int]] = []
        with self._lock:
            for i, window in enumerate(windows):
                if window in self._ngrams:
                    spans.append((words[i].start(), words[i + _NGRAM - 1].end()))
            shorts = list(self._short)
        lowered = message.lower()
        for s in shorts:
            start = lowered.find(s)
            while start != -1:
                spans.append((start, start + len(s)))
                start = lowered.find(s, start + 1)
        return _cut(message, spans)


def _cut(message: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return message
    spans.sort()
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        # overlapping windows, or windows separated only by punctuation/space, become one redaction
        if start <= merged[-1][1] or not message[merged[-1][1] : start].strip(" ,.;:-"):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(message[pos:start])
        out.append(REDACTED)
        pos = end
    out.append(message[pos:])
    return "".join(out)


_registry = _Registry()
_state: dict[str, Any] = {"allow": False, "installed": False, "previous": None}
_install_lock = threading.Lock()


def register_patient_text(*texts: str | Iterable[str] | None) -> None:
    """Remember texts a clinician typed (question, patient box, history turns) so logs never repeat them.

    Cheap and safe to call on every request; accepts strings, None, or iterables of strings
    (e.g. the history's message contents).
    """
    for item in texts:
        if item is None:
            continue
        if isinstance(item, str):
            _registry.add(item)
        else:
            for sub in item:
                if isinstance(sub, str):
                    _registry.add(sub)
                elif isinstance(sub, dict) and isinstance(sub.get("content"), str):
                    _registry.add(sub["content"])


def forget_patient_text() -> None:
    """Drop every registered text (tests; a 'new chat' needs nothing of the kind)."""
    _registry.clear()


def redact_text(message: str) -> str:
    """The redaction applied to log records, for callers that write other diagnostics (e.g. stderr)."""
    if _state["allow"]:
        return message
    return _registry.redact(message)


def _placeholder(value: Any) -> Any:
    name = type(value).__name__
    if isinstance(value, PatientText):
        return REDACTED
    if name in _RECORD_TYPES and type(value).__module__.startswith("assistant."):
        return f"<{name} {REDACTED}>"
    return value


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact one record in place (idempotent).

    A record that needs no redaction keeps its msg/args untouched (formatters such as uvicorn's
    access log unpack `args`); one that does gets the redacted, fully formatted message and no args.
    """
    if _state["allow"] or getattr(record, _MARK, False):
        return record
    original = (record.msg, record.args)
    args = record.args
    if isinstance(args, tuple):
        args = tuple(_placeholder(a) for a in args)
    elif isinstance(args, dict):
        args = {k: _placeholder(v) for k, v in args.items()}
    msg = _placeholder(record.msg)
    touched = msg is not record.msg or (
        args is not record.args and any(a is not b for a, b in zip(_values(args), _values(record.args), strict=True))
    )
    record.msg, record.args = msg, args
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging would print its args in a traceback — replace it instead
        message, touched = f"{record.msg!s} {record.args!r}", True
    redacted = _registry.redact(message)
    if touched or redacted != message:
        record.msg, record.args = redacted, ()
    else:
        record.msg, record.args = original
    if record.exc_info and not record.exc_text:
        # Formatter reuses exc_text when set: format the traceback now so it is redacted too
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = _registry.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = _registry.redact(record.stack_info)
    setattr(record, _MARK, True)
    return record


def _values(args: Any) -> tuple[Any, ...]:
    if isinstance(args, dict):
        return tuple(args.values())
    return tuple(args) if isinstance(args, tuple) else ()


class PatientTextFilter(logging.Filter):
    """Handler filter: redacts patient text from every record that passes through; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_redaction(settings: Any = None, *, allow_patient_text: bool | None = None) -> None:
    """Redact patient text from all log records in this process (idempotent; call once at start-up).

    `settings.log_patient_text=True` (or `allow_patient_text=True`) turns redaction off — for a
    clinician debugging on their own machine, never the default.
    """
    allow = allow_patient_text
    if allow is None:
        allow = bool(getattr(settings, "log_patient_text", False))
    _state["allow"] = allow
    with _install_lock:
        if _state["installed"]:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _state["installed"], _state["previous"] = True, previous


def uninstall_redaction() -> None:
    """Undo `install_redaction` and forget registered texts (tests that must leave the process as found)."""
    with _install_lock:
        if _state["installed"]:
            logging.setLogRecordFactory(_state["previous"])
        _state["installed"], _state["previous"], _state["allow"] = False, None, False
    forget_patient_text()


def configure_logging(settings: Any = None, *, verbose: bool = False) -> None:
    """The entry points' one call: basic console logging (WARNING, or DEBUG with -v) plus redaction."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    install_redaction(settings)
