"""The language model's part of an answer: stream its tokens under a wall-clock deadline, clean what it wrote,
check the draft (`verify`), regenerate once listing the violations or strike them (`repair`), and say when too
little verified text is left so the orchestrator falls back to the composer.

Runs after the plan and the numbered sources exist and before the final check in `repair.finalize`. LLM failures
never escape as anything but `LLMError` (timeouts, backend errors, empty or uncitable drafts).
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.answer import prompts
from assistant.answer.protocols import ChatModel, Named, TokenCounting
from assistant.answer.repair import attach_citations, strike
from assistant.answer.support import SupportScorer
from assistant.answer.verify import VerifyResult, inspect_answer
from assistant.errors import LLMError
from assistant.models import AnswerPlan, Citation
from assistant.settings import Settings

SUMMARY_MAX_TOKENS = 180


def clean_llm_text(text: str) -> str:
    """Drop wrappers a coder model likes to add (code fences, its own Sources list, chat markers) and
    normalise citation spellings small models use ("[Passage 2]", "[1, 3]", "【1】") to "[n]"."""
    text = re.sub(r"<\|[^|>]{1,40}\|>", "", text)
    text = re.sub(r"【(\d{1,3})】", r"[\1]", text)
    text = re.sub(r"\[(?:passages?|sources?|refs?|references?)\s*#?(\d{1,3})\]", r"[\1]", text, flags=re.I)
    text = re.sub(
        r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})+)\]",
        lambda m: "".join(f"[{n}]" for n in re.findall(r"\d{1,3}", m.group(1))),
        text,
    )
    # "## Bottom line: text" → heading on its own line, then the text.
    text = re.sub(r"(?m)^(\s*#{1,6}\s*[^:\n]{3,60}?):\s+(\S.*)$", r"\1\n\2", text)
    text = re.sub(r"^\s*```[a-zA-Z]*\s*\n", "", text)
    text = re.sub(r"\n\s*```\s*$", "", text)
    text = re.split(r"\n#{1,6}\s*(?:sources|references)\b.*", text, maxsplit=1, flags=re.I)[0]
    return text.strip()


def usable(text: str) -> bool:
    return len(text.strip()) >= 40 and bool(re.search(r"\[\d{1,3}\]", text))


def too_thin(text: str, plan: AnswerPlan, style: str = "sections") -> bool:
    cited = len(re.findall(r"[^.\n]*\[\d{1,3}\]", text))
    if style == "summary":
        # The sections (options included) come from the plan; the summary only has to say something cited.
        return cited < 1
    if cited < 2:
        return True
    options = [f for f in plan.findings if f.kind in ("recommend", "consider") and f.therapy]
    if options:
        name = options[0].therapy.split("+")[0].replace("_", " ").lower()
        return name not in text.lower()
    return False


@dataclass
class CheckedDraft:
    """The model's draft after checking: ``text`` None means 'fall back to the composer'."""

    text: str | None
    plan: AnswerPlan
    """The plan after the draft's own drugs were screened (it may forbid more)."""
    mode: str
    failed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


ScreenDraft = Callable[[str, AnswerPlan], tuple[AnswerPlan, list[str]]]
"""Drugs the draft names that nothing screened yet → (the plan with any new exclusions, failure notes)."""


