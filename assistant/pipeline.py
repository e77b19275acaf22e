"""The one call every entry point uses: question (+ patient, history, prior context) → cited, rule-checked,
verified answer — whole (`ask`) or streamed (`ask_stream`: plan first, then text, then the final record).

Flow: validate → patient context → retrieval query → rule findings → passages for the findings' refs +
retrieved passages, deduplicated and numbered → plan event → abstain? → generate (LLM, or the
deterministic composer) → verify / repair / fall back → render → Answer.

`Assistant` receives every dependency (retriever, knowledge, rule engine, chat model, embedder) in its
constructor so tests pass fakes; `build_assistant(settings)` builds the real ones. LLM failures never
escape: a down, slow or garbage-producing model yields the composer's answer with a banner.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant import prompts
from assistant.compose import compose_answer, follow_up_questions
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
from assistant.oncology.match import describe_marker
from assistant.population import population_mismatch
from assistant.render import number_sources, render_answer
from assistant.settings import Settings
from assistant.verify import (
    LEXICAL_ONLY_THRESHOLD,
    SupportScorer,
    VerifyResult,
    append_required,
    attach_citations,
    inspect_answer,
    strike,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- dependency protocols
class Retriever(Protocol):
    def retrieve(self, query: str, k: int | None = None, filters: Mapping[str, Any] | None = None) -> list[RetrievedPassage]: ...

    def passages_for_refs(self, refs: Sequence[str]) -> dict[str, list[RetrievedPassage]]: ...


class Engine(Protocol):
    def evaluate(self, ctx: PatientContext) -> list[Finding]: ...


class EmbedderLike(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


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


def retrieval_query(question: str, ctx: PatientContext, max_terms: int = 12) -> str:
    """The question plus the salient context a follow-up may leave implicit (state, therapies, genes)."""
    terms: list[str] = []
    if ctx.disease_state:
        terms.append(ctx.disease_state)
    terms.extend(d.replace("_", " ") for d in ctx.diagnoses)
    terms.extend(t.therapy.replace("_", " ") for t in ctx.therapies[-4:])
    terms.extend(b.name for b in ctx.biomarkers if b.result in ("pathogenic", "likely_pathogenic", "positive"))
    low = question.lower()
    extra = [t for t in dict.fromkeys(terms) if t and t.lower() not in low][:max_terms]
    return question if not extra else f"{question}\n(context: {', '.join(extra)})"


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


def coverage_topics(knowledge: Any) -> list[str]:
    """Topics the corpus covers, from the digests' front matter (titles when no topics are given)."""
    digests = getattr(knowledge, "digests", None) or {}
    topics: list[str] = []
    for d in digests.values():
        meta = getattr(d, "meta", {}) or {}
        for t in meta.get("topics") or []:
            if str(t) not in topics:
                topics.append(str(t))
    if not topics:
        titles = [getattr(d, "title", "") for d in digests.values() if getattr(d, "kind", "") == "guideline"]
        topics = [t for t in titles if t]
    return topics


def coverage_summary(knowledge: Any) -> str:
    """What the corpus covers, in one line (for the abstention text)."""
    topics = coverage_topics(knowledge)
    if not topics:
        return "the guidelines that have been ingested into this index"
    return ", ".join(topics[:14]) + (" and related drug labels" if len(topics) <= 14 else ", …")


# Words that say nothing about a question's topic; the rest must be found in the passages.
_GENERIC_TEXT = (
    "treat treatment treating manage management managing best option options therapy therapies patient patients "
    "recommend recommended recommendation guideline guidelines approach first line next should would could "
    "what which when how why does do can is are the for with in of a an and or to on my his her their "
    # words of asking that name no topic ("what next on label?", "which agent does it open?")
    "next now then switch start started starting give given use used choose choice step regimen regimens drug drugs "
    "medication medications medicine agent agents approved approval option label labelled labeled available "
    "indicated directed targeted selected any there this that these those should we he she they him them it "
    "result results open add added stop continue offer fit right best preferred take taken receive get need "
    "appropriate apply applies many much long else something anything here basis include includes change matter "
    "alone specifically another fda"
)
_GENERIC = frozenset(_GENERIC_TEXT.split())


def topical_words(text: str) -> list[str]:
    """The words of a question that name its topic (stemmed; generic asking words removed; a hyphenated compound
    counts by its parts: "NRG1-directed" → nrg1)."""
    from ingest.text import content_words
    from ingest.text import stem as _stem

    generic = {_stem(w) for w in _GENERIC}
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text)
    return [w for w in dict.fromkeys(content_words(text)) if w not in generic and len(w) > 2]


def specific_terms(text: str) -> list[str]:
    """Candidate topic names in an asking sentence: BM25 tokens of 5+ letters that are not generic asking words
    (the corpus decides how specific each is, by document frequency)."""
    from ingest.text import bm25_tokens

    generic = set(_GENERIC)
    return [
        t for t in dict.fromkeys(bm25_tokens(re.sub(r"(?<=\w)[-/](?=\w)", " ", text)))
        if len(t) >= 5 and t.isalpha() and t not in generic
    ]


