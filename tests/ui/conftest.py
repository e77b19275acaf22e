"""Fakes and helpers for the UI tests: a scripted assistant with the pipeline's streaming interface,
a free port, and an app served in-process on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from assistant.errors import StoreError
from assistant.models import (
    Answer,
    AnswerEvent,
    Biomarker,
    Citation,
    Finding,
    PatientContext,
    TherapyExposure,
    VerificationReport,
)

XSS_PASSAGE = (
    'Cabazitaxel after docetaxel improved survival. <script>window.__pwned=1</script> '
    '<img src=x onerror="window.__pwned=2"> [click](javascript:window.__pwned=3) ${7*7} {{constructor}}'
)
XSS_ANSWER = (
    "## Bottom line\nCabazitaxel is an option [1]. <script>window.__pwned=4</script>"
    '<img src=x onerror="window.__pwned=5"> See [this](javascript:window.__pwned=6) and '
    "<a href=\"javascript:window.__pwned=7\">that</a>."
)

_GENES = ("BRCA1", "BRCA2", "ATM", "CHEK2", "PALB2")
_THERAPIES = {"docetaxel": "docetaxel", "abiraterone": "abiraterone", "zytiga": "abiraterone",
              "pluvicto": "lu177_psma617", "lu-177": "lu177_psma617", "cabazitaxel": "cabazitaxel"}


def _extract(text: str, ctx: PatientContext) -> PatientContext:
    """A tiny keyword extractor: enough for the UI's flows, nothing clinical depends on it."""
    low = text.lower()
    data = ctx.model_copy(deep=True)
    if "mcrpc" in low or ("castrat" in low and "resistant" in low):
        data.disease_state = "mCRPC"
        if "prostate_cancer" not in data.diagnoses:
            data.diagnoses.append("prostate_cancer")
    for gene in _GENES:
        if re.search(rf"\bno {gene.lower()}\b|\bnot {gene.lower()}\b", low):
            data.biomarkers = [b for b in data.biomarkers if b.name != gene]
        elif gene.lower() in low and all(b.name != gene for b in data.biomarkers):
            data.biomarkers.append(Biomarker(name=gene, mention=gene))
    for word, tid in _THERAPIES.items():
        if word in low and all(t.therapy != tid for t in data.therapies):
            data.therapies.append(TherapyExposure(therapy=tid, status="progressed", mention=word))
    m = re.search(r"ecog\s*(\d)", low)
    if m:
        data.ecog = int(m.group(1))
    return data


