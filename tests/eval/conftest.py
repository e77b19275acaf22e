"""Fakes for the evaluation tests: a scripted assistant and a tiny Q&A file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.evaluation.configs import BuiltConfig, EvalConfig
from assistant.models import Answer, Citation, VerificationReport

PASSAGE = "Cabazitaxel improved survival after docetaxel and an ARPI (CARD)."


class ScriptedAssistant:
    """Answers from a dict keyed by question; records every call (question, patient, history)."""

    def __init__(self, script: dict[str, dict[str, Any]], fail_on: str | None = None,
                 crash_on: str | None = None) -> None:
        self.script = script
        self.calls: list[tuple[str, str | None, Any]] = []
        self.fail_on = fail_on
        self.crash_on = crash_on

    def ask(self, question: str, *, patient: str | None = None, history: Sequence[dict] | None = None,
            audience: str = "clinician", context: Any = None) -> Answer:
        self.calls.append((question, patient, history))
        if question == self.crash_on:
            raise KeyboardInterrupt  # a crash the runner must not swallow
        if question == self.fail_on:
            raise RuntimeError("backend exploded")
        spec = self.script.get(question, {"text": "I cannot answer that from the guidelines.", "abstained": True})
        cits = [
            Citation(number=1, doc_id="aua-apc-2023", title="AUA", chunk_id="c1", passage=PASSAGE,
                     rec_id="AUA-APC-S28", section="mCRPC › After docetaxel"),
        ]
        return Answer(
            question=question,
            answer_markdown=spec["text"],
            citations=cits if not spec.get("abstained") else [],
            abstained=bool(spec.get("abstained")),
            verification=VerificationReport(support_scores=spec.get("support", [0.9, 0.2])),
            backend="none",
            timings_ms={"retrieve": 5.0, "rules": 1.0, "total": 20.0},
        )


CASES = [
    {"id": "T-1", "question": "Next line after docetaxel and abiraterone?",
     "must_have": [{"point": "cabazitaxel", "keywords": ["cabazitaxel", "Jevtana"]},
                   {"point": "trial", "keywords": ["clinical trial"]}],
     "forbidden": [{"claim": "re-treat with docetaxel", "keywords": ["rechallenge with docetaxel"]}],
     "gold_therapies": [["cabazitaxel"]], "sources": ["AUA-APC-S28"]},
    {"id": "T-2", "question": "And if he has a BRCA2 variant?",
     "history": [{"role": "user", "content": "Next line after docetaxel?"}, {"role": "assistant", "content": "Cabazitaxel."}],
     "must_have": [{"point": "olaparib", "keywords": ["olaparib"]}], "gold_therapies": [["olaparib"], ["rucaparib"]]},
    {"id": "T-3", "question": "Dose of vincristine in a child?", "expect_abstain": True},
    {"id": "T-4", "question": "Radium for liver metastases?",
     "forbidden": [{"claim": "radium-223 is appropriate", "keywords": ["radium-223 is an option"]}]},
]
SCRIPT = {
    CASES[0]["question"]: {"text": "Offer cabazitaxel [1]. Do not use rechallenge with docetaxel."},
    CASES[1]["question"]: {"text": "Olaparib is an option [1][7]."},
    CASES[3]["question"]: {"text": "Radium-223 is an option [1]."},
}


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    p = tmp_path / "qa.jsonl"
    p.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    return p


@pytest.fixture
def scripted() -> ScriptedAssistant:
    return ScriptedAssistant(SCRIPT)


@pytest.fixture
def factory_for():
    def make(assistant: ScriptedAssistant, probe=None):
        built: list[str] = []

        def factory(cfg: EvalConfig) -> BuiltConfig:
            built.append(cfg.name)
            return BuiltConfig(answerer=assistant, recall_probe=probe)

        factory.built = built  # type: ignore[attr-defined]
        return factory

    return make