def spelling_variants(word: str) -> list[str]:
    """British and American spellings of a word ("tumour"/"tumor", "oesophageal"/"esophageal", "leukaemia")."""
    out = [word]
    for a, b in (("our", "or"), ("oe", "e"), ("ae", "e"), ("isation", "ization"), ("ise", "ize")):
        if a in word:
            out.append(word.replace(a, b))
    return out


def _is_common(word: str, common: frozenset[str]) -> bool:
    """An everyday English word, also when inflected ("dosed", "monitored", "applies", "stepped")."""
    if word in common:
        return True
    stems = {word[:-1], word[:-2], word[:-3], word.rstrip("s"), word[:-2] + "y" if word.endswith("ie") else word}
    if word.endswith("ed") and len(word) > 4 and word[-3] == word[-4]:
        stems.add(word[:-3])  # stepped → step
    return any(s and s in common for s in stems)


def focused_question(q: str) -> str:
    """What retrieval should look for in a long vignette: its opening sentence (who, with what) and the sentence
    that asks — not the whole history, whose incidental facts (a statin, AF on apixaban) pull in unrelated
    guidelines and dilute the question. Short questions are used whole."""
    parts = [p.strip() for p in re.split(r"(?<=[.?!])\s+", q.strip()) if p.strip()]
    if len(parts) < 4:
        return q
    asked = asking_sentence(q)
    return parts[0] if parts[0] == asked else f"{parts[0]} {asked}"


def best_passage_coverage(question: str, passages: Sequence[RetrievedPassage]) -> float:
    """Share of the question's topical words found together in one passage (the best one): words scattered over
    many passages ('dose' here, 'antibiotic' there) do not make a topic covered."""
    from ingest.text import content_words

    words = topical_words(question)
    if not words:
        return 1.0
    best = 0.0
    for p in passages:
        found = set(content_words(p.text))
        prefixes = {w[:5] for w in found if len(w) >= 5}
        hit = sum(1 for w in words if w in found or (len(w) >= 5 and w[:5] in prefixes))
        best = max(best, hit / len(words))
    return best


def question_coverage(question: str, passages: Sequence[RetrievedPassage]) -> float:
    """Share of the question's topical words (stemmed) found in the retrieved passages (1.0 if none)."""
    from ingest.text import content_words

    words = topical_words(question)
    if not words:
        return 1.0
    found = set(content_words(" ".join(p.text for p in passages)))
    prefixes = {w[:5] for w in found if len(w) >= 5}
    hit = sum(1 for w in words if w in found or (len(w) >= 5 and w[:5] in prefixes))
    return hit / len(words)


SUMMARY_MAX_TOKENS = 180
MIN_QUESTION_COVERAGE = 0.5
MIN_ASKED_COVERAGE = 0.34
MIN_ASKED_TOGETHER = 0.4
RARE_TERM_MAX_DF = 40
"""A word in at most this many indexed chunks is specific enough that the passages quoted must contain it."""
"""A long vignette's asking sentence must find at least this share of its topical words in one passage."""
"""A long vignette whose asking sentence names no known condition still counts as answered by rule findings only
when at least this share of the asking sentence's topical words is found in the passages."""
"""Below this share of topical words found in the passages (and with no rule finding) the assistant abstains."""


def prompt_passage_order(plan: AnswerPlan, citations: Sequence[Citation]) -> list[int]:
    """Which passages the model sees first: the top options' sources, then passages no finding
    brought (the question's own retrieval hits), then warnings', exclusions' and questions' sources."""
    order: list[int] = []
    rank = {"recommend": 0, "consider": 1, "warn": 3, "exclude": 4, "ask": 5}
    findings = sorted(plan.findings, key=lambda f: (rank.get(f.kind, 9), f.preference if f.preference is not None else 99))
    from_findings = {n for f in plan.findings for n in f.citations}
    for f in findings:
        if f.kind in ("recommend", "consider"):
            order.extend(f.citations[:1])
    order.extend(c.number for c in citations if c.number not in from_findings)
    for f in findings:
        order.extend(f.citations)
    order.extend(c.number for c in citations)
    return list(dict.fromkeys(order))


def excluded_label_docs(plan: AnswerPlan, knowledge: Any) -> list[str]:
    """Label documents (digests and rendered safety checks) whose drug the plan excludes for this patient."""
    lexicon = getattr(knowledge, "lexicon", None)
    digests = getattr(knowledge, "digests", None) or {}
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
        drug = str((getattr(d, "meta", {}) or {}).get("drug", "") or "")
        if getattr(d, "kind", "") != "label" or not drug:
            continue
        parts = drug.split("+")
        # The label's drug (or, for a class profile, any excluded member of its class) is excluded.
        if any(p in excluded or any(lexicon.matches(x, p) for x in excluded) for p in parts) and not (
            set(parts) & offered
        ):
            out.append(d.doc_id)
    return sorted(out)


def relevance_of(p: RetrievedPassage) -> float:
    """The retriever's calibrated 0–1 relevance when it set one (RRF scores are rank-based, not calibrated)."""
    return p.relevance if "relevance" in p.model_fields_set else p.score


def _actionable(findings: Sequence[Finding]) -> bool:
    # "Outside this guideline's population" (a child under an adult guideline) is not an answer for the patient.
    return any(f.kind in ("recommend", "consider", "exclude", "warn") and f.severity != "scope" for f in findings)


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


