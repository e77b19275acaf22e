"""Hybrid retrieval: dense (Chroma, MiniLM) + BM25, fused, filtered, de-duplicated.

Why both: the small general embedding model places "olaparib", "CHEK2" or "Lu-177-PSMA-617" poorly,
while BM25 (with a tokenizer that keeps hyphenated names and numbers) finds them exactly; dense
search finds paraphrases BM25 misses. Reciprocal rank fusion combines the two rankings without
having to calibrate their scores against each other; a weighted score fusion is kept as an option
because it was measured against RRF (see `scripts/fusion_eval.py` and the README).

Every passage carries its dense cosine, its BM25 score and a 0–1 `relevance` (max of the cosine and
the share of query terms the passage contains, halved) that the answer pipeline compares with
`settings.min_relevance` to abstain instead of answering from unrelated text.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from assistant.models import PatientContext, RetrievedPassage
from ingest.store import Hit
from ingest.text import bm25_tokens

if TYPE_CHECKING:
    from assistant.settings import Settings
    from ingest.store import IndexStore

log = logging.getLogger(__name__)

FILTER_KEYS = frozenset(
    {"source_pack", "issuing_body", "year", "kind", "topic", "topics", "doc_id", "rec_id"}
)
Fusion = Literal["rrf", "weighted"]
LEXICAL_WEIGHT = 0.5  # a passage containing every query term counts as relevance 0.5 (cosine of a good match)


# ---------------------------------------------------------------- pure transforms
def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = 60) -> list[tuple[str, float]]:
    """Σ 1/(k + rank) over the rankings an id appears in; ties keep first-seen order."""
    if k < 1:
        raise ValueError(f"rrf k must be ≥ 1, got {k}")
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def weighted_fusion(
    dense: Sequence[tuple[str, float]], sparse: Sequence[tuple[str, float]], alpha: float = 0.5
) -> list[tuple[str, float]]:
    """alpha·minmax(dense) + (1−alpha)·minmax(bm25); a retriever that missed an id contributes 0."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")

    def norm(pairs: Sequence[tuple[str, float]]) -> dict[str, float]:
        if not pairs:
            return {}
        vals = [s for _, s in pairs]
        lo, hi = min(vals), max(vals)
        span = (hi - lo) or 1.0
        return {cid: (s - lo) / span if hi > lo else 1.0 for cid, s in pairs}

    d, s = norm(dense), norm(sparse)
    ids = list(dict.fromkeys([*d, *s]))
    return sorted(
        ((c, alpha * d.get(c, 0.0) + (1 - alpha) * s.get(c, 0.0)) for c in ids), key=lambda kv: -kv[1]
    )


def term_coverage(query: str | set[str], text: str | set[str]) -> float:
    """Share of the query's distinct content terms that occur in `text` (0–1); token sets accepted too."""
    q = query if isinstance(query, set) else set(bm25_tokens(query))
    if not q:
        return 0.0
    t = text if isinstance(text, set) else set(bm25_tokens(text))
    return len(q & t) / len(q)


def _near_dup_key(text: str) -> str:
    body = text.split("\n", 1)[
        -1
    ]  # ignore the heading prefix: same text under different titles is a duplicate
    return hashlib.blake2b(re.sub(r"\W+", " ", body.lower()).strip().encode()).hexdigest()


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def deduplicate(
    passages: Sequence[RetrievedPassage],
    threshold: float = 0.85,
    body_tokens: Mapping[str, set[str]] | None = None,
) -> list[RetrievedPassage]:
    """Drop later passages whose text is identical (anywhere) or near-identical within one doc section.

    `body_tokens` (chunk id → token set of the text after the heading line) saves re-tokenising."""
    kept: list[RetrievedPassage] = []
    keys: set[str] = set()
    toks: list[set[str]] = []
    for p in passages:
        key = _near_dup_key(p.text)
        if key in keys:
            continue
        cached = body_tokens.get(p.chunk_id) if body_tokens else None
        t = cached if cached is not None else set(bm25_tokens(p.text.split("\n", 1)[-1]))
        if any(
            q.doc_id == p.doc_id and q.section_path == p.section_path and _jaccard(t, tq) >= threshold
            for q, tq in zip(kept, toks, strict=True)
        ):
            continue
        keys.add(key)
        kept.append(p)
        toks.append(t)
    return kept


