"""Optional LLM judge (K-QA style): each must-have / nice-to-have statement is graded against the answer.

comprehensiveness = must-have statements the answer entails / all must-have statements;
contradictions    = statements (must-have or nice-to-have) the answer contradicts — a hallucination signal.
One call per statement keeps each decision small enough for modest judge models. The judge is any
OpenAI-compatible server from settings (openai_base_url / openai_model / openai_api_key).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.errors import ConfigError
from assistant.evaluation.dataset import QACase
from assistant.settings import Settings

log = logging.getLogger(__name__)

# The judge's instructions are part of the metric's definition, so they live with the metric.
JUDGE_SYSTEM = (
    "You grade a clinical answer against one reference statement. Reply with exactly one word: "
    "ENTAILED if the answer states or clearly implies the statement, CONTRADICTED if the answer says "
    "something incompatible with it, NOT_MENTIONED otherwise."
)
JUDGE_USER = "Reference statement: {statement}\n\nAnswer:\n{answer}\n\nVerdict (ENTAILED, CONTRADICTED or NOT_MENTIONED):"
_VERDICT = re.compile(r"\b(ENTAILED|CONTRADICTED|NOT[_ ]MENTIONED)\b", re.IGNORECASE)


def make_judge_model(settings: Settings) -> BaseChatModel:
    """A deterministic (temperature 0) chat model on the configured OpenAI-compatible server."""
    if not settings.openai_base_url:
        raise ConfigError("--judge needs an OpenAI-compatible server: set GUIDERAIL_OPENAI_BASE_URL (and _MODEL, _API_KEY)")
    from langchain_openai import ChatOpenAI  # imported here: heavy, and only the judge needs it

    return ChatOpenAI(
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        api_key=settings.openai_api_key or "not-needed",
        temperature=0.0,
        max_tokens=8,
        timeout=settings.llm_timeout_s,
        max_retries=1,
    )


def parse_verdict(text: str) -> str:
    m = _VERDICT.search(text or "")
    return m.group(1).upper().replace(" ", "_") if m else "UNPARSED"


def _statements(points: Sequence[Any]) -> list[str]:
    return [p.point or "; ".join(p.keywords) for p in points]


def judge_case(model: BaseChatModel, case: QACase, answer_text: str) -> dict[str, Any]:
    """Grade every reference statement of a case; returns verdicts and the two K-QA scores."""
    verdicts: list[dict[str, str]] = []
    for kind, points in (("must_have", case.must_have), ("nice_to_have", case.nice_to_have)):
        for statement in _statements(points):
            msg = [SystemMessage(JUDGE_SYSTEM), HumanMessage(JUDGE_USER.format(statement=statement, answer=answer_text))]
            reply = model.invoke(msg)
            verdicts.append({"kind": kind, "statement": statement, "verdict": parse_verdict(str(reply.content))})
    must = [v for v in verdicts if v["kind"] == "must_have"]
    return {
        "verdicts": verdicts,
        "comprehensiveness": (sum(v["verdict"] == "ENTAILED" for v in must) / len(must)) if must else None,
        "contradictions": sum(v["verdict"] == "CONTRADICTED" for v in verdicts),
        "unparsed": sum(v["verdict"] == "UNPARSED" for v in verdicts),
    }
