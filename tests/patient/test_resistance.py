"""Local resistance rates are read as a fact (never as a drug given) and decide IDSA's empirical thresholds."""

from __future__ import annotations

import pytest

from assistant.knowledge import load_knowledge
from assistant.patient import extract_context
from assistant.rules import RuleEngine
from assistant.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge(PROJECT_ROOT / "corpus")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Local E. coli resistance to trimethoprim-sulfamethoxazole is 30%.", {"trimethoprim_sulfamethoxazole": 30.0}),
        ("Bactrim resistance of 12 % in our area.", {"trimethoprim_sulfamethoxazole": 12.0}),
        ("About 25% resistance to TMP-SMX locally; fluoroquinolone resistance is 8%.",
         {"trimethoprim_sulfamethoxazole": 25.0, "fluoroquinolone": 8.0}),
        ("Cystitis, on TMP-SMX for 2 days, 30% better.", {}),
    ],
)  # fmt: skip
def test_resistance_rates_are_read(knowledge, text: str, expected: dict[str, float]) -> None:
    ctx = extract_context(text, lexicon=knowledge.lexicon)
    assert ctx.local_resistance == expected


def test_high_local_resistance_excludes_tmp_smx_for_cystitis(knowledge) -> None:
    engine = RuleEngine(knowledge)
    base = "Healthy 30-year-old non-pregnant woman with acute uncomplicated cystitis, no allergies, normal kidney function."

    def kinds(text: str) -> set[str]:
        found = engine.evaluate(extract_context(text, lexicon=knowledge.lexicon))
        return {f.kind for f in found if f.therapy == "trimethoprim_sulfamethoxazole"}

    assert "exclude" in kinds(base + " Local resistance to TMP-SMX is 30%.")
    assert kinds(base + " Local resistance to TMP-SMX is 10%.") & {"recommend", "consider"}
