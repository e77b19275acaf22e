"""The shipped safety set (eval/safety.jsonl): loads, is large and varied enough, and every name resolves."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from assistant.evaluation.dataset import load_cases
from assistant.evaluation.metrics import corpus_sources, forbidden_hits, keypoint_recall
from assistant.evaluation.therapies import TherapyLexicon
from assistant.knowledge import load_lexicon
from assistant.settings import PROJECT_ROOT

SAFETY = PROJECT_ROOT / "eval" / "safety.jsonl"
CORPUS = PROJECT_ROOT / "corpus"
# the classes of issue 12 that the set must cover, each by several cases (tag → minimum count)
REQUIRED_TAGS = {
    "pregnancy": 8, "lactation": 2, "allergy": 5, "diabetes-type": 2, "renal": 4, "hepatic": 4,
    "interaction": 2, "seizure": 1, "infection-site": 4, "nmCRPC": 2, "mHSPC": 3, "sibling-drug": 2,
    "refusal": 2, "phase-of-care": 2, "children": 2, "follow-up": 2, "out-of-corpus": 3,
}


@pytest.fixture(scope="module")
def cases():
    return load_cases(SAFETY)


def test_size_and_fields(cases):
    assert len(cases) >= 40
    bare = [c.id for c in cases if not (c.must_not_offer or c.should_offer_any)]
    assert not bare, f"cases without must_not_offer or should_offer_any: {bare}"
    assert all(c.sources for c in cases), "every case names its label sections / guidelines"
    assert all(c.must_have for c in cases if not c.expect_abstain), "answerable cases need must-have points"


def test_covers_the_issue_classes(cases):
    tags = Counter(t for c in cases for t in (getattr(c, "tags", None) or []))
    short = {t: (tags[t], n) for t, n in REQUIRED_TAGS.items() if tags[t] < n}
    assert not short, f"tag: (have, need) {short}"
    in_domain = sum("rules-domain" in (getattr(c, "tags", None) or []) for c in cases)
    assert in_domain >= 0.3 * len(cases), "about a third of the cases sit where the corpus has rules"
    assert 3 <= sum(c.expect_abstain for c in cases) <= 6


def test_every_therapy_is_known_to_the_corpus_lexicon(cases):
    lex = load_lexicon(CORPUS)
    unknown = [
        (c.id, t) for c in cases for t in [*c.must_not_offer, *c.should_offer_any]
        if not (lex.is_known(t) or t.lower() in lex.by_name)
    ]
    assert not unknown, f"not in corpus/lexicon/therapies.yaml (id, class or name): {unknown}"


def test_the_evaluation_matcher_resolves_every_entry(cases):
    # the scorer has its own reading of the lexicon: an entry it cannot resolve could never be scored
    lex = TherapyLexicon.load(CORPUS)
    empty = [(c.id, t) for c in cases for t in [*c.must_not_offer, *c.should_offer_any] if not lex.target(t).ids]
    assert not empty, empty


def test_safe_and_unsafe_lists_do_not_overlap(cases):
    lex = TherapyLexicon.load(CORPUS)
    for c in cases:
        bad = set().union(*(lex.target(t).ids for t in c.must_not_offer)) if c.must_not_offer else set()
        good = set().union(*(lex.target(t).ids for t in c.should_offer_any)) if c.should_offer_any else set()
        assert not (bad & good), f"{c.id}: {sorted(bad & good)} both forbidden and expected"


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


def test_corpus_sources_resolve(cases):
    refs = _corpus_refs()
    missing = [(c.id, s) for c in cases for s in corpus_sources(c.sources) if s.split("#")[0] not in refs]
    assert not missing, f"corpus references not found in corpus/: {missing}"


def test_points_are_not_given_away_and_forbidden_phrases_are_detectable(cases):
    for c in cases:
        assert keypoint_recall("", c.must_have)[0] in (None, 0.0), c.id
        for claim in c.forbidden:
            for kw in claim.keywords:
                assert forbidden_hits(kw + ".", [claim]), f"{c.id}: forbidden phrase {kw!r} is never detectable"


def test_ids_name_their_set(cases):
    assert all(c.id.startswith("SAF-") for c in cases)
