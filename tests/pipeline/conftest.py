"""Fixtures for the pipeline tests: the real `Knowledge` and `RuleEngine` over the fixture corpus (tests/fixtures/
corpus), its passages as a retriever returns them, and the scenario patient.

The scenario is a generic mCRPC patient after docetaxel, abiraterone and Lu-177-PSMA with a CHEK2 alteration: the
fixture rules give one recommended option (R-CABA), one to consider (R-OLA), one excluded therapy (R-LU:
Lu-177-PSMA, brand Pluvicto), one warning (R-RA) and one open question (R-ASK) — enough to exercise every check.
Retrieval is a `FakeRetriever` over the corpus's own passages, so each test chooses its hits exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from assistant.knowledge import Knowledge
from assistant.models import Biomarker, PatientContext, RetrievedPassage, TherapyExposure
from assistant.pipeline import Assistant
from assistant.rules import RuleEngine
from assistant.settings import load_settings
from assistant.testing.fakes import FakeRetriever, corpus_passage

# Every recommendation block of the fixture digest; REC-MON is the one retrieved passage no rule cites.
REFS = ("REC-CABA", "REC-OLA", "REC-LU", "REC-RA", "REC-GEN", "REC-MON")


def _scenario_context(*_a: Any, **_k: Any) -> PatientContext:
    """The scenario patient; also usable as the `extract_context` stage (it ignores the text)."""
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


@pytest.fixture(scope="session")
def scenario_context() -> Callable[..., PatientContext]:
    """The function that returns a fresh scenario patient (whatever it is called with)."""
    return _scenario_context


@pytest.fixture(scope="session")
def knowledge(fixture_corpus_knowledge: Knowledge) -> Knowledge:
    return fixture_corpus_knowledge


@pytest.fixture(scope="session")
def engine(knowledge: Knowledge) -> RuleEngine:
    return RuleEngine(knowledge)


@pytest.fixture(scope="session")
def passages(knowledge: Knowledge) -> dict[str, RetrievedPassage]:
    """Each block as a retrieved passage; the unrelated monitoring passage scores lower, as a search would rank it."""
    return {ref: corpus_passage(knowledge, ref, score=0.7 if ref == "REC-MON" else 0.9) for ref in REFS}


@pytest.fixture
def make_retriever(passages: dict[str, RetrievedPassage]) -> Callable[..., FakeRetriever]:
    """`make_retriever(hits=None)`: every block by reference; search hits default to REC-GEN and REC-MON."""

    def make(hits: Sequence[RetrievedPassage] | None = None) -> FakeRetriever:
        return FakeRetriever(passages, [passages["REC-GEN"], passages["REC-MON"]] if hits is None else hits)

    return make


@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path, llm="none", llm_timeout_s=5.0)


@pytest.fixture
def make_assistant(settings, fake_embedder, knowledge, engine, make_retriever):
    """`make_assistant(chat_model=None, *, retriever=None, engine=None, settings={...}, **Assistant kwargs)`: the
    real knowledge and rule engine over the fixture corpus unless a test passes its own engine."""
    rule_engine = engine

    def make(chat_model: Any = None, *, retriever: Any = None, engine: Any = None, **kw: Any) -> Assistant:
        s = settings if chat_model is None else settings.model_copy(update={"llm": "openai", **kw.pop("settings", {})})
        return Assistant(
            s,
            retriever=retriever or make_retriever(),
            engine=engine or rule_engine,
            knowledge=knowledge,
            chat_model=chat_model,
            embedder=fake_embedder,
            extract_context=_scenario_context,
            **kw,
        )

    return make
