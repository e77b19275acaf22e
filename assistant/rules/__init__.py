"""The rule stage: corpus rule records + a PatientContext → typed findings, checked against drug labels.

Runs after patient extraction and before the answer plan; pure and fast (no I/O; a few hundred
microseconds for the whole rule set). Conditions use three-valued logic: every atom is true, false
or unknown (None) per the table in corpus/README.md. Outcomes:

* therapy rule: scope (`applies_when`) false/unknown → nothing; an exclusion true → `exclude`;
  progression on the very same therapy → `exclude` (not repeated) unless the rule allows it;
  `eligible_when` false → `exclude` with `ineligible_reason`; true → `recommend`/`consider`;
  unknown → `ask` for the facts that would decide it.
* warning rule: `when` true → `warn`.
* question rule: `when` true and the `missing` fact unknown → `ask`.

Disagreements (one rule offers a therapy another hard-excludes) are never resolved silently: a
`warn` names both rules and the exclusion wins for the answer plan.

Modules, in the order the data flows through them:

* `tri.py` — three-valued `and3`/`or3`/`not3` and the comparison operators;
* `calculators.py` — clinical scores for `calc:` atoms (CrCl, eGFR, CHA2DS2-VASc, HAS-BLED …);
* `view.py` — `PatientView`: the context indexed once per evaluation;
* `conditions.py` — the condition evaluator and the plain question for a missing fact;
* `safety.py` — the safety pass: every offered or named drug against its label profile;
* `engine.py` — `RuleEngine`: rules → findings, overlaps resolved, ordered, safety-checked;
* `bench.py` — timing of `RuleEngine.evaluate`.
"""

from assistant.rules.bench import BenchResult, benchmark
from assistant.rules.conditions import generic_question
from assistant.rules.engine import RuleEngine, finding_order, strength_rank
from assistant.rules.safety import DrugMatcher, SafetyPass
from assistant.rules.tri import Tri, and3, not3, or3
from assistant.rules.view import PatientView

__all__ = [
    "BenchResult",
    "DrugMatcher",
    "PatientView",
    "RuleEngine",
    "SafetyPass",
    "Tri",
    "and3",
    "benchmark",
    "finding_order",
    "generic_question",
    "not3",
    "or3",
    "strength_rank",
]
