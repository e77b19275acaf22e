"""The BM25 side of the index: metadata filters (shared with Chroma's `where`), the `Hit` record, and the
sidecar — a bm25s index plus the catalog (text and metadata of every live chunk) of one manifest generation.
`ingest.store.IndexStore` owns the commit protocol that decides which generation is live.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.text import bm25_tokens

Metadata = dict[str, Any]

# ---------------------------------------------------------------- filters
SOFT_FILTERS = ("issuing_body", "topic", "topics", "title")  # substring, case-insensitive


def matches(meta: Mapping[str, Any], filters: Mapping[str, Any] | None) -> bool:
    """Does chunk metadata satisfy the filters? Lists mean any-of; body/topic match by substring."""
    if not filters:
        return True
    for key, want in filters.items():
        if want is None or want == "" or want == []:
            continue
        wants = [str(w).lower() for w in (want if isinstance(want, (list, tuple, set)) else [want])]
        if key in ("topic", "topics"):
            have = f"{meta.get('topics', '')} {meta.get('section_path', '')} {meta.get('title', '')}".lower()
            if not any(w in have for w in wants):
                return False
        elif key in SOFT_FILTERS:
            have = str(meta.get(key, "")).lower()
            if not any(w in have for w in wants):
                return False
        else:
            have = str(meta.get(key, "")).lower()
            if have not in wants:
                return False
    return True


def chroma_where(filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The exact-match part of `filters` as a Chroma `where` (soft filters are applied afterwards)."""
    clauses: list[dict[str, Any]] = []
    for key, want in (filters or {}).items():
        if key in SOFT_FILTERS or want is None or want == "" or want == []:
            continue
        if isinstance(want, (list, tuple, set)):
            clauses.append({key: {"$in": [str(w) for w in want]}})
        else:
            clauses.append({key: {"$eq": want if isinstance(want, (bool, int, float)) else str(want)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


# ---------------------------------------------------------------- records
@dataclass(frozen=True)
class Hit:
    """One chunk returned by a retriever, with the retriever's own score and 1-based rank."""

    chunk_id: str
    text: str
    metadata: Metadata
    score: float  # dense: cosine similarity; bm25: BM25 score
    rank: int


# ---------------------------------------------------------------- BM25 sidecar
def _bm25s() -> Any:
    """bm25s, with its logger put back under the application's log level.

    bm25s sets its own logger to DEBUG on import, so "DEBUG bm25s: Building index from tokens" would
    print at the default (WARNING) level; NOTSET makes it inherit the root level (DEBUG only with -v).
    """
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


class Bm25Sidecar:
    """bm25s index + the catalog (text and metadata of every live chunk) for one generation."""

    def __init__(
        self, ids: list[str], texts: list[str], metas: list[Metadata], retriever: Any | None
    ) -> None:
        self.ids = ids
        self.texts = texts
        self.metas = metas
        self.retriever = retriever
        self.pos = {cid: i for i, cid in enumerate(ids)}
        self._masks: dict[str, Any] = {}  # filter → numpy mask, cached (the catalog never changes in place)
        self._by_rec: dict[str, list[int]] | None = None
        self._by_doc: dict[str, list[int]] | None = None
        self._topics: frozenset[str] | None = None

    def rec_index(self) -> dict[str, list[int]]:
        if self._by_rec is None:
            self._by_rec = {}
            for i, m in enumerate(self.metas):
                if m.get("rec_id"):
                    self._by_rec.setdefault(str(m["rec_id"]), []).append(i)
        return self._by_rec

    def doc_index(self) -> dict[str, list[int]]:
        if self._by_doc is None:
            self._by_doc = {}
            for i, m in enumerate(self.metas):
                self._by_doc.setdefault(str(m.get("doc_id", "")), []).append(i)
        return self._by_doc

    def mask(self, filters: Mapping[str, Any]) -> Any:
        import numpy as np

        key = json.dumps(filters, sort_keys=True, default=str)
        if key not in self._masks:
            if len(self._masks) > 64:
                self._masks.clear()
            self._masks[key] = np.fromiter(
                (matches(m, filters) for m in self.metas), dtype=bool, count=len(self.metas)
            )
        return self._masks[key]

    @classmethod
    def build(cls, ids: list[str], texts: list[str], metas: list[Metadata]) -> Bm25Sidecar:
        retriever = None
        if ids:
            bm25s = _bm25s()
            retriever = bm25s.BM25()
            retriever.index([bm25_tokens(t) or ["\u2205"] for t in texts], show_progress=False)
        return cls(ids, texts, metas, retriever)

    def save(self, folder: Path) -> None:
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with open(tmp / "catalog.json", "w", encoding="utf-8") as f:
            json.dump({"ids": self.ids, "texts": self.texts, "metas": self.metas}, f, ensure_ascii=False)
        if self.retriever is not None:
            self.retriever.save(str(tmp / "bm25"), show_progress=False)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

    @classmethod
    def load(cls, folder: Path) -> Bm25Sidecar:
        with open(folder / "catalog.json", encoding="utf-8") as f:
            d = json.load(f)
        retriever = None
        if d["ids"]:
            bm25s = _bm25s()
            retriever = bm25s.BM25.load(str(folder / "bm25"), show_progress=False)
        return cls(d["ids"], d["texts"], d["metas"], retriever)

    def topic_terms(self) -> frozenset[str]:
        """BM25 tokens of what the documents say they are about: titles, declared topics and, outside label
        digests (whose sections name every warning), section headings. A condition none of these name is one the
        corpus mentions at most in passing."""
        if self._topics is None:
            words: set[str] = set()
            for m in self.metas:
                parts = [str(m.get("title") or ""), str(m.get("topics") or "")]
                if m.get("kind") != "label":
                    parts.append(str(m.get("section_path") or ""))
                words.update(bm25_tokens(re.sub(r"(?<=\w)[-/](?=\w)", " ", " ".join(parts))))
            self._topics = frozenset(words)
        return self._topics

    def doc_freq(self, token: str) -> int:
        """In how many live chunks a BM25 token occurs (0 when the index has never seen it)."""
        if self.retriever is None:
            return 0
        idx = self.retriever.vocab_dict.get(token)
        if idx is None:
            return 0
        indptr = self.retriever.scores["indptr"]
        return int(indptr[idx + 1] - indptr[idx])

    def search(self, query: str, k: int, filters: Mapping[str, Any] | None = None) -> list[Hit]:
        if self.retriever is None or k <= 0:
            return []
        import numpy as np

        toks = bm25_tokens(query)
        if not toks:
            return []
        scores = self.retriever.get_scores(toks)
        if filters:
            scores = np.where(self.mask(filters), scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [
            Hit(self.ids[i], self.texts[i], self.metas[i], float(scores[i]), r + 1)
            for r, i in enumerate(top)
            if scores[i] > 0
        ]


# ---------------------------------------------------------------- the store
