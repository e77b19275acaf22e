"""The one call every entry point uses: question (+ patient, history, prior context) → cited, rule-checked,
verified answer — whole (`ask`) or streamed (`ask_stream`: plan first, then text, then the final record).

Flow, one way: validate → patient context → retrieval query → rule findings → safety screen → passages for the
findings' refs + retrieved passages, numbered (`answer.citations`) → plan event → abstain? (`answer.scope`) →
compose once (`answer.compose`) → the model's draft, checked and repaired (`answer.generate`), or the composed
text → final check (`answer.repair.finalize`) → render (`answer.render`) → Answer.

`Assistant` receives every dependency (retriever, knowledge, rule engine, chat model, embedder) in its
constructor so tests pass fakes (the protocols are in `answer.protocols`); `build_assistant` builds the real
ones, or takes any of them ready-made. LLM failures never escape: a down, slow or garbage-producing model yields
the composer's answer with a banner.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.answer import prompts
from assistant.answer.citations import number_sources
from assistant.answer.compose import ComposedAnswer, compose_answer, ensure_bottom_line, with_plan_sections
from assistant.answer.generate import Writer
from assistant.answer.prompts import prompt_passage_order
from assistant.answer.protocols import (
    ChatModel,
    EmbedderLike,
    Engine,
    KnowledgeBase,
    LexiconLike,
    Preloadable,
    Retriever,
    SafetyScreen,
)
from assistant.answer.render import render_answer
from assistant.answer.repair import finalize
from assistant.answer.scope import ScopeJudge, abstention_text, coverage_topics, focused_question, near_topics
from assistant.answer.support import LEXICAL_ONLY_THRESHOLD, SupportScorer
from assistant.answer.verify import inspect_answer
from assistant.errors import LLMError, QuestionError, StoreError
from assistant.logging_setup import register_patient_text
from assistant.models import (
    Answer,
    AnswerEvent,
    AnswerPlan,
    Citation,
    Finding,
    PatientContext,
    RetrievedPassage,
    VerificationReport,
    final_answer,
)
from assistant.population import population_mismatch
from assistant.retrieval import best_reading, relevance_of, retrieval_query
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.knowledge import Knowledge
    from ingest.embedder import Embedder
    from ingest.store import IndexStore

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- pure helpers
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_question(question: object, max_chars: int) -> str:
    """Strip control characters and whitespace; reject empty or over-long questions (QuestionError)."""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, got {type(question).__name__}")
    text = unicodedata.normalize("NFC", _CONTROL.sub(" ", question)).strip()
    text = re.sub(r"[ \t]+", " ", text)
    if not text:
        raise QuestionError("the question is empty")
    if len(text) > max_chars:
        raise QuestionError(f"the question is {len(text):,} characters long; the limit is {max_chars:,}")
    return text







def excluded_label_docs(plan: AnswerPlan, knowledge: KnowledgeBase | None) -> list[str]:
    """Label documents (digests and rendered safety checks) whose drug the plan excludes for this patient."""
    lexicon = knowledge.lexicon if knowledge is not None else None
    digests = (knowledge.digests if knowledge is not None else None) or {}
    offered = {p for t in plan.must_mention for p in t.split("+")}
    excluded = {
        p
        for f in plan.findings
        if f.kind == "exclude" and f.therapy
        for p in f.therapy.split("+")
        if p not in offered
    }
    if not excluded or lexicon is None:
        return []
    out = []
    for d in digests.values():
        drug = str((d.meta or {}).get("drug", "") or "")
        if d.kind != "label" or not drug:
            continue
        parts = drug.split("+")
        # The label's drug (or, for a class profile, any excluded member of its class) is excluded.
        if any(p in excluded or any(lexicon.matches(x, p) for x in excluded) for p in parts) and not (
            set(parts) & offered
        ):
            out.append(d.doc_id)
    return sorted(out)



@dataclass
class _Prepared:
    question: str
    ctx: PatientContext
    plan: AnswerPlan
    citations: list[Citation]
    abstain: bool
    timings: dict[str, float] = field(default_factory=dict)
    user_text: str = ""
    unapproved: list[str] = field(default_factory=list)
    near_topics: list[str] = field(default_factory=list)


_Clock = Callable[[], float]


class Assistant:
    """Answers questions from the corpus; every dependency is injected."""

    def __init__(
        self,
        settings: Settings,
        *,
        retriever: Retriever,
        engine: Engine,
        knowledge: KnowledgeBase | None = None,
        chat_model: ChatModel | None = None,
        embedder: EmbedderLike | None = None,
        extract_context: Callable[..., PatientContext] | None = None,
        plan_builder: Callable[..., AnswerPlan] | None = None,
        max_sources: int = 20,
        repair_policy: str = "auto",
        answer_style: str | None = None,
        clock: _Clock = time.perf_counter,
    ) -> None:
        if repair_policy not in ("auto", "regenerate", "strike"):
            raise ValueError(f"repair_policy must be auto, regenerate or strike, got {repair_policy!r}")
        if answer_style not in (None, "sections", "summary"):
            raise ValueError(f"answer_style must be sections or summary, got {answer_style!r}")
        # The embedded 1.5B model cannot hold six sections together (it repeats plan lines under every
        # heading) and writing them takes ~20 s on 2 cores: it writes the cited summary, code renders
        # the sections from the plan. Served models write the whole structured answer.
        self.answer_style = answer_style or ("summary" if settings.llm == "local" else "sections")
        self.settings = settings
        self.retriever = retriever
        self.engine = engine
        self.knowledge = knowledge
        self.chat_model = chat_model
        self.embedder = embedder
        # Resolve the default stages now (not at import, not on the first question): importing them
        # costs ~0.3 s, which would otherwise land inside the first answer's 1 s plan budget.
        if extract_context is None:
            from assistant.patient import extract_context
        if plan_builder is None:
            from assistant.plan import build_plan as plan_builder
        self._extract = extract_context
        self._plan_builder = plan_builder
        self.max_sources = max_sources
        self.repair_policy = repair_policy
        self._clock = clock
        # Passage-sentence embeddings repeat across questions: one scorer (and cache) per assistant.
        self._scorer = SupportScorer(embedder)
        self._lexical_scorer = SupportScorer(None, threshold=LEXICAL_ONLY_THRESHOLD)
        self._scope = ScopeJudge(knowledge, retriever, engine, extract_context)
        self._writer = (
            None
            if chat_model is None
            else Writer(
                chat_model, settings, clock=clock, answer_style=self.answer_style, repair_policy=repair_policy,
                scorer=self._scorer,
            )
        )

    # ------------------------------------------------------------ public API
    def warm_up(self, *, load_llm: bool = False) -> None:
        """Pay one-time costs now (index load, JIT, caches; optionally the local model) so the first
        question's plan arrives within the 1 s budget."""
        try:
            # One full preparation + composition (no LLM): loads the index, compiles regexes, fills caches.
            prep = self._prepare("metastatic prostate cancer after docetaxel", None, None, None, self._clock())
            body = compose_answer(prep.question, prep.plan, prep.citations, prep.ctx).body
            inspect_answer(body, citations=prep.citations, plan=prep.plan, scorer=self._lexical_scorer)
        except Exception as exc:  # warming is best-effort; the real question reports real errors
            log.debug("warm-up failed: %s", exc)
        if load_llm and isinstance(self.chat_model, Preloadable):
            try:
                self.chat_model.load()
            except Exception as exc:
                log.warning("could not pre-load the language model: %s", exc)

    @property
    def backend(self) -> str:
        return "none" if self.chat_model is None else self.settings.llm

    def ask(
        self,
        question: str,
        *,
        patient: str | None = None,
        history: Sequence[Mapping[str, str]] | None = None,
        audience: str = "clinician",
        context: PatientContext | None = None,
        context_is_final: bool = False,
    ) -> Answer:
        return final_answer(
            self.ask_stream(
                question,
                patient=patient,
                history=history,
                audience=audience,
                context=context,
                context_is_final=context_is_final,
            )
        )

    def ask_stream(
        self,
        question: str,
        *,
        patient: str | None = None,
        history: Sequence[Mapping[str, str]] | None = None,
        audience: str = "clinician",
        context: PatientContext | None = None,
        context_is_final: bool = False,
    ) -> Iterator[AnswerEvent]:
        """Events: 'plan' (findings, numbered citations, patient context), 'delta' text, then 'final'.

        'delta' text is the raw draft as it is generated; the 'final' answer is the verified/repaired
        version and replaces it. With `context_is_final` the given context is the clinician's own
        corrected record: the question is not re-read for facts (it would undo the correction), only
        the `patient` text is read on top of it.
        """
        # Whatever this question says about the patient is redacted from every log record (privacy by default).
        register_patient_text(question if isinstance(question, str) else None, patient, history)
        if audience not in ("clinician", "patient"):
            raise QuestionError(f"audience must be 'clinician' or 'patient', got {audience!r}")
        t0 = self._clock()
        q = clean_question(question, self.settings.max_question_chars)
        if patient is not None:
            patient = clean_question(patient, self.settings.max_question_chars) if patient.strip() else None
        prep = self._prepare(q, patient, history, context, t0, context_is_final=context_is_final)
        prep.timings["plan_ready"] = self._ms(t0)
        yield AnswerEvent(kind="plan", findings=prep.plan.findings, citations=prep.citations, patient_context=prep.ctx)

        if prep.abstain:
            yield AnswerEvent(kind="final", answer=self._abstain(prep, t0))
            return
        answer = yield from self._generate(prep, audience, t0)
        yield AnswerEvent(kind="final", answer=answer)

    # ------------------------------------------------------------ stages
    def _ms(self, since: float) -> float:
        return round((self._clock() - since) * 1000.0, 2)

    def _lexicon(self) -> LexiconLike | None:
        return self.knowledge.lexicon if self.knowledge is not None else None

    def _corpus_version(self) -> str:
        return str((self.knowledge.version if self.knowledge is not None else "") or "")

    def _model_name(self) -> str:
        return "" if self._writer is None else self._writer.model_name

    def _display_names(self, plan: AnswerPlan) -> dict[str, str]:
        """Therapy id → the name clinicians read (the lexicon's first name)."""
        lex = self._lexicon()
        out: dict[str, str] = {}
        for f in plan.findings:
            if not f.therapy or lex is None:
                continue
            entry = lex.entries.get(f.therapy)
            if entry is not None and entry.names:
                out[f.therapy] = entry.names[0]
            elif "+" in f.therapy:
                # A regimen: every component by its first name ("amivantamab + lazertinib").
                parts = []
                for p in f.therapy.split("+"):
                    e = lex.entries.get(p)
                    parts.append(e.names[0] if e is not None and e.names else p.replace("_", " "))
                out[f.therapy] = " + ".join(parts)
            else:
                names = [n for n in lex.names_of(f.therapy) if n != f.therapy]
                if names:
                    out[f.therapy] = names[0]
        return out

    def _prepare(
        self,
        q: str,
        patient: str | None,
        history: Sequence[Mapping[str, str]] | None,
        prior: PatientContext | None,
        t0: float,
        *,
        context_is_final: bool = False,
    ) -> _Prepared:
        timings: dict[str, float] = {"validate": self._ms(t0)}
        t = self._clock()
        extract = self._extract
        text = f"{patient}\n{q}" if patient else q
        if context_is_final and prior is not None:
            ctx = extract(patient, prior=prior, lexicon=self._lexicon()) if patient else prior
        else:
            ctx = extract(text, history=list(history) if history else None, prior=prior, lexicon=self._lexicon())
        timings["context"] = self._ms(t)

        t = self._clock()
        findings = list(self.engine.evaluate(ctx))
        timings["rules"] = self._ms(t)

        t = self._clock()
        refs = list(dict.fromkeys(r for f in findings for r in f.refs))
        by_ref = self.retriever.passages_for_refs(refs) if refs else {}
        focused = focused_question(q)
        hits = self.retriever.retrieve(retrieval_query(focused, ctx), k=self.settings.top_k)
        if focused != q:
            # a long vignette: its opening and asking sentences lead retrieval, and the whole text (which names
            # the condition where the opening only describes it — "anti-CCP positive", "lipase eight times") may
            # find the passage with a higher relevance; each passage keeps its best reading
            hits = best_reading(hits, self.retriever.retrieve(q, k=self.settings.top_k), k=self.settings.top_k)
        # A passage written for another population (adults for a child, non-pregnant women for a pregnant
        # one) is never quoted to this patient; rule-backed passages were chosen for the patient already.
        other_tumour = self._scope.other_tumour_records(ctx)
        relevant = [
            p
            for p in hits
            if relevance_of(p) >= self.settings.min_relevance
            and population_mismatch(f"{p.population} › {p.section_path}", ctx) is None
            and (p.rec_id or "") not in other_tumour
        ]
        timings["retrieval"] = self._ms(t)

        t = self._clock()
        self._safety_screen(text, ctx, findings, by_ref, relevant)
        timings["safety_screen"] = self._ms(t)

        t = self._clock()
        citations, numbered = number_sources(findings, by_ref, relevant, max_sources=self.max_sources)
        plan = self._plan_builder(numbered, ctx, self._lexicon())
        banned = excluded_label_docs(plan, self.knowledge)
        if banned:
            plan = plan.model_copy(update={"excluded_docs": banned})
        timings["plan"] = self._ms(t)
        verdict = self._scope.decide(q, ctx, numbered, citations, by_ref, relevant, timings)
        user_text = f"{text}\n{prompts.format_patient(ctx)}"
        return _Prepared(
            question=q, ctx=ctx, plan=plan, citations=citations, abstain=verdict.abstain, timings=timings,
            user_text=user_text, unapproved=verdict.unapproved, near_topics=near_topics(hits),
        )

    def _safety_screen(
        self,
        text: str,
        ctx: PatientContext,
        findings: list[Finding],
        by_ref: dict[str, list[RetrievedPassage]],
        relevant: Sequence[RetrievedPassage],
    ) -> None:
        """Any drug the question or a passage names could end up in the answer (the composer quotes passages, an
        LLM paraphrases them); those the label forbids for this patient join ``findings`` (and their passages
        ``by_ref``)."""
        engine = self.engine
        if not isinstance(engine, SafetyScreen):
            return
        asked = engine.drugs_in(text)
        texts = [*(p.text for p in relevant), *(p.text for ps in by_ref.values() for p in ps)]
        named = [d for tx in texts for d in engine.drugs_in(tx)]
        extra = list(engine.screen(ctx, asked, findings))
        # Drugs only the passages name: forbidden for this answer (the plan's must-not list, the rule panel),
        # but not listed under "Not recommended" — a pregnant woman's DVT answer need not list prostate drugs.
        lex = self._lexicon()
        topic_classes = {
            c
            for f in [*findings, *extra]
            if f.therapy and lex is not None
            for c in lex.classes_of(f.therapy)
        }
        for f in engine.screen(ctx, named, [*findings, *extra]):
            related = lex is not None and bool(set(lex.classes_of(f.therapy or "")) & topic_classes)
            # A sibling of what the question is about (warfarin beside the heparins) is listed; others are not.
            extra.append(f if related else f.model_copy(update={"severity": "screen"}))
        if extra:
            findings.extend(extra)
            more = [r for f in extra for r in f.refs if r not in by_ref]
            if more:
                by_ref.update(self.retriever.passages_for_refs(list(dict.fromkeys(more))))

    def _abstain(self, prep: _Prepared, t0: float) -> Answer:
        body = abstention_text(
            prep.ctx, prep.plan, near_topics=prep.near_topics, unapproved=prep.unapproved, knowledge=self.knowledge
        )
        report = VerificationReport(checked=["relevance"], failed=["relevance: no passage above min_relevance"], mode="abstain", verified=False)
        prep.timings["total"] = self._ms(t0)
        return Answer(
            question=prep.question,
            answer_markdown=render_answer(body, []),
            citations=[],
            findings=prep.plan.findings,
            patient_context=prep.ctx,
            abstained=True,
            verification=report,
            # Point to what the corpus can answer instead (its own topics, not a fixed list).
            follow_ups=[f"What do the guidelines say about {t}?" for t in coverage_topics(self.knowledge)[:3]],
            backend=self.backend,
            timings_ms=prep.timings,
            corpus_version=self._corpus_version(),
            model=self._model_name(),
        )

    def _generate(self, prep: _Prepared, audience: str, t0: float) -> Iterator[AnswerEvent]:
        """Yields 'delta' events; returns the final Answer (a generator with a return value)."""
        t = self._clock()
        banner: str | None = None
        mode = "composer"
        text: str | None = None
        repaired_notes: list[str] = []
        failed_notes: list[str] = []
        composed: ComposedAnswer | None = None

        def composition() -> ComposedAnswer:
            # Composed once per answer, from the final plan (after the draft's own drugs were screened), and
            # reused: the fallback text, the sections around a model's summary, the missing bottom line, follow-ups.
            nonlocal composed
            if composed is None:
                composed = compose_answer(
                    prep.question, prep.plan, prep.citations, prep.ctx, audience=audience,
                    display_names=self._display_names(prep.plan),
                )
            return composed

        writer = self._writer
        if writer is not None:
            try:
                built = prompts.build_messages(
                    prep.question,
                    prep.plan,
                    prep.citations,
                    prep.ctx,
                    audience=audience,
                    count_tokens=writer.token_counter(),
                    budget=writer.prompt_budget(),
                    passage_order=prompt_passage_order(prep.plan, prep.citations),
                    style=self.answer_style,
                )
                if built.prompt_tokens is not None:
                    prep.timings["prompt_tokens"] = float(built.prompt_tokens)
                raw = ""
                first = True
                for piece in writer.stream(built.system, built.user, t0=t, **writer.gen_kwargs()):
                    if first:
                        prep.timings["first_token"] = self._ms(t0)
                        first = False
                    raw += piece
                    yield AnswerEvent(kind="delta", text=piece)
                prep.timings["generate"] = self._ms(t)
                draft = writer.check(
                    raw, plan=prep.plan, citations=prep.citations, user_text=prep.user_text, built=built, t_gen=t,
                    timings=prep.timings, screen_draft=lambda draft_text, _plan: self._screen_draft(draft_text, prep),
                )
                text, mode, failed_notes, repaired_notes = draft.text, draft.mode, draft.failed, draft.repaired
                if text is None:
                    banner = prompts.FALLBACK_BANNER.format(reason="its answer could not be repaired")
                elif self.answer_style == "summary":
                    text = with_plan_sections(text, composition())
                else:
                    text, note = ensure_bottom_line(text, composition(), audience)
                    if note:
                        repaired_notes.append(note)
            except LLMError as exc:
                log.warning("LLM backend failed, using the composer: %s", exc)
                banner = prompts.FALLBACK_BANNER.format(reason=str(exc)[:160])
                failed_notes.append(f"llm: {exc}")
                text, mode = None, "composer-fallback"
        if text is None:
            t_c = self._clock()
            body = composition().body
            if self.chat_model is None:
                for line in body.splitlines(keepends=True):
                    yield AnswerEvent(kind="delta", text=line)
                prep.timings["first_token"] = self._ms(t0)
            prep.timings["compose"] = self._ms(t_c)
            text = body
            if mode != "composer-fallback":
                mode = "composer"
        prep.timings.setdefault("generate", self._ms(t))

        # Final verification of exactly what will be shown (composer: lexical support; its sentences
        # are reviewed rule text or verbatim passage quotes, so an embedding pass would only cost time).
        t_v = self._clock()
        composer = mode.startswith("composer")
        text, report = finalize(
            text, citations=prep.citations, plan=prep.plan, scorer=self._lexical_scorer if composer else self._scorer,
            context_text=prep.user_text, audience=audience, mode=mode, failed=failed_notes, repaired=repaired_notes,
        )
        prep.timings["verify"] = self._ms(t_v) + prep.timings.pop("_verify_llm", 0.0)

        t_r = self._clock()
        follow_ups = composition().follow_ups
        if composer:
            mode_note = prompts.COMPOSER_MODE_NOTE
        elif self.answer_style == "summary":
            mode_note = prompts.LLM_SUMMARY_MODE_NOTE.format(model=self._model_name())
        else:
            mode_note = prompts.LLM_MODE_NOTE.format(model=self._model_name())
        if not report.verified:
            mode_note += "\n\n" + prompts.UNVERIFIED_NOTE
        markdown = render_answer(text, prep.citations, banner=banner, mode_note=mode_note, follow_ups=follow_ups)
        prep.timings["render"] = self._ms(t_r)
        prep.timings["total"] = self._ms(t0)
        return Answer(
            question=prep.question,
            answer_markdown=markdown,
            citations=prep.citations,
            findings=prep.plan.findings,
            patient_context=prep.ctx,
            abstained=False,
            verification=report,
            follow_ups=follow_ups,
            backend=self.backend,
            banner=banner,
            timings_ms=prep.timings,
            corpus_version=self._corpus_version(),
            model=self._model_name() if not composer or mode == "composer-fallback" else "",
        )

    # ------------------------------------------------------------ the model's draft
    def _screen_draft(self, text: str, prep: _Prepared) -> tuple[AnswerPlan, list[str]]:
        """Drugs the model named that nothing screened yet pass the label check too; forbidden ones join the plan's
        must-not list (``prep.plan`` is replaced), so the verifier strikes any sentence that offers them."""
        engine = self.engine
        if not isinstance(engine, SafetyScreen):
            return prep.plan, []
        found = engine.screen(prep.ctx, engine.drugs_in(text), prep.plan.findings)
        extra = [f.model_copy(update={"severity": "screen"}) for f in found]
        if not extra:
            return prep.plan, []
        prep.plan = self._plan_builder([*prep.plan.findings, *extra], prep.ctx, self._lexicon())
        return prep.plan, [f"safety: the draft named {f.therapy}, contraindicated for this patient" for f in extra]


