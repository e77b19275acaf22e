"""Sections → chunks that fit the embedding model's real input limit. Pure: no I/O, no model calls.

Why measured tokens: all-MiniLM-L6-v2 truncates its input at 256 word-pieces (incl. [CLS]/[SEP]); a
longer chunk is embedded from its head only and its tail becomes invisible to dense search. Words
are a poor proxy (drug names and numbers split into many word-pieces), so every chunk is measured
with the model's own tokenizer (`count_tokens`) and guaranteed to fit.

Rules: a chunk never crosses a section boundary; each chunk starts with a short heading context
("Title › Section › Subsection") so it stands alone for both retrievers and for the reader; a
recommendation block is kept whole when it fits, otherwise split with its id/strength on every piece.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ingest.injection import chunk_flags
from ingest.markdown import slugify
from ingest.models import Chunk, DocumentMeta, Section
from ingest.text import split_chunk_sentences

PATH_SEP = " › "
# Reference lists are citations (authors, journals, PubMed links): noise for both retrievers and never
# the passage a clinician needs. On the NCI pages they were about half of all text.
SKIPPED_SLUGS = frozenset({"references", "reference-list", "bibliography", "literature-cited", "works-cited"})
_PARA = re.compile(r"\n\s*\n")


def chunk_id(doc_id: str, section_path: str, text: str) -> str:
    """Content hash of document id, section path and text: same content → same id, on every run."""
    h = hashlib.sha256(f"{doc_id}\x1f{section_path}\x1f{text}".encode()).hexdigest()
    return h[:32]


def heading_prefix(
    meta: DocumentMeta, section: Section, count_tokens: Callable[[str], int], limit: int
) -> str:
    """Short heading context for a chunk, e.g. `Olaparib label › Indications [LBL-OLAPARIB-IND · n/a]`.

    The document title is included unless the first heading already repeats it; when the context is
    too long, outer headings are dropped first (the innermost heading says most about the passage).
    """
    parts = [p for p in section.heading_path if p]
    title = meta.title.strip()
    if title and not (parts and _similar(parts[0], title)):
        parts = [title, *parts]
    tag = ""
    if section.rec_id:
        grade = " · ".join(x for x in (section.strength, section.evidence) if x)
        tag = f" [{section.rec_id}{' · ' + grade if grade else ''}]"
    while True:
        prefix = (PATH_SEP.join(parts) + tag).strip()
        if count_tokens(prefix) <= limit or len(parts) <= 1:
            break
        parts = parts[1:]
    if count_tokens(prefix) > limit:  # a single enormous heading: cut it by words
        words = prefix.split()
        while words and count_tokens(" ".join(words)) > limit:
            words = words[: max(1, len(words) * 3 // 4)] if len(words) > 1 else []
        prefix = " ".join(words)
    return prefix


def _similar(a: str, b: str) -> bool:
    sa, sb = slugify(a), slugify(b)
    return bool(sa) and (sa == sb or sa.startswith(sb) or sb.startswith(sa))


@dataclass(frozen=True)
class _Unit:
    text: str
    sep: str  # separator placed before this unit when joined to the previous one
    tokens: int


def _units(text: str, budget: int, count_tokens: Callable[[str], int]) -> list[_Unit]:
    """Split text into pieces each ≤ budget tokens: paragraphs, then lines, then sentences, then words."""
    out: list[_Unit] = []

    def add(piece: str, sep: str, level: int) -> None:
        piece = piece.strip()
        if not piece:
            return
        # A word-piece rarely spans more than ~20 characters: far longer pieces need no measuring to split.
        n = budget + 1 if len(piece) > 25 * budget else count_tokens(piece)
        if n <= budget:
            out.append(_Unit(piece, sep, n))
            return
        splitters: list[tuple[Callable[[str], list[str]], str]] = [
            (lambda s: _PARA.split(s), "\n\n"),
            (lambda s: s.split("\n"), "\n"),
            (split_chunk_sentences, " "),
            (lambda s: s.split(), " "),
        ]
        for lvl in range(level, len(splitters)):
            split, inner_sep = splitters[lvl]
            parts = [p for p in split(piece) if p.strip()]
            if len(parts) > 1:
                for k, p in enumerate(parts):
                    add(p, sep if k == 0 else inner_sep, lvl + 1)
                return
        # One "word" longer than the budget (a URL, a long gene list without spaces): cut by characters.
        lo = piece
        while lo:
            cut = len(lo)
            while cut > 1 and count_tokens(lo[:cut]) > budget:
                cut = cut * 3 // 4
            out.append(_Unit(lo[:cut], sep if lo is piece else "", count_tokens(lo[:cut])))
            lo = lo[cut:]

    add(text, "", 0)
    return out


def _tail(unit: _Unit, overlap: int, count_tokens: Callable[[str], int]) -> _Unit | None:
    """The last sentences of `unit` that fit in `overlap` tokens (context carried into the next chunk)."""
    sentences = [x for x in split_chunk_sentences(unit.text) if x.strip()]
    picked: list[str] = []
    for sentence in reversed(sentences[1:]):  # never the whole unit: that is the normal carry
        candidate = " ".join([sentence, *picked])
        if count_tokens(candidate) > overlap:
            break
        picked.insert(0, sentence)
    if not picked:
        return None
    text = " ".join(picked)
    return _Unit(text, "", count_tokens(text))


def _pack(
    units: Sequence[_Unit], budget: int, overlap: int, count_tokens: Callable[[str], int] | None = None
) -> list[list[_Unit]]:
    """Greedy packing of units into groups ≤ budget, carrying up to `overlap` tokens of tail text."""
    groups: list[list[_Unit]] = []
    cur: list[_Unit] = []
    size = 0
    for u in units:
        if cur and size + u.tokens > budget:
            groups.append(cur)
            carry: list[_Unit] = []
            carried = 0
            for prev in reversed(cur):
                if carried + prev.tokens > overlap or carried + prev.tokens + u.tokens > budget:
                    if not carry and overlap and count_tokens is not None:
                        part = _tail(prev, overlap, count_tokens)
                        if part is not None and part.tokens + u.tokens <= budget:
                            carry, carried = [part], part.tokens
                    break
                carry.insert(0, prev)
                carried += prev.tokens
            cur, size = carry, carried
        cur.append(u)
        size += u.tokens
    if cur:
        groups.append(cur)
    return groups


def _join(group: Iterable[_Unit]) -> str:
    parts: list[str] = []
    for k, u in enumerate(group):
        parts.append(u.text if k == 0 else (u.sep or " ") + u.text)
    return "".join(parts)


def section_metadata(
    meta: DocumentMeta, section: Section, doc_hash: str
) -> dict[str, str | int | float | bool]:
    """Chroma metadata for chunks of one section (strings/ints/bools only; no None)."""
    path = PATH_SEP.join(section.heading_path)
    return {
        "doc_id": meta.doc_id,
        "title": meta.title,
        "issuing_body": meta.issuing_body,
        "year": meta.year,
        "url": section.rec_url or meta.url,
        "section_path": path,
        "slug": section.slug,
        # every heading slug on the path, "/"-joined: lets `<doc>#<slug>` of a parent heading find its children
        "slug_path": "/" + "/".join(slugify(h) for h in section.heading_path) + "/",
        "rec_id": section.rec_id,
        "strength": section.strength,
        "evidence": section.evidence,
        "population": section.population,
        "rec_source": section.rec_source,
        "source_pack": meta.source_pack,
        "kind": meta.kind,
        "last_reviewed": meta.last_reviewed,
        "specialty": meta.specialty,
        "topics": ", ".join(meta.topics),
        # A recommendation block carries its own verification flag; the document-level flag ("some fact in
        # this digest could not be checked") applies only to the context paragraphs around the blocks.
        "unverified": bool(section.unverified if section.rec_id else (meta.unverified or section.unverified)),
        "line": int(section.line),
        "path": meta.path,
        "content_hash": doc_hash,
    }


def chunk_sections(
    meta: DocumentMeta,
    sections: Sequence[Section],
    count_tokens: Callable[[str], int],
    max_tokens: int = 230,
    overlap: int = 30,
    doc_hash: str = "",
) -> list[Chunk]:
    """Chunks of at most `max_tokens` tokens (prefix included, special tokens excluded), in document order."""
    if max_tokens < 16:
        raise ValueError(f"max_tokens must be at least 16, got {max_tokens}")
    if overlap < 0 or overlap >= max_tokens // 2:
        raise ValueError(f"overlap must be in [0, {max_tokens // 2}), got {overlap}")
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for section in sections:
        body = section.text.strip()
        if not body or (section.slug in SKIPPED_SLUGS and not section.rec_id):
            continue
        prefix = heading_prefix(meta, section, count_tokens, limit=max(8, max_tokens // 5))
        base = section_metadata(meta, section, doc_hash)
        section_path = str(base["section_path"])
        # The separator "\n" and the join of prefix and body may add a token: budget for it.
        budget = max_tokens - (count_tokens(prefix) + 1 if prefix else 0)
        texts = _fit(body, prefix, budget, max_tokens, overlap, count_tokens)
        for piece in texts:
            cid = chunk_id(meta.doc_id, section_path, piece)
            if cid in seen:  # the same passage twice under one heading: index it once
                continue
            seen.add(cid)
            md = dict(base)
            md["ordinal"] = len(chunks)
            # issue 14: ingested text is data, never instructions; a chunk that addresses the model is
            # flagged here (`flagged`, `flag_reason`) so the UI marks it and the answer never quotes it
            md.update(chunk_flags(piece))
            chunks.append(Chunk(cid, meta.doc_id, piece, section_path, len(chunks), md))
    return chunks


def _fit(
    body: str, prefix: str, budget: int, max_tokens: int, overlap: int, count_tokens: Callable[[str], int]
) -> list[str]:
    """Pack `body` under `prefix` so every resulting text measures ≤ max_tokens (re-packs tighter if not)."""
    for _ in range(8):
        whole = f"{prefix}\n{body}" if prefix else body
        if len(whole) <= 25 * max_tokens and count_tokens(whole) <= max_tokens:
            return [whole]
        groups = _pack(_units(body, budget, count_tokens), budget, min(overlap, budget // 3), count_tokens)
        texts = [f"{prefix}\n{_join(g)}" if prefix else _join(g) for g in groups]
        if all(count_tokens(t) <= max_tokens for t in texts):
            return texts
        budget = max(4, budget * 9 // 10)  # joins can merge word-pieces differently: tighten and retry
    raise ValueError(f"could not fit a section of {prefix!r} into {max_tokens} tokens")