def asking_sentence(q: str) -> str:
    """The sentence(s) that ask: the last one with a question mark, else the last sentence."""
    parts = [p.strip() for p in re.split(r"(?<=[.?!])\s+", q.strip()) if p.strip()]
    asks = [p for p in parts if p.endswith("?")]
    return asks[-1] if asks else (parts[-1] if parts else q)


def _near_topics(hits: Sequence[RetrievedPassage], limit: int = 3) -> list[str]:
    """Titles of the documents nearest to the question (what the corpus has that comes closest)."""
    out: list[str] = []
    for p in hits:
        title = (getattr(p, "title", "") or "").strip()
        if title and title not in out:
            out.append(title)
        if len(out) >= limit:
            break
    return out





_Clock = Callable[[], float]


class Assistant:
    """Answers questions from the corpus; every dependency is injected."""

    def __init__(
        self,
        settings: Settings,
        *,
        retriever: Retriever,
        engine: Engine,
        knowledge: Any = None,
        chat_model: Any = None,
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
        self._llm_lock = threading.Lock()

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
        if load_llm and hasattr(self.chat_model, "load"):
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
            yield AnswerEvent(kind="final", answer=self._abstain(prep, audience, t0))
            return
        deltas: list[str] = []
        answer = yield from self._generate(prep, audience, t0, deltas)
        yield AnswerEvent(kind="final", answer=answer)

    # ------------------------------------------------------------ stages
    def _ms(self, since: float) -> float:
        return round((self._clock() - since) * 1000.0, 2)

    def _lexicon(self) -> Any:
        return getattr(self.knowledge, "lexicon", None)

    def _display_names(self, plan: AnswerPlan) -> dict[str, str]:
        """Therapy id → the name clinicians read (the lexicon's first name)."""
        lex = self._lexicon()
        out: dict[str, str] = {}
        for f in plan.findings:
            if not f.therapy or lex is None:
                continue
            entry = getattr(lex, "entries", {}).get(f.therapy)
            if entry is not None and getattr(entry, "names", None):
                out[f.therapy] = entry.names[0]
            elif "+" in f.therapy:
                # A regimen: every component by its first name ("amivantamab + lazertinib").
                parts = []
                for p in f.therapy.split("+"):
                    e = getattr(lex, "entries", {}).get(p)
                    parts.append(e.names[0] if e is not None and getattr(e, "names", None) else p.replace("_", " "))
                out[f.therapy] = " + ".join(parts)
            elif hasattr(lex, "names_of"):
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
        hits = self.retriever.retrieve(retrieval_query(focused_question(q), ctx), k=self.settings.top_k)
        # A passage written for another population (adults for a child, non-pregnant women for a pregnant
        # one) is never quoted to this patient; rule-backed passages were chosen for the patient already.
        other_tumour = self._other_tumour_records(ctx)
        relevant = [
            p
            for p in hits
            if relevance_of(p) >= self.settings.min_relevance
            and population_mismatch(f"{p.population} › {p.section_path}", ctx) is None
            and (p.rec_id or "") not in other_tumour
        ]
        timings["retrieval"] = self._ms(t)

        # Safety screen: any drug the question or a passage names could end up in the answer (the composer
        # quotes passages, an LLM paraphrases them); those the label forbids for this patient are excluded.
        t = self._clock()
        screeners = self._screeners()
        if screeners is not None:
            screen, drugs_in = screeners
            asked = drugs_in(text)
            texts = [*(p.text for p in relevant), *(p.text for ps in by_ref.values() for p in ps)]
            named = [d for tx in texts for d in drugs_in(tx)]
            extra = list(screen(ctx, asked, findings))
            # Drugs only the passages name: forbidden for this answer (the plan's must-not list, the rule panel),
            # but not listed under "Not recommended" — a pregnant woman's DVT answer need not list prostate drugs.
            lex = self._lexicon()
            topic_classes = {
                c
                for f in [*findings, *extra]
                if f.therapy and lex is not None
                for c in lex.classes_of(f.therapy)
            }
            for f in screen(ctx, named, [*findings, *extra]):
                related = lex is not None and bool(set(lex.classes_of(f.therapy or "")) & topic_classes)
                # A sibling of what the question is about (warfarin beside the heparins) is listed; others are not.
                extra.append(f if related else f.model_copy(update={"severity": "screen"}))
            if extra:
                findings.extend(extra)
                more = [r for f in extra for r in f.refs if r not in by_ref]
                if more:
                    by_ref.update(self.retriever.passages_for_refs(list(dict.fromkeys(more))))
        timings["safety_screen"] = self._ms(t)

        t = self._clock()
        citations, numbered = number_sources(findings, by_ref, relevant, max_sources=self.max_sources)
        plan = self._plan_builder(numbered, ctx, self._lexicon())
        banned = excluded_label_docs(plan, self.knowledge)
        if banned:
            plan = plan.model_copy(update={"excluded_docs": banned})
        timings["plan"] = self._ms(t)
        # Abstain when nothing in the corpus speaks to the question: no relevant passage and no rule
        # finding that the corpus backs (ask-only findings are not an answer).
        # Only findings about what the question asks count: a safety screen of a drug a passage happened to name,
        # or an offer for a condition from the history, does not make an unrelated question answerable.
        in_focus = [
            f
            for f in numbered
            if not f.rule_id.startswith(("SAFETY:", "DECLINED:"))
            and f.severity != "screen"
            and (not ctx.focus or f.domain in (*ctx.focus, None, "general"))
        ]
        backed = _actionable(in_focus) and any(f.citations for f in in_focus)
        # What the answer would quote: the retrieved passages and the passages the rule findings cite.
        cited = [p for f in numbered for r in f.refs for p in by_ref.get(r, [])[:1]]
        quoted = [*relevant, *cited, *self._finding_texts(in_focus)]
        off_topic, backed = self._judge_scope(q, quoted, in_focus, backed, timings)
        # The rules for the question's own condition say the patient is outside their guideline's population
        # (a child, an immunocompromised patient under a guideline that excludes them) and nothing else applies:
        # quoting that guideline's passages would be advice it does not give.
        out_of_scope = [f for f in numbered if f.severity == "scope" and (not ctx.focus or f.domain in ctx.focus)]
        # Safety-screen exclusions of drugs a passage happened to name are not an answer either.
        scope_abstain = bool(out_of_scope) and not _actionable(
            [
                f
                for f in numbered
                if (not ctx.focus or f.domain in (*ctx.focus, None, "general"))
                and not f.rule_id.startswith(("SAFETY:", "DECLINED:"))
            ]
        )
        # Oncology: the question asks about a tumour alteration that no FDA approval in the pack targets (in this
        # tumour, any setting) and no approval fits the patient: say so plainly rather than quote passages.
        unapproved = self._unapproved_asked(q, ctx, numbered)
        if unapproved:
            timings["oncology_unapproved"] = 1.0
        # A recognised domain whose rules answered (offers, exclusions, warnings backed by citations) is covered
        # whatever the cosine of a long vignette; the topical-word check reads the asking sentence, not the history.
        abstain = not citations or (off_topic and not backed) or scope_abstain or bool(unapproved)
        if scope_abstain:
            timings["scope_abstain"] = 1.0
        user_text = f"{text}\n{prompts.format_patient(ctx)}"
        return _Prepared(
            question=q, ctx=ctx, plan=plan, citations=citations, abstain=abstain, timings=timings, user_text=user_text,
            unapproved=unapproved, near_topics=_near_topics(hits),
        )

    def _other_tumour_records(self, ctx: PatientContext) -> frozenset[str]:
        """Approval records written for another tumour than the patient's: never quoted as if they applied."""
        vocab = getattr(self.knowledge, "oncology", None)
        approvals = getattr(self.knowledge, "approvals", None) or []
        if vocab is None or ctx.tumour is None or not ctx.tumour.tumour:
            return frozenset()
        lineage = set(vocab.tumour_ancestors(ctx.tumour.tumour))
        return frozenset(a.id for a in approvals if a.tumour not in lineage)

    def _judge_scope(
        self, q: str, quoted: Sequence[RetrievedPassage], in_focus: Sequence[Finding], backed: bool, timings: dict[str, float]
    ) -> tuple[bool, bool]:
        """(off_topic, backed) for a question. A long vignette is judged by the sentence that asks: its history
        (kidney function, AF on apixaban) may be covered while the question (a glaucoma drop) is not, and the
        reverse; an asking sentence that leans on the vignette ("What should he switch to?") is judged with it.
        Anywhere, a technical word the index has never seen (levothyroxine, eclampsia) means the corpus does not
        cover the question, whatever rules the history set off."""
        asked = asking_sentence(q)
        long_q = asked != q.strip()
        unknown = self._unknown_topic(asked if long_q else q, quoted, rarest_check=long_q)
        if unknown:
            timings["asked_unknown_term"] = 1.0
        if long_q and len(topical_words(asked)) >= 2:
            coverage = question_coverage(asked, quoted)
            together = best_passage_coverage(asked, quoted)
            timings["asked_best_passage_coverage"] = round(together, 3)
            off_topic = not quoted or coverage < MIN_QUESTION_COVERAGE or together < MIN_ASKED_TOGETHER
            asked_focus = self._asked_focus(asked)
            if asked_focus:
                # only findings about what the asking sentence names back the answer
                backed = any(
                    f.kind in ("recommend", "consider", "exclude", "warn") and f.citations and f.domain in asked_focus
                    for f in in_focus
                )
            elif coverage < MIN_ASKED_COVERAGE:
                backed = False  # the asking sentence names nothing the rules know and few of its words are found
        else:
            # short question: all of it; a leaning asking sentence: the vignette's opening (its subject) with it
            coverage = question_coverage(focused_question(q) if long_q else q, quoted)
            off_topic = not quoted or coverage < MIN_QUESTION_COVERAGE
        timings["question_coverage"] = round(coverage, 3)
        if unknown:
            return True, False
        return off_topic, backed

    def _unknown_topic(self, asked: str, quoted: Sequence[RetrievedPassage], *, rarest_check: bool = True) -> str:
        """The asking sentence's most specific word when the corpus cannot speak to it: absent from the whole index,
        or (its rarest indexed word) absent from every passage the answer would quote. '' when covered."""
        from ingest.embedder import common_words

        dfs = getattr(self.retriever, "term_doc_freq", None)
        common = common_words()
        # only technical words (outside everyday English) that the knowledge does not itself name can mark a
        # topic the corpus lacks
        known = self._knowledge_words()
        terms = [t for t in specific_terms(asked) if not _is_common(t, common) and t not in known]
        if dfs is None or not terms or not common:
            return ""
        try:
            variants = {t: spelling_variants(t) for t in terms}
            raw = dfs([v for vs in variants.values() for v in vs])
        except (OSError, ValueError, KeyError, AttributeError):
            return ""
        freq = {t: max(raw.get(v, 0) for v in vs) for t, vs in variants.items()}
        missing = [t for t in terms if freq.get(t, 0) == 0]
        if missing:
            return missing[0]
        if not rarest_check:
            return ""
        rare = terms
        rarest = min(rare, key=lambda t: freq.get(t, 0))
        if freq.get(rarest, 0) > RARE_TERM_MAX_DF:
            return ""  # only common words: nothing specific to look for
        from ingest.text import bm25_tokens

        if any(rarest in set(bm25_tokens(p.text)) for p in quoted):
            return ""
        return rarest

    def _finding_texts(self, findings: Sequence[Finding]) -> list[RetrievedPassage]:
        """What the answer states for each offer besides its passage: title, reason, the therapy's names and classes
        ("revumenib" is a menin inhibitor even where its label block does not say so)."""
        lex = self._lexicon()
        out = []
        for f in findings:
            if f.kind not in ("recommend", "consider") or not f.citations:
                continue
            words = [f.title, f.reason]
            names_of, classes_of = getattr(lex, "names_of", None), getattr(lex, "classes_of", None)
            if names_of is not None and classes_of is not None and f.therapy:
                for part in f.therapy.split("+"):
                    words += [*names_of(part), *(c.replace("_", " ") for c in classes_of(part))]
            out.append(RetrievedPassage(chunk_id=f"finding:{f.rule_id}", doc_id="", text=" ".join(words), score=0.0))
        return out

    def _knowledge_words(self) -> frozenset[str]:
        """Every word of the lexicon's therapy names and classes and of the oncology vocabulary (cached)."""
        hit = getattr(self, "_kw_cache", None)
        if hit is not None:
            return hit
        words: set[str] = set()
        lex = self._lexicon()
        if lex is not None:
            for tid, entry in getattr(lex, "entries", {}).items():
                for n in [tid, *getattr(entry, "names", []), *getattr(entry, "classes", [])]:
                    words.update(re.split(r"[\W_]+", str(n).lower()))
        for cid in getattr(self.knowledge, "conditions", ()) or ():
            words.update(re.split(r"[\W_]+", str(cid).lower()))
        vocab = getattr(self.knowledge, "oncology", None)
        if vocab is not None:
            for table in (vocab.therapy_words, vocab.markers, vocab.tumours, vocab.settings, vocab.histologies, vocab.organs):
                for key, names in table.items():
                    for n in [key, *names]:
                        words.update(re.split(r"[\W_]+", str(n).lower()))
        self._kw_cache = frozenset(w for w in words if len(w) >= 4)
        return self._kw_cache

    def _asked_focus(self, asked: str) -> set[str]:
        """Domains the asking sentence itself names (conditions, topic words, a tumour or tumour marker)."""
        try:
            actx = self._extract(asked, lexicon=self._lexicon())
        except (ValueError, TypeError):
            return set()
        out = set(actx.focus) | set(actx.diagnoses)
        if actx.tumour is not None:
            out.add("oncology")
        return out

    def _unapproved_asked(self, q: str, ctx: PatientContext, findings: Sequence[Finding]) -> list[str]:
        """Tumour alterations the question asks about that no approval in the pack targets for this tumour, when no
        approval offer fits the patient either (then the honest answer is: nothing approved — trials)."""
        match = getattr(self.engine, "oncology_match", None)
        if match is None or ctx.tumour is None or ctx.tumour.tumour is None:
            return []
        result = match(ctx)
        if not result.unapproved:
            return []
        offers = [f for f in findings if f.domain == "oncology" and f.kind in ("recommend", "consider")]
        if any(self._targets_patient_marker(f, ctx) for f in offers):
            return []  # an approval directed at one of this tumour's alterations answers the question
        asked = asking_sentence(q)
        named = [m for m in result.unapproved if re.search(rf"(?<![\w]){re.escape(m.marker.split('_')[0])}", asked, re.I)]
        if not named and (not offers or re.search(
            r"alteration|mutation|fusion|variant|target|directed|specific|these|\bthis\b|\bit\b", asked, re.I
        )):
            named = list(result.unapproved)  # "Is anything approved for these alterations?"
        return [describe_marker(m) for m in named]

    def _targets_patient_marker(self, f: Finding, ctx: PatientContext) -> bool:
        """The offer's approval record requires a positive result of one of the patient's positive markers."""
        rec = next((a for a in getattr(self.knowledge, "approvals", None) or [] if a.id == f.rule_id), None)
        if rec is None or ctx.tumour is None:
            return False
        positive = {m.marker for m in ctx.tumour.markers if m.status == "positive"}
        vocab = getattr(self.knowledge, "oncology", None)
        lex = self._lexicon()
        if lex is not None and hasattr(lex, "classes_of") and f.therapy:
            # a drug of the marker's own class (avapritinib, a KIT inhibitor, for KIT D816V mastocytosis) targets it
            classes = {c.lower() for part in f.therapy.split("+") for c in lex.classes_of(part)}
            if any(c.startswith(m.lower().replace("_", "") + "_") or c.startswith(m.lower() + "_") for m in positive for c in classes):
                return True
        for key, values in rec.biomarkers.items():
            members = {key, *(vocab.families.get(key, ()) if vocab is not None else ())}
            if members & positive and not set(values) & {"negative", "wild_type", "zero"} and key not in ("HR", "PDL1"):
                return True
        return False

    def _abstain(self, prep: _Prepared, audience: str, t0: float) -> Answer:
        topic_hint = ""
        if prep.ctx.diagnoses:
            topic_hint = f" (for {', '.join(d.replace('_', ' ') for d in prep.ctx.diagnoses)})"
        # Name what the corpus has nearest to the question, not an alphabetical list of everything.
        near = ", ".join(prep.near_topics) if prep.near_topics else coverage_summary(self.knowledge)
        detail = prompts.ABSTAIN_DETAIL.format(coverage=near, topic_hint=topic_hint)
        if prep.unapproved and prep.ctx.tumour is not None:
            tumour = (prep.ctx.tumour.tumour or "this tumour").replace("_", " ")
            detail = (
                f"No FDA-approved therapy directed at {', '.join(prep.unapproved)} in {tumour} is in my approval records "
                "(FDA labels and approval notices, reviewed 2026-12); a clinical trial is the route to a drug targeting it, "
                "and the standard, non-biomarker-directed treatment for the tumour type applies.\n\n" + detail
            )
        scope = list(dict.fromkeys(f.reason for f in prep.plan.findings if f.severity == "scope"))
        if scope:
            detail = "The guideline in my corpus for this does not cover this patient: " + " ".join(scope[:2]) + "\n\n" + detail
        body = f"{prompts.REFUSAL}\n\n{detail}"
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
            corpus_version=str(getattr(self.knowledge, "version", "") or ""),
            model=self._model_name(),
        )

    def _model_name(self) -> str:
        if self.chat_model is None:
            return ""
        return getattr(self.chat_model, "model_name", "") or type(self.chat_model).__name__

    def _generate(self, prep: _Prepared, audience: str, t0: float, deltas: list[str]) -> Iterator[AnswerEvent]:
        """Yields 'delta' events; returns the final Answer (a generator with a return value)."""
        t = self._clock()
        banner: str | None = None
        mode = "composer"
        text: str | None = None
        repaired_notes: list[str] = []
        failed_notes: list[str] = []
        if self.chat_model is not None:
            try:
                built = prompts.build_messages(
                    prep.question,
                    prep.plan,
                    prep.citations,
                    prep.ctx,
                    audience=audience,
                    count_tokens=self._token_counter(),
                    budget=self._prompt_budget(),
                    passage_order=prompt_passage_order(prep.plan, prep.citations),
                    style=self.answer_style,
                )
                if built.prompt_tokens is not None:
                    prep.timings["prompt_tokens"] = float(built.prompt_tokens)
                raw = ""
                first = True
                for piece in self._stream_llm(built.system, built.user, t0=t, **self._gen_kwargs()):
                    if first:
                        prep.timings["first_token"] = self._ms(t0)
                        first = False
                    raw += piece
                    deltas.append(piece)
                    yield AnswerEvent(kind="delta", text=piece)
                prep.timings["generate"] = self._ms(t)
                text, _draft, mode, failed_notes, repaired_notes = self._verify_llm(raw, prep, audience, built, t)
                if text is None:
                    banner = prompts.FALLBACK_BANNER.format(reason="its answer could not be repaired")
                elif self.answer_style == "summary":
                    text = self._with_plan_sections(text, prep, audience)
                else:
                    text = self._ensure_bottom_line(text, prep, audience, repaired_notes)
            except LLMError as exc:
                log.warning("LLM backend failed, using the composer: %s", exc)
                banner = prompts.FALLBACK_BANNER.format(reason=str(exc)[:160])
                failed_notes.append(f"llm: {exc}")
                text, mode = None, "composer-fallback"
        if text is None:
            t_c = self._clock()
            composed = compose_answer(
                prep.question, prep.plan, prep.citations, prep.ctx, audience=audience, display_names=self._display_names(prep.plan)
            )
            if self.chat_model is None:
                for line in composed.body.splitlines(keepends=True):
                    yield AnswerEvent(kind="delta", text=line)
                prep.timings["first_token"] = self._ms(t0)
            prep.timings["compose"] = self._ms(t_c)
            text = composed.body
            if mode != "composer-fallback":
                mode = "composer"
        prep.timings.setdefault("generate", self._ms(t))

        # Final verification of exactly what will be shown (composer: lexical support; its sentences
        # are reviewed rule text or verbatim passage quotes, so an embedding pass would only cost time).
        t_v = self._clock()
        composer = mode.startswith("composer")
        scorer = self._lexical_scorer if composer else self._scorer
        # The contradiction check reads what the model wrote (in _verify_llm); the rule-derived sections state
        # limits of the offered drugs on purpose ("rivaroxaban is avoided below CrCl 15").
        def inspect_final(body: str) -> VerifyResult:
            return inspect_answer(
                body, citations=prep.citations, plan=prep.plan, scorer=scorer, context_text=prep.user_text,
                check_contradiction=False,
            )  # fmt: skip

        final = inspect_final(text)
        if final.missing_required:
            text = append_required(final.text, final.missing_required, {c.number for c in prep.citations}, audience)
            repaired_notes.append(
                "required: appended " + ", ".join(f"{f.kind} {f.rule_id}" for f in final.missing_required)
            )
            failed_notes.extend(
                f"required: {f.kind} finding {f.rule_id} was missing"
                for f in final.missing_required
                if not any(f.rule_id in x for x in failed_notes)
            )
            final = inspect_final(text)
        if composer and final.violations:
            # Deterministic text is not struck (it is the last resort) but never shown as verified.
            text, notes = strike(final, flag_only=("support", "uncited", "excluded-therapy"))
            repaired_notes.extend(notes)
        report = final.report
        report.failed = list(dict.fromkeys([*failed_notes, *report.failed]))
        report.repaired = list(dict.fromkeys([*repaired_notes, *report.repaired]))
        report.mode = mode  # type: ignore[assignment]
        report.verified = not final.violations and not final.missing_required
        if composer:
            report.checked = [c if c != "support" else "support (lexical)" for c in report.checked]
        prep.timings["verify"] = self._ms(t_v) + prep.timings.pop("_verify_llm", 0.0)

        t_r = self._clock()
        follow_ups = follow_up_questions(prep.plan, prep.citations, audience, self._display_names(prep.plan))
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
            corpus_version=str(getattr(self.knowledge, "version", "") or ""),
            model=self._model_name() if not composer or mode == "composer-fallback" else "",
        )

    # ------------------------------------------------------------ LLM plumbing
    def _token_counter(self) -> Callable[[str], int] | None:
        counter = getattr(self.chat_model, "count_tokens", None)
        if callable(counter) and self.settings.llm == "local":
            return counter
        return lambda s: len(s) // 4 + 1  # a server's tokenizer is unknown: ~4 characters a token

    def _prompt_budget(self) -> int:
        return prompts.PROMPT_TOKEN_BUDGET if self.settings.llm == "local" else 3000

    def _gen_kwargs(self) -> dict[str, Any]:
        # A 2–4 sentence summary needs ~120 tokens; capping it keeps the local answer inside ~30 s.
        return {"max_tokens": min(SUMMARY_MAX_TOKENS, self.settings.llm_max_tokens)} if self.answer_style == "summary" else {}

    def _with_plan_sections(self, summary: str, prep: _Prepared, audience: str) -> str:
        """The model's verified summary as the bottom line, then the composer's rule-derived sections."""
        composed = compose_answer(
            prep.question, prep.plan, prep.citations, prep.ctx, audience=audience, display_names=self._display_names(prep.plan)
        )
        head, _, rest = composed.body.partition("\n## ")
        notes = [ln for ln in head.splitlines() if ln.startswith("_")]
        first = prompts.section_titles(audience)[0]
        parts = [f"## {first}", summary.strip(), *notes]
        return "\n".join(parts) + ("\n\n## " + rest if rest else "")

    def _stream_llm(
        self, system: str, user: str, *, t0: float, extra: Sequence[Any] = (), **gen: Any
    ) -> Iterator[str]:
        """Token text from the chat model, with a wall-clock deadline (LLMError on timeout or failure).

        The model runs in a worker thread so a hung server or a slow prefill cannot block past
        llm_timeout_s; one lock serialises calls because llama.cpp contexts are not thread-safe.
        """
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [SystemMessage(content=system), HumanMessage(content=user), *extra]
        q: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        model = self.chat_model
        lock = self._llm_lock

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

    def _verify_llm(
        self, raw: str, prep: _Prepared, audience: str, built: prompts.BuiltPrompt, t_gen: float
    ) -> tuple[str | None, VerifyResult | None, str, list[str], list[str]]:
        """Check the draft; regenerate once or strike; None text means 'fall back to the composer'."""
        failed: list[str] = []
        repaired: list[str] = []
        t_v = self._clock()
        text = clean_llm_text(raw)
        self._screen_draft(text, prep, failed)
        text, attached = attach_citations(
            text, citations=prep.citations, plan=prep.plan, scorer=self._scorer, context_text=prep.user_text
        )
        if attached:
            failed.append(f"citations: {len(attached)} claim(s) came without a citation")
            repaired.extend(attached)
        if not self._usable(text):
            raise LLMError("the model's answer was empty or had no supported, citable statement")
        # Summary style: warnings and questions are rendered by code from the plan, not required of the model.
        required = self.answer_style != "summary"
        res = inspect_answer(
            text, citations=prep.citations, plan=prep.plan, scorer=self._scorer, check_required=required,
            context_text=prep.user_text,
        )
        prep.timings["_verify_llm"] = self._ms(t_v)
        if not res.violations:
            mode = "llm-repaired" if attached else "llm"
            return res.text, res, mode, [*failed, *res.report.failed], [*repaired, *res.report.repaired]
        failed.extend(res.report.failed)
        repaired.extend(res.report.repaired)
        mode = "llm-repaired"
        if self._should_regenerate(res, t_gen):
            from langchain_core.messages import AIMessage, HumanMessage

            violations = [v.message for v in res.violations][:8]
            extra = [AIMessage(content=raw), HumanMessage(content=prompts.repair_message(violations, len(prep.citations)))]
            try:
                t_r = self._clock()
                raw2 = "".join(self._stream_llm(built.system, built.user, t0=t_r, extra=extra, **self._gen_kwargs()))
                prep.timings["regenerate"] = self._ms(t_r)
                text2, attached2 = attach_citations(
                    clean_llm_text(raw2), citations=prep.citations, plan=prep.plan, scorer=self._scorer,
                    context_text=prep.user_text,
                )
                repaired.extend(attached2)
                if self._usable(text2):
                    t_v = self._clock()
                    res2 = inspect_answer(
                        text2, citations=prep.citations, plan=prep.plan, scorer=self._scorer, check_required=required,
                        context_text=prep.user_text,
                    )
                    prep.timings["_verify_llm"] += self._ms(t_v)
                    repaired.append(f"regenerated once listing {len(violations)} violation(s)")
                    failed.extend(f"after regeneration: {x}" for x in res2.report.failed)
                    res = res2
                    if not res.violations:
                        return res.text, res, mode, failed, repaired
            except LLMError as exc:
                failed.append(f"regeneration failed: {exc}")
        struck, notes = strike(res)
        repaired.extend(notes)
        if not self._usable(struck) or self._too_thin(struck, prep.plan, self.answer_style):
            failed.append("too little verified text left after striking: composer fallback")
            return None, None, "composer-fallback", failed, repaired
        return struck, res, mode, failed, repaired

    def _screeners(self) -> tuple[Callable[..., list[Finding]], Callable[[str], list[str]]] | None:
        """The engine's safety screen and drug matcher (None for an engine without a safety pass)."""
        screen = getattr(self.engine, "screen", None)
        drugs_in = getattr(self.engine, "drugs_in", None)
        return (screen, drugs_in) if callable(screen) and callable(drugs_in) else None

    def _screen_draft(self, text: str, prep: _Prepared, failed: list[str]) -> None:
        """Drugs the model named that nothing screened yet pass the label check too; forbidden ones join the plan's
        must-not list, so the verifier strikes any sentence that offers them."""
        screeners = self._screeners()
        if screeners is None:
            return
        screen, drugs_in = screeners
        extra = [f.model_copy(update={"severity": "screen"}) for f in screen(prep.ctx, drugs_in(text), prep.plan.findings)]
        if extra:
            failed.extend(f"safety: the draft named {f.therapy}, contraindicated for this patient" for f in extra)
            prep.plan = self._plan_builder([*prep.plan.findings, *extra], prep.ctx, self._lexicon())

    def _ensure_bottom_line(self, text: str, prep: _Prepared, audience: str, notes: list[str]) -> str:
        """Small models sometimes skip the first section: put the composer's (rule-derived) one in front."""
        first = prompts.section_titles(audience)[0]
        if re.search(rf"^\s*#+\s*{re.escape(first)}\b", text, re.M | re.I):
            return text
        composed = compose_answer(
            prep.question, prep.plan, prep.citations, prep.ctx, audience=audience, display_names=self._display_names(prep.plan)
        )
        bottom = composed.body.split("\n## ", 1)[0].strip()
        notes.append(f"structure: '{first}' section was missing; added from the rule-checked plan")
        return f"{bottom}\n\n{text.strip()}"

    def _usable(self, text: str) -> bool:
        return len(text.strip()) >= 40 and bool(re.search(r"\[\d{1,3}\]", text))

    @staticmethod
    def _too_thin(text: str, plan: AnswerPlan, style: str = "sections") -> bool:
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


