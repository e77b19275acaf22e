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


@pytest.mark.parametrize(
    ("text", "substance", "reaction"),
    [
        ("Cystitis; nitrofurantoin caused hepatitis two years ago.", "nitrofurantoin", "hepatotoxicity"),
        ("She had cholestatic jaundice on nitrofurantoin.", "nitrofurantoin", "hepatotoxicity"),
        ("Tendon rupture after levofloxacin in 2020.", "levofloxacin", "tendon rupture"),
    ],
)
def test_serious_organ_reaction_to_a_drug_is_recorded_like_an_allergy(knowledge, text, substance, reaction) -> None:
    ctx = extract_context(text, lexicon=knowledge.lexicon)
    details = {d.substance: d for d in ctx.allergy_details}
    assert substance in details and details[substance].severity == "severe" and details[substance].reaction == reaction
    assert not any(t.therapy == substance for t in ctx.therapies), "a drug that harmed the patient is not a drug given"


def test_history_of_a_disease_is_not_a_drug_reaction(knowledge) -> None:
    ctx = extract_context("History of hepatitis B; cystitis, currently on nitrofurantoin.", lexicon=knowledge.lexicon)
    assert not ctx.allergies


def test_breastfeeding_af_gets_warfarin_not_a_doac(knowledge) -> None:
    engine = RuleEngine(knowledge)
    q = "Breastfeeding woman, 2 months postpartum, new atrial fibrillation, CHA2DS2-VASc 3. Which anticoagulant?"
    found = engine.evaluate(extract_context(q, lexicon=knowledge.lexicon))
    offered = {f.therapy for f in found if f.kind in ("recommend", "consider")}
    assert "warfarin" in offered and not offered & {"apixaban", "rivaroxaban", "edoxaban", "dabigatran"}
    weaned = engine.evaluate(extract_context(q.replace("Breastfeeding", "Not breastfeeding"), lexicon=knowledge.lexicon))
    assert "apixaban" in {f.therapy for f in weaned if f.kind in ("recommend", "consider")}