def check_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate filter keys early and name the bad one."""
    out = dict(filters or {})
    bad = sorted(set(out) - FILTER_KEYS)
    if bad:
        raise ValueError(f"unknown retrieval filter(s) {bad}; allowed: {sorted(FILTER_KEYS)}")
    return {k: v for k, v in out.items() if v not in (None, "", [], ())}


def to_passage(hit: Hit, **extra: Any) -> RetrievedPassage:
    m = hit.metadata
    return RetrievedPassage(
        chunk_id=hit.chunk_id,
        doc_id=str(m.get("doc_id", "")),
        text=hit.text,
        title=str(m.get("title", "")),
        issuing_body=str(m.get("issuing_body", "")),
        year=str(m.get("year", "")),
        url=str(m.get("url", "")),
        section_path=str(m.get("section_path", "")),
        rec_id=str(m.get("rec_id", "")),
        strength=str(m.get("strength", "")),
        evidence=str(m.get("evidence", "")),
        source_pack=str(m.get("source_pack", "")),
        kind=str(m.get("kind", "")),
        last_reviewed=str(m.get("last_reviewed", "")),
        unverified=bool(m.get("unverified", False)),
        slug=str(m.get("slug", "")),
        population=str(m.get("population", "")),
        # chunk flag from ingest (issue 14): a planted instruction is data; keep why it was flagged
        flagged=str(m.get("flag_reason") or ("addresses the model" if m.get("flagged") else "")),
        **extra,
    )


# ---------------------------------------------------------------- the retriever
class HybridRetriever:
    """Dense + BM25 over one `IndexStore`, fused (RRF by default), filtered and de-duplicated."""

    def __init__(
        self, store: IndexStore, settings: Settings, fusion: Fusion = "rrf", alpha: float = 0.5
    ) -> None:
        if fusion not in ("rrf", "weighted"):
            raise ValueError(f"fusion must be 'rrf' or 'weighted', got {fusion!r}")
        self.store = store
        self.settings = settings
        self.fusion = fusion
        self.alpha = alpha
        store.check_embedder()

    def retrieve(
        self, query: str, k: int | None = None, filters: Mapping[str, Any] | None = None
    ) -> list[RetrievedPassage]:
        """Top-k passages for `query` (k defaults to settings.top_k), best first."""
        query = (query or "").strip()
        if not query:
            return []
        k = k or self.settings.top_k
        flt = check_filters(filters)
        n = max(self.settings.candidates_k, k)
        qvec = self.store.embedder.embed([query])[0]
        dense = self.store.query_dense_vector(qvec, n, flt or None)
        sparse = self.store.query_bm25(query, n, flt or None)
        hits: dict[str, Hit] = {h.chunk_id: h for h in sparse}
        hits.update({h.chunk_id: h for h in dense})
        d_rank = {h.chunk_id: h.rank for h in dense}
        d_score = {h.chunk_id: h.score for h in dense}
        s_rank = {h.chunk_id: h.rank for h in sparse}
        s_score = {h.chunk_id: h.score for h in sparse}
        if self.fusion == "rrf":
            fused = reciprocal_rank_fusion(
                [[h.chunk_id for h in dense], [h.chunk_id for h in sparse]], self.settings.rrf_k
            )
        else:
            fused = weighted_fusion(
                [(h.chunk_id, h.score) for h in dense], [(h.chunk_id, h.score) for h in sparse], self.alpha
            )
        # Cosine for keyword-only hits too, so every passage has a comparable relevance signal.
        head = [cid for cid, _ in fused[: k * 3]]
        missing = [cid for cid in head if cid not in d_score]
        if missing:
            d_score.update(self._cosines(qvec, missing))
        passages = []
        q_tokens = set(bm25_tokens(query))
        body_tokens: dict[str, set[str]] = {}
        for cid, score in fused[: k * 3]:
            h = hits[cid]
            cos = d_score.get(cid)
            head, _, body = h.text.partition("\n")
            body_tokens[cid] = set(bm25_tokens(body)) if body else set(bm25_tokens(head))
            coverage = term_coverage(q_tokens, body_tokens[cid] | set(bm25_tokens(head)))
            rel = max(cos or 0.0, LEXICAL_WEIGHT * coverage)
            passages.append(
                to_passage(
                    h,
                    score=float(score),
                    dense_rank=d_rank.get(cid),
                    bm25_rank=s_rank.get(cid),
                    dense_score=cos,
                    bm25_score=s_score.get(cid),
                    relevance=round(min(max(rel, 0.0), 1.0), 4),
                )
            )
        return deduplicate(passages, body_tokens=body_tokens)[:k]

    def _cosines(self, qvec: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        try:
            got = self.store.collection.get(ids=list(ids), include=["embeddings"])
        except Exception as exc:  # relevance is advisory: never fail a query over it
            log.debug("could not fetch embeddings for relevance: %s", exc)
            return {}
        out = {}
        for cid, vec in zip(got["ids"], got["embeddings"], strict=True):
            out[cid] = float(sum(a * b for a, b in zip(qvec, vec, strict=False)))
        return out

    def topic_terms(self) -> frozenset[str]:
        """BM25 tokens of what the indexed documents are about (titles, topics, headings)."""
        return self.store.topic_terms()

    def term_doc_freq(self, tokens: Iterable[str]) -> dict[str, int]:
        """How many indexed chunks contain each BM25 token (0: the corpus has never seen the word)."""
        return self.store.term_doc_freq(tokens)

    def passages_for_refs(self, refs: Iterable[str]) -> dict[str, list[RetrievedPassage]]:
        """Recommendation ids and `<doc_id>#<slug>` refs → their passages (document order); unknown → []."""
        resolved = self.store.get_by_refs(list(dict.fromkeys(refs)))
        return {
            ref: [to_passage(h, score=1.0, relevance=1.0) for h in hits] for ref, hits in resolved.items()
        }


def build_retriever(settings: Settings) -> HybridRetriever:
    """The real retriever for `settings` (MiniLM + the configured store)."""
    from ingest.embedder import load_embedder
    from ingest.store import open_store

    return HybridRetriever(open_store(settings, load_embedder(settings)), settings)


# ---------------------------------------------------------------- one question, its searches
def relevance_of(p: RetrievedPassage) -> float:
    """The retriever's calibrated 0–1 relevance when it set one (RRF scores are rank-based, not calibrated)."""
    return p.relevance if "relevance" in p.model_fields_set else p.score


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


def best_reading(*readings: Sequence[RetrievedPassage], k: int) -> list[RetrievedPassage]:
    """The top ``k`` passages over several searches for one question, each passage at its best relevance."""
    best: dict[str, RetrievedPassage] = {}
    for hits in readings:
        for p in hits:
            if p.chunk_id not in best or relevance_of(p) > relevance_of(best[p.chunk_id]):
                best[p.chunk_id] = p
    return sorted(best.values(), key=relevance_of, reverse=True)[:k]
