"""Fixtures for the general-medicine and label corpus tests: the real shipped corpus, loaded once."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from assistant.knowledge import Knowledge, load_knowledge
from assistant.rules import RuleEngine

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge(CORPUS)


@pytest.fixture(scope="session")
def engine(knowledge: Knowledge) -> RuleEngine:
    return RuleEngine(knowledge)


def offer_rule(drug: str, dx: str, rule_id: str | None = None) -> str:
    """A minimal rule that offers `drug` for diagnosis `dx` (so a safety profile can be exercised alone)."""
    rid = rule_id or f"TEST-{drug.upper().replace('_', '-')}-{dx.upper().replace('_', '-')}"
    return (
        f"  - id: {rid}\n"
        f"    type: therapy\n"
        f"    therapy: {drug}\n"
        f"    drugs: [{drug}]\n"
        f"    title: Test offer of {drug}\n"
        f"    domain: general\n"
        f"    applies_when: {{diagnosis: {dx}}}\n"
        f"    finding: consider\n"
        f"    strength: test\n"
        f"    reason: Offered so the safety profile can be exercised.\n"
        f"    cite: [LBL-WARFARIN-IND]\n"
        f"    last_reviewed: 2026-12-02\n"
    )


def offer_corpus(
    dest: Path, offers: Sequence[tuple[str, str]], *, safety_files: Iterable[Path] | None = None, short_ids: bool = False
) -> Knowledge:
    """A copy of the shipped lexicon (incl. the oncology pack that declares drugs), labels and safety profiles with only `offers` as rules, loaded."""
    # oncology/ declares the drugs its safety profiles name; a test choosing its own safety files leaves it out
    # (its records would then have no profile).
    for sub in ("lexicon", "labels", *(("oncology",) if safety_files is None else ())):
        shutil.copytree(CORPUS / sub, dest / sub)
    (dest / "safety").mkdir()
    for path in safety_files if safety_files is not None else sorted((CORPUS / "safety").glob("*.yaml")):
        shutil.copy(path, dest / "safety" / path.name)
    (dest / "rules").mkdir()
    rules = "".join(
        offer_rule(d, dx, f"TEST-{d.upper().replace('_', '-')}" if short_ids else None) for d, dx in offers
    )
    (dest / "rules" / "test_offers.yaml").write_text("rules:\n" + rules, encoding="utf-8")
    knowledge = load_knowledge(dest)
    assert knowledge.report.ok, str(knowledge.report)
    return knowledge


@pytest.fixture(scope="session")
def make_offer_corpus():
    """`offer_corpus` as a fixture (test modules cannot import this conftest under importlib mode)."""
    return offer_corpus
