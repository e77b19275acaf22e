"""Population scope end to end: a patient outside every guideline the question's rules rest on gets a clear
'not covered' answer naming why, never the adult regimen; one step back inside the population gets the answer."""

from __future__ import annotations

import pytest

from assistant.pipeline import Assistant


@pytest.mark.parametrize(
    "question",
    [
        "A 6-year-old with fever, cough and lobar pneumonia on X-ray, otherwise well. Which oral antibiotic?",
        "Kidney transplant recipient on tacrolimus and mycophenolate with community-acquired pneumonia, SpO2 95%. "
        "Which oral antibiotics as an outpatient?",
        "14-month-old girl with fever 39.5 and a catheter urine with pyuria and nitrites. Which oral antibiotic?",
    ],
)
def test_outside_the_guidelines_population_is_not_answered(assistant: Assistant, question: str) -> None:
    answer = assistant.ask(question)
    assert answer.abstained, answer.answer_markdown[:400]
    assert "does not cover this patient" in answer.answer_markdown


@pytest.mark.parametrize(
    "question",
    [
        "A 40-year-old with fever, cough and lobar pneumonia on X-ray, otherwise well. Which oral antibiotic?",
        "A 30-year-old non-pregnant woman with dysuria and frequency, no fever or flank pain. Which oral antibiotic?",
    ],
)
def test_one_step_back_inside_the_population_is_answered(assistant: Assistant, question: str) -> None:
    answer = assistant.ask(question)
    assert not answer.abstained
    assert any(f.kind in ("recommend", "consider") for f in answer.findings)