# ---------------------------------------------------------------- factory
def build_assistant(settings: Settings, *, warm: bool = True) -> Assistant:
    """The real thing: MiniLM embedder, Chroma store, hybrid retriever, corpus knowledge, rule engine, chat model.

    ``warm`` runs one retrieval so the first question does not pay the index's cold start.
    """
    from assistant.knowledge import load_knowledge
    from assistant.llm.backends import make_chat_model
    from assistant.retrieval import HybridRetriever
    from assistant.rules import RuleEngine
    from ingest.embedder import load_embedder
    from ingest.store import open_store

    embedder = load_embedder(settings)
    store = open_store(settings, embedder)
    if store.count() == 0:
        # an empty (never ingested, or mistyped --store) index would otherwise answer every question
        # with "the guidelines in my corpus do not cover this", which is false
        where = settings.chroma_url or settings.index_dir
        raise StoreError(f"the index at {where} is empty: run `guiderail ingest` first")
    knowledge = load_knowledge(settings.corpus_dir)
    assistant = Assistant(
        settings,
        retriever=HybridRetriever(store, settings),
        engine=RuleEngine(knowledge),
        knowledge=knowledge,
        chat_model=make_chat_model(settings),
        embedder=embedder,
    )
    if warm:
        assistant.warm_up()
    return assistant
