"""Fixtures for the generated safety tests: the real corpus, the real engine (with its safety pass), the real
Assistant on the deterministic composer over a corpus-text retriever, and the run's counts, printed in the
terminal summary so CI shows how many (rule, fact) pairs were proven."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from assistant.knowledge import Knowledge
from assistant.pipeline import Assistant
from assistant.rules import RuleEngine
from assistant.settings import load_settings
from assistant.testing.safety_harness import CorpusRetriever, load_for_safety

REAL_CORPUS = Path(__file__).resolve().parents[2] / "corpus"


@dataclass
class SafetyReport:
    """What the run proved: counts, failures (one line each, precise) and notes (solver gaps, skips)."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# Filled by the tests through the `report` fixture, printed by pytest_terminal_summary.
REPORT = SafetyReport()


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_for_safety(REAL_CORPUS)


@pytest.fixture(scope="session")
def engine(knowledge: Knowledge) -> RuleEngine:
    return RuleEngine(knowledge)


@pytest.fixture(scope="session")
def retriever(knowledge: Knowledge) -> CorpusRetriever:
    return CorpusRetriever(knowledge)


@pytest.fixture(scope="session")
def assistant(knowledge: Knowledge, engine: RuleEngine, retriever: CorpusRetriever, tmp_path_factory) -> Assistant:
    """Built with `Assistant(...)`, not `pipeline.build_assistant`: the factory takes no retriever (it always wraps an
    indexed store in a HybridRetriever and refuses an empty one), and these tests must choose the search hits for
    each (rule, drug) pair — `retriever.hits = hits_naming(...)`, passages that name the drug — which no index can
    be told to return. Everything else is the real thing: corpus knowledge, rule engine with its safety pass."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("safety-data"), llm="none")
    return Assistant(settings, retriever=retriever, engine=engine, knowledge=knowledge, chat_model=None)


@pytest.fixture(scope="session")
def report() -> SafetyReport:
    return REPORT


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not REPORT.counts:
        return
    s = REPORT.counts
    terminalreporter.section("generated safety")
    terminalreporter.write_line(
        f"generated safety: {s['pairs_tested']} (rule, fact) pairs tested, {s['pairs_incompatible']} skipped as "
        f"incompatible, {s['pair_failures']} failures"
    )
    terminalreporter.write_line(
        f"  of the tested pairs, {s['pairs_guarded_by_safety_pass']} would offer the drug without the safety pass "
        "(the rules alone do not exclude it)"
    )
    terminalreporter.write_line(
        f"  rules: {s['rules']} therapy rules, {s['rules_fired']} fired from their own conditions, "
        f"{s['rules_unsolved']} unsolved; drugs without a safety profile: {s['drugs_without_profile']}; "
        f"facts the solver could not build: {s['facts_unsolvable']}"
    )
    terminalreporter.write_line(
        f"  partner drugs (named in a rule's `drugs`): {s['partner_pairs_tested']} pairs tested, "
        f"{s['partner_failures']} failures, {s['partner_listed_with_warning']} still named with a warning; hypothesis variations: {s['hypothesis_examples']} examples, "
        f"{s['hypothesis_pairs']} pairs checked"
    )
    terminalreporter.write_line(
        f"  neighbour states: {s['neighbour_checks']} checks; class siblings: {s['sibling_checks']} checks"
    )
    for line in REPORT.notes[:40]:
        terminalreporter.write_line(f"  note: {line}")
    for line in REPORT.failures[:60]:
        terminalreporter.write_line(f"  FAIL {line}")
    if len(REPORT.failures) > 60:
        terminalreporter.write_line(f"  … and {len(REPORT.failures) - 60} more")
