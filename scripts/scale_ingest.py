"""Ingest the NCI pages into a separate store and record the scale figures (see ingest/scale.py).

.venv/bin/python scripts/scale_ingest.py --nci ../shared/corpora/nci --store .data/scale-nci --out runs/scale.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nci", type=Path, default=Path("../shared/corpora/nci"))
    ap.add_argument("--store", type=Path, default=Path(".data/scale-nci"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--queries", type=int, default=250)
    ap.add_argument("--encode-sample", type=int, default=2000)
    ap.add_argument("--queries-only", action="store_true", help="measure query latency on the existing store")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "chromadb", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from assistant.retrieval import HybridRetriever
    from assistant.settings import load_settings
    from ingest.scale import measure_ingest, measure_queries

    if args.queries_only:
        result = measure_queries(
            load_settings(), args.store.resolve(), retriever_factory=HybridRetriever, queries=args.queries
        )
    else:
        result = measure_ingest(
            load_settings(),
            args.nci.resolve(),
            args.store.resolve(),
            retriever_factory=HybridRetriever,
            queries=args.queries,
            encode_sample=args.encode_sample,
        )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
