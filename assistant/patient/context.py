"""The patient stage's entry point: the question and earlier user turns → one `PatientContext`.

Data flow: each user turn is read on its own (`extract.PatientExtractor`), merged in order (`merge`), inferred
across facts (`infer`), given its question focus (`focus`), then the oncology part is added
(`assistant/oncology/context.py`) and, optionally, what a language-model reader found (`merge.add_llm_facts`).
Compiled extractors are cached per lexicon (compiling takes a few ms; questions come many per lexicon).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from assistant.knowledge import Lexicon, load_lexicon
from assistant.models import PatientContext
from assistant.oncology.context import with_tumour
from assistant.patient.extract import PatientExtractor
from assistant.patient.facts import TurnFacts
from assistant.patient.focus import question_focus
from assistant.patient.infer import infer
from assistant.patient.merge import add_llm_facts, merge_turn


@functools.lru_cache(maxsize=4)
def _default_extractor(corpus_dir: str) -> PatientExtractor:
    return PatientExtractor(load_lexicon(corpus_dir), corpus_dir)


_EXTRACTORS: dict[int, tuple[Lexicon, PatientExtractor]] = {}


def _extractor_for(lexicon: Lexicon) -> PatientExtractor:
    """Compiled patterns per lexicon object (compiling takes a few ms; questions come many per lexicon)."""
    hit = _EXTRACTORS.get(id(lexicon))
    if hit is None or hit[0] is not lexicon:
        if len(_EXTRACTORS) > 8:
            _EXTRACTORS.clear()
        hit = (lexicon, PatientExtractor(lexicon))
        _EXTRACTORS[id(lexicon)] = hit
    return hit[1]


def _user_turns(history: Sequence[Any] | None) -> list[str]:
    out = []
    for turn in history or []:
        if isinstance(turn, str):
            out.append(turn)
        elif isinstance(turn, dict):
            if turn.get("role", "user") == "user" and turn.get("content"):
                out.append(str(turn["content"]))
        else:
            role = getattr(turn, "role", "user")
            content = getattr(turn, "content", "")
            if role == "user" and content:
                out.append(str(content))
    return out


LLMExtractor = Callable[[str], PatientContext | dict[str, Any] | None]


def extract_context(
    question: str,
    history: Sequence[Any] | None = None,
    prior: PatientContext | None = None,
    lexicon: Lexicon | None = None,
    *,
    llm_extractor: LLMExtractor | None = None,
) -> PatientContext:
    """Read the patient's facts from the earlier user turns, then the question (newest wins).

    `history` holds `{"role", "content"}` dicts (or plain strings = user turns); assistant turns are
    ignored. `prior` is a context from earlier (e.g. the UI's patient panel) to build on: it already
    holds what the earlier turns said, so when it is given the history is not replayed over it
    (replaying would turn newer facts back into older ones). Every fact a later turn replaced is
    listed in `changes`. `llm_extractor`, when given, is called on the
    concatenated turns and may only fill facts the patterns left empty.
    """
    if lexicon is None:
        from assistant.settings import PROJECT_ROOT

        extractor = _default_extractor(str(PROJECT_ROOT / "corpus"))
    else:
        extractor = _extractor_for(lexicon)
    lex = extractor.lexicon
    turns = [*(_user_turns(history) if prior is None else []), question or ""]
    ctx = prior.model_copy(deep=True) if prior is not None else PatientContext()
    start_turn = (max((c.turn for c in ctx.changes), default=-1) + 1) if prior is not None else 0
    all_facts: list[TurnFacts] = []
    for i, text in enumerate(turns):
        if not text.strip():
            continue
        facts = extractor.extract_turn(text)
        all_facts.append(facts)
        ctx = merge_turn(ctx, facts, start_turn + i, lex, extractor.primary)
    ctx = infer(ctx, all_facts, lex, extractor.vocab)
    ctx = ctx.model_copy(update={"focus": question_focus(ctx, all_facts, extractor.primary)})
    ctx = with_tumour(
        ctx, [t for t in turns if t.strip()], getattr(extractor, "oncology", None), extractor.lexicon
    )
    if llm_extractor is not None:
        ctx = add_llm_facts(ctx, llm_extractor("\n".join(turns)))
    return ctx


def describe(ctx: PatientContext) -> str:
    """One-line summary for logs and the CLI."""
    parts = []
    if ctx.diagnoses:
        parts.append("dx=" + ",".join(ctx.diagnoses))
    if ctx.disease_state:
        parts.append(f"state={ctx.disease_state}")
    if ctx.therapies:
        parts.append("tx=" + ",".join(f"{t.therapy}:{t.status}" for t in ctx.therapies))
    if ctx.biomarkers:
        parts.append("bm=" + ",".join(f"{b.name}:{b.result}/{b.origin}" for b in ctx.biomarkers))
    if ctx.sites:
        parts.append("sites=" + ",".join(f"{k}:{v}" for k, v in ctx.sites.items()))
    if ctx.labs:
        parts.append("labs=" + ",".join(f"{k}:{v.value}" for k, v in ctx.labs.items()))
    if ctx.tumour is not None:
        from assistant.oncology.context import describe_tumour

        parts.append("tumour=" + describe_tumour(ctx.tumour).replace(" ", "_"))
    parts.extend(_describe_safety(ctx))
    return " ".join(parts)


def _describe_safety(ctx: PatientContext) -> list[str]:
    """Short phrases for the one-line summary (describe) and prompts."""
    parts: list[str] = []
    if ctx.pregnant:
        bits = [
            f"{ctx.gestational_weeks:g}w" if ctx.gestational_weeks is not None else "",
            f"T{ctx.trimester}" if ctx.trimester else "",
        ]
        parts.append("pregnant" + ("(" + ",".join(b for b in bits if b) + ")" if any(bits) else ""))
    elif ctx.pregnant is False and ctx.sex == "female":
        parts.append("not-pregnant")
    if ctx.postpartum:
        parts.append("postpartum")
    if ctx.lactating:
        parts.append("lactating")
    if ctx.allergies:
        det = {d.substance: d for d in ctx.allergy_details}
        parts.append(
            "allergy="
            + ",".join(
                a
                + (
                    f"({det[a].reaction or det[a].severity})"
                    if a in det and (det[a].reaction or det[a].severity != "unknown")
                    else ""
                )
                for a in ctx.allergies
            )
        )
    for name in (
        "diabetes_type",
        "child_pugh",
        "infection_site",
        "disease_volume",
        "presentation",
        "metastasis_imaging",
        "care_phase",
    ):
        v = getattr(ctx, name)
        if v is not None:
            parts.append(f"{name}={v}")
    uln = [f"{k}:{v.uln_multiple:g}xULN" for k, v in ctx.labs.items() if v.uln_multiple is not None]
    if uln:
        parts.append("uln=" + ",".join(uln))
    if ctx.declined:
        parts.append("declined=" + ",".join(ctx.declined))
    return parts
