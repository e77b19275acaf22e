"""The shipped dev Q&A set: loads, meets the coverage targets, and every reference resolves in the corpus."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from assistant.evaluation.dataset import load_cases
from assistant.evaluation.metrics import forbidden_hits, keypoint_recall
from assistant.evaluation.therapies import TherapyLexicon
from assistant.settings import PROJECT_ROOT

DEV = PROJECT_ROOT / "eval" / "dev.jsonl"
CORPUS = PROJECT_ROOT / "corpus"


@pytest.fixture(scope="module")
def cases():
    return load_cases(DEV)


def _corpus_refs() -> set[str]:
    refs: set[str] = set()
    for f in CORPUS.rglob("*.md"):
        if f.name == "README.md":
            continue
        text = f.read_text(encoding="utf-8")
        doc = re.search(r"^id:\s*(\S+)", text, re.M)
        if doc:
            refs.add(doc.group(1))
        refs |= set(re.findall(r"^::: recommendation\s*\nid:\s*(\S+)", text, re.M))
    return refs


def test_coverage_targets(cases):
    kinds = Counter(c.id.split("-")[0] for c in cases)
    assert len(cases) >= 50
    assert kinds["PCA"] >= 30, kinds
    assert kinds["GEN"] >= 20, kinds
    assert sum(c.expect_abstain for c in cases) >= 5
    assert sum(bool(c.history) for c in cases) >= 2
    assert all(c.must_have for c in cases if not c.expect_abstain), "every answerable case needs must-have points"
    assert sum(bool(c.forbidden) for c in cases) >= 30


def test_sources_resolve_in_corpus(cases):
    refs = _corpus_refs()
    missing = [(c.id, s) for c in cases for s in c.sources if s.split("#")[0] not in refs]
    assert not missing, f"dev-set sources not in corpus/: {missing}"


def test_gold_therapies_are_known_to_the_lexicon(cases):
    lex = TherapyLexicon.load(CORPUS)
    known = {tid for _, tid in lex.names}
    known |= {p for tid in known for p in tid.split("+")}
    unknown = [(c.id, d) for c in cases for opt in c.gold_therapies for d in opt if not lex.canonical(d) <= known]
    assert not unknown, unknown


def test_every_forbidden_phrase_is_detectable_on_its_own(cases):
    # a forbidden keyword that the negation heuristic would always discount could never score a hit
    for c in cases:
        for claim in c.forbidden:
            for kw in claim.keywords:
                assert forbidden_hits(kw + ".", [claim]), f"{c.id}: forbidden phrase {kw!r} is never detectable"


def test_no_keyword_is_already_given_away_by_an_empty_answer(cases):
    for c in cases:
        assert keypoint_recall("", c.must_have)[0] in (None, 0.0), c.id

