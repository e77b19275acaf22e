"""Our NegEx-style polarity against medspacy's ConText on the labelled cases (issue #11: measure, then decide).

    python scripts/measure_context.py                     # ours only, when medspacy is not installed
    /path/to/venv-with-medspacy/bin/python scripts/measure_context.py [--cases FILE] [--json OUT]

Cases: tests/patient/polarity_cases.yaml (text, phrase, expected present / absent / possible, kind), drawn from the
phrasing tests. Ours: `assistant.patient.clauses.polarity` on the clause holding the phrase. ConText: a blank
medspaCy pipeline (PyRuSH sentences, its default ConText rules, no model weights) with one TargetRule for the
labelled phrase, on the whole text and again on the clause our splitter gives (so sentence splitting is not what
differs); negated → absent, uncertain or hypothetical → possible, anything else (historical too: our
readers count "history of DVT" as present) → present. Both are timed per case, after loading (medspaCy's pipeline
and our cue patterns are built before the clock starts). medspacy is not a project dependency: install it in a
throw-away virtual environment to run the comparison (it pins spaCy < 3.8 and numpy < 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.patient.clauses import polarity, split_clauses  # noqa: E402

CASES = ROOT / "tests" / "patient" / "polarity_cases.yaml"


def load_cases(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]


def phrase_at(text: str, phrase: str, occurrence: int = 1) -> int:
    """Offset of the n-th mention of the phrase (case-insensitive)."""
    at = -1
    for _ in range(occurrence):
        at = text.lower().find(phrase.lower(), at + 1)
        if at < 0:
            raise ValueError(f"{phrase!r} (occurrence {occurrence}) is not in {text!r}")
    return at


def in_clause(case: dict) -> tuple[str, int]:
    """The clause of the case's text that holds the phrase (our splitter), and the phrase's offset in it."""
    at = phrase_at(case["text"], case["phrase"], case.get("occurrence", 1))
    clause = next(c for c in reversed(split_clauses(case["text"])) if c.start <= at)
    return clause.text, at - clause.start


def ours(case: dict) -> str:
    clause, start = in_clause(case)
    return polarity(clause, start, start + len(case["phrase"]))


def context_reader():
    """A function case → reading with medspaCy's ConText, or None when medspacy is not installed."""
    try:
        import medspacy
        from loguru import logger
        from medspacy.target_matcher import TargetMatcher, TargetRule
    except ImportError:
        return None
    logger.remove()  # PyRuSH logs every token at DEBUG
    nlp = medspacy.load(enable=["medspacy_pyrush", "medspacy_context"])
    sentences, context = nlp.get_pipe("medspacy_pyrush"), nlp.get_pipe("medspacy_context")

    def read(case: dict, timings: list[float], clause_only: bool = False) -> str:
        matcher = TargetMatcher(nlp)
        matcher.add([TargetRule(case["phrase"], "FINDING")])
        if clause_only:
            text, at = in_clause(case)
        else:
            text, at = case["text"], phrase_at(case["text"], case["phrase"], case.get("occurrence", 1))
        t0 = time.perf_counter()
        doc = context(matcher(sentences(nlp.make_doc(text))))
        timings.append(time.perf_counter() - t0)
        ent = next((e for e in doc.ents if e.start_char <= at < e.end_char), None)
        if ent is None:
            return "not found"
        if ent._.is_negated:
            return "absent"
        if ent._.is_uncertain or ent._.is_hypothetical:
            return "possible"
        return "present"

    return read


def score(name: str, cases: list[dict], got: list[str], seconds: list[float]) -> dict:
    right = [g == c["expect"] for c, g in zip(cases, got, strict=True)]
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for c, ok in zip(cases, right, strict=True):
        by_kind[c["kind"]].append(ok)
    return {
        "reader": name,
        "cases": len(cases),
        "correct": sum(right),
        "accuracy": round(sum(right) / len(cases), 3),
        "by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_kind.items())},
        "confusion": dict(Counter(f"{c['expect']}->{g}" for c, g in zip(cases, got, strict=True) if g != c["expect"])),
        "us_per_case": round(1e6 * sum(seconds) / len(seconds), 1),
        "wrong": [
            f"{c['text']} | {c['phrase']} | labelled {c['expect']}, read {g}"
            for c, g, ok in zip(cases, got, right, strict=True)
            if not ok
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, default=CASES)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    cases = load_cases(args.cases)

    ours(cases[0])  # builds and caches the cue patterns before timing
    got, seconds = [], []
    for case in cases:
        t0 = time.perf_counter()
        got.append(ours(case))
        seconds.append(time.perf_counter() - t0)
    results = [score("ours (assistant.patient.clauses.polarity)", cases, got, seconds)]

    read = context_reader()
    if read is None:
        print("medspacy is not installed: ConText not measured (see this script's docstring)", file=sys.stderr)
    else:
        timings: list[float] = []
        read(cases[0], [])  # warm-up
        results.append(score("medspacy ConText (default rules)", cases, [read(c, timings) for c in cases], timings))
        timings = []
        results.append(
            score(
                "medspacy ConText (default rules) on our clause",
                cases,
                [read(c, timings, clause_only=True) for c in cases],
                timings,
            )
        )

    for r in results:
        print(f"{r['reader']}: {r['correct']}/{r['cases']} = {r['accuracy']:.3f}, {r['us_per_case']} µs/case")
        print(f"  by kind: {r['by_kind']}")
        print(f"  errors: {r['confusion']}")
        for w in r["wrong"]:
            print(f"    {w}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