@dataclass
class FakeAssistant:
    """Scripted stand-in for ``assistant.pipeline.Assistant``: plan → deltas → final, deterministic."""

    passage_extra: str = ""
    answer_extra: str = ""
    fail_with: Exception | None = None
    backend: str = "none"
    banner: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def citations(self) -> list[Citation]:
        return [
            Citation(number=1, doc_id="aua-apc", title="Advanced prostate cancer — AUA digest", organisation="AUA",
                     year="2023", section="mCRPC › After docetaxel", chunk_id="aua-apc::c1", rec_id="AUA-S28",
                     strength="Moderate Recommendation", last_reviewed="2026-11-29",
                     url="https://www.auanet.org/guidelines",
                     passage="Offer cabazitaxel to patients with mCRPC who progressed after docetaxel. "
                             "It improved survival over a second androgen pathway drug. " + self.passage_extra),
            Citation(number=2, doc_id="lbl-olaparib", title="Olaparib label digest", organisation="FDA",
                     year="2023", section="Indications", chunk_id="lbl-olaparib::c1", rec_id="LBL-OLA-IND",
                     strength="FDA-approved indication", last_reviewed="2026-11-29", url="javascript:alert(1)",
                     passage="Olaparib is indicated for HRR gene-mutated mCRPC after enzalutamide or abiraterone. "
                             "BRCA2 carriers benefit most."),
            Citation(number=3, doc_id="old-guideline", title="Prostate cancer guideline", organisation="EAU",
                     year="2014", section="Old section", chunk_id="old::c1", unverified=True,
                     passage="An older edition statement about monitoring PSA every three months."),
        ]

    def ask_stream(self, question: str, *, patient: str | None = None, history: list[dict[str, str]] | None = None,
                   audience: str = "clinician", context: PatientContext | None = None,
                   context_is_final: bool = False) -> Iterator[AnswerEvent]:
        with self._lock:
            self.calls.append({"question": question, "patient": patient, "history": history,
                               "audience": audience, "context": context, "context_is_final": context_is_final})
        if self.fail_with is not None:
            raise self.fail_with
        ctx = context or PatientContext()
        for msg in history or []:
            if msg["role"] == "user" and context is None:
                ctx = _extract(msg["content"], ctx)
        if not (context_is_final and context is not None):  # a corrected context is not re-read from the question
            ctx = _extract(question, ctx)
        ctx = _extract(patient or "", ctx)
        cites = self.citations()
        genes = {b.name for b in ctx.biomarkers}
        findings: list[Finding] = []
        if genes & {"BRCA1", "BRCA2", "ATM"}:
            findings.append(Finding(rule_id="PCA-OLAPARIB", kind="recommend", therapy="olaparib", title="Olaparib",
                                    reason="HRR alteration in a label gene after an ARPI.", citations=[2], refs=["LBL-OLA-IND"]))
        findings.append(Finding(rule_id="PCA-CABAZITAXEL", kind="recommend" if not findings else "consider",
                                therapy="cabazitaxel", title="Cabazitaxel", reason="Progressed after docetaxel.",
                                citations=[1], refs=["AUA-S28"], preference=1))
        if any(t.therapy == "lu177_psma617" for t in ctx.therapies):
            findings.append(Finding(rule_id="PCA-LU-RECHALLENGE", kind="exclude", therapy="lu177_psma617",
                                    title="Lu-177-PSMA-617", reason="PSA rose during treatment.", citations=[]))
        findings.append(Finding(rule_id="PCA-ASK-VISCERAL", kind="ask", reason="Are there visceral metastases?"))
        yield AnswerEvent(kind="plan", findings=findings, citations=cites, patient_context=ctx)
        top = findings[0]
        lead = "In short" if audience == "patient" else "Bottom line"
        text = (f"## {lead}\n\nFor this patient, **{top.therapy}** is the preferred option [{top.citations[0]}]. "
                f"Monitoring PSA every three months is described in an older edition [3].\n\n{self.answer_extra}")
        for piece in re.findall(r"\S+\s*", text):
            yield AnswerEvent(kind="delta", text=piece)
        answer = Answer(question=question, answer_markdown=text, citations=cites, findings=findings,
                        patient_context=ctx, follow_ups=[f"What monitoring does {top.therapy} need?",
                                                         "What if there are visceral metastases?",
                                                         "Which clinical trials fit this patient?"],
                        backend=self.backend, banner=self.banner,
                        verification=VerificationReport(checked=["citations"], verified=True, mode="composer"),
                        corpus_version="test-corpus-1", model="")
        yield AnswerEvent(kind="final", answer=answer)


@pytest.fixture
def fake_assistant() -> FakeAssistant:
    return FakeAssistant()


@pytest.fixture
def store_error() -> StoreError:
    return StoreError("index missing: run `guiderail ingest`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served_app(tmp_path):
    """Start an app on 127.0.0.1 with a given assistant factory; closes it after the test."""
    started: list[Any] = []

    def start(factory, **overrides):
        from assistant.settings import load_settings
        from assistant.web.app import build_app

        values = {"data_dir": tmp_path / "data", "port": free_port(), **overrides}
        settings = load_settings("rules-only", **values)
        demo = build_app(factory, settings)
        demo.launch(server_name="127.0.0.1", server_port=settings.port, prevent_thread_lock=True, quiet=True,
                    show_error=False, ssr_mode=False)
        started.append(demo)
        return demo, f"http://127.0.0.1:{settings.port}/"

    yield start
    for demo in started:
        demo.close()
        demo.guiderail_exports.close()
