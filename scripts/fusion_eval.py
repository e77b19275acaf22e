"""Compare fusion methods (RRF vs weighted score fusion) and each retriever alone on labelled queries.

    .venv/bin/python scripts/fusion_eval.py --store .data/scale-nci [--queries tests/retrieval/data/nci_fusion_queries.yaml]

Relevance is per document: MRR@10 and recall@5 of the documents the labels name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=ROOT / ".data/scale-nci")
    ap.add_argument("--queries", type=Path, default=ROOT / "tests/retrieval/data/nci_fusion_queries.yaml")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import yaml

    from assistant.retrieval import HybridRetriever, reciprocal_rank_fusion, weighted_fusion
    from assistant.settings import load_settings
    from ingest.embedder import load_embedder
    from ingest.store import open_store

    settings = load_settings(store_dir=args.store.resolve())
    store = open_store(settings, load_embedder(settings))
    by_stem = {Path(str(v.get("path", ""))).stem: k for k, v in store.manifest().docs.items()}
    labelled = yaml.safe_load(args.queries.read_text())["queries"]
    n = settings.candidates_k

    methods = {
        "dense": lambda d, s: [(h.chunk_id, h.score) for h in d],
        "bm25": lambda d, s: [(h.chunk_id, h.score) for h in s],
        f"rrf_k{settings.rrf_k}": lambda d, s: reciprocal_rank_fusion(
            [[h.chunk_id for h in d], [h.chunk_id for h in s]], settings.rrf_k
        ),
        "rrf_k10": lambda d, s: reciprocal_rank_fusion([[h.chunk_id for h in d], [h.chunk_id for h in s]], 10),
    }
    for alpha in (0.3, 0.5, 0.7):
        methods[f"weighted_a{alpha}"] = lambda d, s, a=alpha: weighted_fusion(
            [(h.chunk_id, h.score) for h in d], [(h.chunk_id, h.score) for h in s], a
        )
    totals = {m: {"mrr@10": 0.0, "recall@5": 0.0} for m in methods}
    missing = []
    for item in labelled:
        rel = {by_stem[s] for s in item["relevant"] if s in by_stem}
        if not rel:
            missing.append(item["q"])
            continue
        d = store.query_dense(item["q"], n)
        s = store.query_bm25(item["q"], n)
        doc_of = {h.chunk_id: h.metadata.get("doc_id") for h in [*d, *s]}
        for m, fuse in methods.items():
            docs = list(dict.fromkeys(doc_of[c] for c, _ in fuse(d, s)))
            rr = next((1.0 / (i + 1) for i, doc in enumerate(docs[:10]) if doc in rel), 0.0)
            totals[m]["mrr@10"] += rr
            totals[m]["recall@5"] += len(rel & set(docs[:5])) / len(rel)
    used = len(labelled) - len(missing)
    result = {
        "queries": used,
        "unresolved_labels": missing,
        "methods": {m: {k: round(v / used, 3) for k, v in t.items()} for m, t in totals.items()},
        "default": HybridRetriever.__init__.__defaults__[0],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
