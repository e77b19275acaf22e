"""Fakes for the answer pipeline (imported by conftest.py and the tests): a scripted chat model, a fixed retriever, a fixed rule engine and context.

The scenario is a generic mCRPC patient after docetaxel, abiraterone and Lu-177-PSMA: one recommended
option, one to consider, one excluded therapy (Lu-177-PSMA, brand Pluvicto), one warning and one
open question — enough to exercise every check. Passage texts are written for the tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from assistant.models import Biomarker, Finding, PatientContext, RetrievedPassage, TherapyExposure


class ScriptedChatModel(BaseChatModel):
    """Returns its scripted answers in turn (the last one repeats); can fail, hang or stream slowly."""

    responses: list[str] = Field(default_factory=list)
    error: str | None = None
    delay_s: float = 0.0
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    call_kwargs: list[dict[str, Any]] = Field(default_factory=list)
    _i: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self, messages: list[BaseMessage]) -> str:
        with self._lock:
            self.prompts.append(list(messages))
            if self.error:
                raise RuntimeError(self.error)
            text = self.responses[min(self._i, len(self.responses) - 1)]
            self._i += 1
            return text

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._next(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Iterator[ChatGenerationChunk]:
        self.call_kwargs.append(dict(kw))
        text = self._next(messages)
        for piece in text.split(" "):
            if self.delay_s:
                time.sleep(self.delay_s)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece + " "))


def _p(n: str, text: str, rec: str, score: float = 0.9, **kw: Any) -> RetrievedPassage:
    return RetrievedPassage(
        chunk_id=f"chunk-{n}",
        doc_id=kw.pop("doc_id", "test-guideline"),
        text=text,
        title=kw.pop("title", "Test guideline digest"),
        issuing_body=kw.pop("issuing_body", "TESTBODY"),
        year="2024",
        section_path=kw.pop("section_path", f"mCRPC › {n}"),
        rec_id=rec,
        strength=kw.pop("strength", "Moderate"),
        last_reviewed="2026-11-01",
        score=score,
        **kw,
    )


PASSAGES = {
    "REC-CABA": _p("caba", "Cabazitaxel with prednisone is offered to men with metastatic castration-resistant prostate cancer whose disease progressed after docetaxel; it prolonged overall survival compared with mitoxantrone.", "REC-CABA"),
    "REC-OLA": _p("ola", "Olaparib is an option for metastatic castration-resistant prostate cancer with a deleterious homologous recombination repair gene alteration after progression on abiraterone or enzalutamide. Blood counts are checked monthly because anaemia is common.", "REC-OLA"),
    "REC-LU": _p("lu", "Lutetium-177 PSMA-617 is used for PSMA-positive metastatic castration-resistant prostate cancer after an androgen-receptor pathway inhibitor; there is no evidence supporting re-treatment after progression during therapy.", "REC-LU"),
    "REC-RA": _p("ra", "Radium-223 must not be combined with abiraterone and prednisone because the combination increased fractures and deaths.", "REC-RA", unverified=True),
    "REC-GEN": _p("gen", "Germline and tumour testing for homologous recombination repair genes is recommended for all men with metastatic prostate cancer to guide PARP inhibitor use.", "REC-GEN"),
}
EXTRA = _p("mon", "During treatment of metastatic castration-resistant prostate cancer, PSA, imaging and symptoms are monitored; PSA alone should not prompt a change of therapy.", "REC-MON", score=0.7)


def scenario_findings() -> list[Finding]:
    return [
        Finding(rule_id="R-CABA", kind="recommend", therapy="cabazitaxel", reason="Disease progressed after docetaxel; cabazitaxel prolonged overall survival after docetaxel.", preference=1, strength="Moderate", refs=["REC-CABA"]),
        Finding(rule_id="R-OLA", kind="consider", therapy="olaparib", reason="Olaparib needs a deleterious homologous recombination repair gene alteration, which is not yet known.", preference=2, refs=["REC-OLA"]),
        Finding(rule_id="R-LU", kind="exclude", therapy="lu177_psma617", reason="PSA rose during Lu-177-PSMA therapy; there is no evidence supporting re-treatment after progression.", refs=["REC-LU"]),
        Finding(rule_id="R-RA", kind="warn", therapy="radium223", reason="Radium-223 must not be combined with abiraterone and prednisone (more fractures and deaths).", severity="high", refs=["REC-RA"]),
        Finding(rule_id="R-ASK", kind="ask", reason="Has germline and tumour homologous recombination repair testing been done?", refs=["REC-GEN"]),
    ]


def scenario_context(*_a: Any, **_k: Any) -> PatientContext:
    return PatientContext(
        diagnoses=["prostate_cancer"],
        disease_state="mCRPC",
        castration="orchiectomy",
        therapies=[
            TherapyExposure(therapy="docetaxel", classes=["taxane"], status="progressed"),
            TherapyExposure(therapy="abiraterone", classes=["ARPI"], status="progressed"),
            TherapyExposure(therapy="lu177_psma617", classes=["PSMA_radioligand"], status="progressed"),
        ],
        biomarkers=[Biomarker(name="CHEK2", result="pathogenic")],
    )


class FakeRetriever:
    def __init__(self, hits: list[RetrievedPassage] | None = None, by_ref: dict[str, RetrievedPassage] | None = None):
        self.hits = [PASSAGES["REC-GEN"], EXTRA] if hits is None else hits
        self.by_ref = PASSAGES if by_ref is None else by_ref
        self.queries: list[str] = []

    def retrieve(self, query: str, k: int | None = None, filters: Any = None) -> list[RetrievedPassage]:
        self.queries.append(query)
        return list(self.hits)[: k or 6]

    def passages_for_refs(self, refs: list[str]) -> dict[str, list[RetrievedPassage]]:
        return {r: [self.by_ref[r]] for r in refs if r in self.by_ref}


class FakeEngine:
    def __init__(self, findings: list[Finding] | None = None):
        self.findings = scenario_findings() if findings is None else findings

    def evaluate(self, ctx: PatientContext) -> list[Finding]:
        return list(self.findings)


class FakeLexicon:
    """A therapy lexicon (`assistant.answer.protocols.LexiconLike`) for the scenario's three therapies, no classes."""

    names: ClassVar[dict[str, list[str]]] = {
        "lu177_psma617": ["lu177_psma617", "Lu-177-PSMA", "Pluvicto", "lutetium-177", "177Lu-PSMA-617"],
        "cabazitaxel": ["cabazitaxel", "cabazitaxel", "Jevtana"],
        "olaparib": ["olaparib", "olaparib", "Lynparza"],
    }

    def __init__(self) -> None:
        self.entries = {k: SimpleNamespace(id=k, names=v[1:], classes=[]) for k, v in self.names.items()}

    def names_of(self, therapy_id: str) -> list[str]:
        return self.names.get(therapy_id, [therapy_id])

    def classes_of(self, therapy_id: str) -> list[str]:
        return []

    def matches(self, therapy_id: str, token: str) -> bool:
        return therapy_id == token


class FakeKnowledge:
    """Corpus knowledge (`assistant.answer.protocols.KnowledgeBase`): the lexicon above, no digests or approvals."""

    lexicon = FakeLexicon()
    version = "test-corpus-1"
    digests: ClassVar[dict[str, Any]] = {}
    conditions: tuple[str, ...] = ()
    approvals: ClassVar[list[Any]] = []
    oncology = None


GOOD_ANSWER = """## Bottom line
Cabazitaxel is the preferred next option because the disease progressed after docetaxel and cabazitaxel prolonged overall survival [1].

## Options that fit this patient
1. Cabazitaxel with prednisone after docetaxel progression prolonged overall survival compared with mitoxantrone [1].
2. Olaparib is an option after progression on abiraterone when a deleterious homologous recombination repair alteration is found [2].

## Not recommended for this patient
- Lu-177-PSMA is not recommended: there is no evidence supporting re-treatment after progression during therapy [3].

## Pitfalls
- Radium-223 must not be combined with abiraterone and prednisone because fractures and deaths increased [4].

## Monitoring
- Blood counts are checked monthly on olaparib because anaemia is common [2].

## Next steps / trials
- Germline and tumour homologous recombination repair testing is recommended to guide PARP inhibitor use [5].
"""