class Writer:
    """The chat model with its settings: prompt budget, generation options, deadline, one lock for all calls."""

    def __init__(
        self,
        chat_model: ChatModel,
        settings: Settings,
        *,
        clock: Callable[[], float],
        answer_style: str,
        repair_policy: str,
        scorer: SupportScorer,
    ) -> None:
        self.chat_model = chat_model
        self.settings = settings
        self.answer_style = answer_style
        self.repair_policy = repair_policy
        self._clock = clock
        self._scorer = scorer
        # llama.cpp contexts are not thread-safe: one lock serialises every call to the model.
        self._lock = threading.Lock()

    def _ms(self, since: float) -> float:
        return round((self._clock() - since) * 1000.0, 2)

    @property
    def model_name(self) -> str:
        name = self.chat_model.model_name if isinstance(self.chat_model, Named) else ""
        return name or type(self.chat_model).__name__

    def token_counter(self) -> Callable[[str], int] | None:
        if isinstance(self.chat_model, TokenCounting) and self.settings.llm == "local":
            return self.chat_model.count_tokens
        return lambda s: len(s) // 4 + 1  # a server's tokenizer is unknown: ~4 characters a token

    def prompt_budget(self) -> int:
        return prompts.PROMPT_TOKEN_BUDGET if self.settings.llm == "local" else 3000

    def gen_kwargs(self) -> dict[str, Any]:
        # A 2–4 sentence summary needs ~120 tokens; capping it keeps the local answer inside ~30 s.
        return {"max_tokens": min(SUMMARY_MAX_TOKENS, self.settings.llm_max_tokens)} if self.answer_style == "summary" else {}

    def stream(self, system: str, user: str, *, t0: float, extra: Sequence[Any] = (), **gen: Any) -> Iterator[str]:
        """Token text from the chat model, with a wall-clock deadline (LLMError on timeout or failure).

        The model runs in a worker thread so a hung server or a slow prefill cannot block past
        llm_timeout_s; one lock serialises calls because llama.cpp contexts are not thread-safe.
        """
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [SystemMessage(content=system), HumanMessage(content=user), *extra]
        q: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        model = self.chat_model
        lock = self._lock

        def work() -> None:
            try:
                with lock:
                    for chunk in model.stream(messages, **gen):
                        if stop.is_set():
                            break
                        content = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
                        if content:
                            q.put(("tok", content))
                q.put(("end", None))
            except Exception as exc:  # any backend error becomes a fallback, never a crash
                q.put(("err", exc))

        threading.Thread(target=work, name="guiderail-llm", daemon=True).start()
        deadline = t0 + self.settings.llm_timeout_s
        try:
            while True:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise LLMError(f"timed out after {self.settings.llm_timeout_s:g} s")
                try:
                    kind, value = q.get(timeout=remaining)
                except queue.Empty:
                    raise LLMError(f"timed out after {self.settings.llm_timeout_s:g} s") from None
                if kind == "tok":
                    yield value
                elif kind == "end":
                    return
                else:
                    raise LLMError(f"{type(value).__name__}: {value}") from value
        finally:
            stop.set()

    def check(
        self,
        raw: str,
        *,
        plan: AnswerPlan,
        citations: Sequence[Citation],
        user_text: str,
        built: prompts.BuiltPrompt,
        t_gen: float,
        timings: dict[str, float],
        screen_draft: ScreenDraft,
    ) -> CheckedDraft:
        """Check the draft; regenerate once or strike; None text means 'fall back to the composer'."""
        failed: list[str] = []
        repaired: list[str] = []
        t_v = self._clock()
        text = clean_llm_text(raw)
        plan, screened = screen_draft(text, plan)
        failed.extend(screened)
        text, attached = attach_citations(text, citations=citations, plan=plan, scorer=self._scorer, context_text=user_text)
        if attached:
            failed.append(f"citations: {len(attached)} claim(s) came without a citation")
            repaired.extend(attached)
        if not usable(text):
            raise LLMError("the model's answer was empty or had no supported, citable statement")
        # Summary style: warnings and questions are rendered by code from the plan, not required of the model.
        required = self.answer_style != "summary"
        res = inspect_answer(
            text, citations=citations, plan=plan, scorer=self._scorer, check_required=required, context_text=user_text,
        )
        timings["_verify_llm"] = self._ms(t_v)
        if not res.violations:
            mode = "llm-repaired" if attached else "llm"
            return CheckedDraft(res.text, plan, mode, [*failed, *res.report.failed], [*repaired, *res.report.repaired])
        failed.extend(res.report.failed)
        repaired.extend(res.report.repaired)
        mode = "llm-repaired"
        if self._should_regenerate(res, t_gen):
            from langchain_core.messages import AIMessage, HumanMessage

            violations = [v.message for v in res.violations][:8]
            extra = [AIMessage(content=raw), HumanMessage(content=prompts.repair_message(violations, len(citations)))]
            try:
                t_r = self._clock()
                raw2 = "".join(self.stream(built.system, built.user, t0=t_r, extra=extra, **self.gen_kwargs()))
                timings["regenerate"] = self._ms(t_r)
                text2, attached2 = attach_citations(
                    clean_llm_text(raw2), citations=citations, plan=plan, scorer=self._scorer, context_text=user_text,
                )
                repaired.extend(attached2)
                if usable(text2):
                    t_v = self._clock()
                    res2 = inspect_answer(
                        text2, citations=citations, plan=plan, scorer=self._scorer, check_required=required,
                        context_text=user_text,
                    )
                    timings["_verify_llm"] += self._ms(t_v)
                    repaired.append(f"regenerated once listing {len(violations)} violation(s)")
                    failed.extend(f"after regeneration: {x}" for x in res2.report.failed)
                    res = res2
                    if not res.violations:
                        return CheckedDraft(res.text, plan, mode, failed, repaired)
            except LLMError as exc:
                failed.append(f"regeneration failed: {exc}")
        struck, notes = strike(res)
        repaired.extend(notes)
        if not usable(struck) or too_thin(struck, plan, self.answer_style):
            failed.append("too little verified text left after striking: composer fallback")
            return CheckedDraft(None, plan, "composer-fallback", failed, repaired)
        return CheckedDraft(struck, plan, mode, failed, repaired)

    def _should_regenerate(self, res: VerifyResult, t_gen: float) -> bool:
        if self.repair_policy == "strike":
            return False
        elapsed = self._clock() - t_gen
        # Only regenerate when a second full generation still fits in the time budget.
        if elapsed * 2.2 > self.settings.llm_timeout_s:
            return False
        if self.repair_policy == "regenerate":
            return True
        claims = [s for s in res.sentences if s.kind == "claim"]
        bad = {(v.line, v.index) for v in res.violations}
        serious = any(v.check == "excluded-therapy" for v in res.violations)
        return serious or (bool(claims) and len(bad) / len(claims) > 0.34)
