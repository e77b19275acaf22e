"""Citations: retrieved passages → numbered `Citation` records, findings' refs → citation numbers, and the
"[n]" marks. Pure; runs once per answer, before the plan is built (the orchestrator numbers the sources, the
composer and the verifier read the numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from assistant.models import Citation, Finding, RetrievedPassage

# Sources are numbered in reading order (options, exclusions, warnings, questions, then retrieval
# hits); when the cap bites, recommendations, exclusions and warnings keep their passages first (why:
# the options, "Not recommended" and "Pitfalls" sections must stay cited).
_READING_ORDER = {"recommend": 0, "consider": 1, "exclude": 2, "warn": 3, "ask": 4}
_KEEP_PRIORITY = {"recommend": 0, "exclude": 1, "warn": 2, "consider": 3, "ask": 4}


def citation_from_passage(p: RetrievedPassage, number: int) -> Citation:
    return Citation(
        number=number,
        doc_id=p.doc_id,
        title=p.title or p.doc_id,
        organisation=p.issuing_body,
        year=str(p.year or ""),
        section=p.section_path,
        chunk_id=p.chunk_id,
        passage=passage_body(p.text),
        url=p.url,
        strength=p.strength,
        rec_id=p.rec_id,
        last_reviewed=p.last_reviewed,
        unverified=bool(p.unverified),
        flagged=p.flagged,  # issue 14: planted-instruction flag travels with the passage
    )


_HEADER_LINE = re.compile(r"^[^\n]*(?: › |\[[A-Z][A-Z0-9-]+ · )[^\n]*\n")


def passage_body(text: str) -> str:
    """A chunk's text without the heading-path/recommendation header line ingest prefixes to it."""
    return _HEADER_LINE.sub("", text, count=1).strip() if "\n" in text else text.strip()


def plain_text(text: str) -> str:
    """Passage text fit for quoting in prose: no code fences, emphasis, arrows or list markers."""
    text = passage_body(text)
    text = re.sub(r"```\w*", " ", text)
    text = re.sub(r"(\*\*|__|`)", "", text)
    text = re.sub(r"(?<![\w*])[*_]([^*_\n]+)[*_](?![\w*])", r"\1", text)
    text = re.sub(r"-->|->|=>", ";", text)
    text = re.sub(r"(?m)^\s*(?:[-*+]|\d+[.)])\s+", "", text)
    text = re.sub(r"(?m)^#+\s*", "", text)
    text = re.sub(r"\s*\n\s*", " ", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def _pref(f: Finding) -> int:
    return f.preference if f.preference is not None else 99


def number_sources(
    findings: Sequence[Finding],
    passages_by_ref: Mapping[str, Sequence[RetrievedPassage]],
    retrieved: Sequence[RetrievedPassage],
    *,
    max_sources: int = 20,
    per_ref: int = 1,
    min_retrieved: int = 4,
    refs_per_finding: int = 2,
) -> tuple[list[Citation], list[Finding]]:
    """Deduplicate and number the passages: the findings' refs first, then retrieval hits.

    At most ``max_sources`` passages; ``min_retrieved`` slots are kept for retrieval hits that the
    findings did not already bring (why: they answer the question's wording, not just the rules).

    Returns the citations and the findings (same order as given) with ``citations`` set to the numbers
    of the passages that back them. A finding whose refs found no passage keeps an empty list.
    """
    def refs_of(f: Finding) -> list[RetrievedPassage]:
        # A rule lists its primary sources first; two per finding keep the Sources list readable.
        limit = 1 if f.kind == "ask" else refs_per_finding
        found = [p for ref in f.refs for p in list(passages_by_ref.get(ref, ()))[:per_ref]]
        return found[:limit]

    # 1. choose which passages survive the cap: round-robin over findings by priority, so every
    #    finding gets its first passage before any gets a second; keep slots for retrieval hits.
    keep: list[str] = []
    by_priority = sorted(findings, key=lambda f: (_KEEP_PRIORITY.get(f.kind, 9), _pref(f)))
    per_finding = [[p.chunk_id for p in refs_of(f)] for f in by_priority]
    ref_ids = {cid for ids in per_finding for cid in ids}
    extra = [p.chunk_id for p in retrieved if p.chunk_id not in ref_ids]
    budget = max(0, max_sources - min(len(extra), min_retrieved))
    depth = max((len(ids) for ids in per_finding), default=0)
    for level in range(depth):
        for ids in per_finding:
            if level < len(ids) and ids[level] not in keep and len(keep) < budget:
                keep.append(ids[level])
    for cid in extra:
        if len(keep) >= max_sources:
            break
        if cid not in keep:
            keep.append(cid)
    # 2. number the survivors in reading order
    number: dict[str, int] = {}
    cites: list[Citation] = []
    reading = sorted(findings, key=lambda f: (_READING_ORDER.get(f.kind, 9), _pref(f)))
    for p in [p for f in reading for p in refs_of(f)] + list(retrieved):
        if p.chunk_id in keep and p.chunk_id not in number:
            number[p.chunk_id] = len(cites) + 1
            cites.append(citation_from_passage(p, number[p.chunk_id]))
    numbered = [
        f.model_copy(update={"citations": list(dict.fromkeys(number[p.chunk_id] for p in refs_of(f) if p.chunk_id in number))})
        for f in findings
    ]
    return cites, numbered


_CITE = re.compile(r"\[(\d{1,3})\]")


def cited_numbers(text: str) -> list[int]:
    """Citation numbers in order of first appearance."""
    seen: list[int] = []
    for m in _CITE.finditer(text):
        n = int(m.group(1))
        if n not in seen:
            seen.append(n)
    return seen


def cite_marks(numbers: Iterable[int]) -> str:
    return "".join(f"[{n}]" for n in numbers)
