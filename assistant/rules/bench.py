"""Rule-engine timing: `RuleEngine.evaluate` over a set of patients (used by `tests/rules` to hold the
engine under its latency budget; the full-system benchmark is `assistant/bench.py`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from assistant.knowledge import Knowledge
from assistant.models import PatientContext
from assistant.rules.engine import RuleEngine


@dataclass
class BenchResult:
    rules: int
    patients: int
    runs: int
    mean_ms: float
    p95_ms: float
    max_ms: float


def benchmark(knowledge: Knowledge, contexts: list[PatientContext], repeat: int = 50) -> BenchResult:
    """Time `evaluate` over the given patients (after one warm-up pass that imports the calculators)."""
    engine = RuleEngine(knowledge)
    for ctx in contexts:
        engine.evaluate(ctx)
    times: list[float] = []
    for _ in range(repeat):
        for ctx in contexts:
            t0 = time.perf_counter()
            engine.evaluate(ctx)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return BenchResult(
        rules=len(engine.rules),
        patients=len(contexts),
        runs=len(times),
        mean_ms=sum(times) / len(times) if times else 0.0,
        p95_ms=times[int(0.95 * (len(times) - 1))] if times else 0.0,
        max_ms=times[-1] if times else 0.0,
    )