# ---------------------------------------------------------------- factory
def build_assistant(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    store: IndexStore | None = None,
    chat_model: ChatModel | None = None,
    knowledge: Knowledge | None = None,
    warm: bool = True,
) -> Assistant:
    """The real thing: MiniLM embedder, Chroma store, hybrid retriever, corpus knowledge, rule engine, chat model.

    Each of ``embedder``, ``store``, ``chat_model`` and ``knowledge`` is built from ``settings`` when None, and
    used as given otherwise (tests pass a hash embedder, a temporary store, a scripted model). ``warm`` runs one
    retrieval so the first question does not pay the index's cold start.
    """
    from assistant.knowledge import load_knowledge
    from assistant.llm.backends import make_chat_model
    from assistant.retrieval import HybridRetriever
    from assistant.rules import RuleEngine
    from ingest.embedder import load_embedder
    from ingest.store import open_store

    if embedder is None:
        embedder = load_embedder(settings)
    if store is None:
        store = open_store(settings, embedder)
    if store.count() == 0:
        # an empty (never ingested, or mistyped --store) index would otherwise answer every question
        # with "the guidelines in my corpus do not cover this", which is false
        where = settings.chroma_url or settings.index_dir
        raise StoreError(f"the index at {where} is empty: run `guiderail ingest` first")
    if knowledge is None:
        knowledge = load_knowledge(settings.corpus_dir)
    assistant = Assistant(
        settings,
        retriever=HybridRetriever(store, settings),
        engine=RuleEngine(knowledge),
        knowledge=knowledge,
        chat_model=chat_model if chat_model is not None else make_chat_model(settings),
        embedder=embedder,
    )
    if warm:
        assistant.warm_up()
    return assistant
