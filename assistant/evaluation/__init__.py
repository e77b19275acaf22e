"""Evaluation: Q&A cases → answers (GuideRail or the naive baseline) → metrics, report and plots."""

from __future__ import annotations

from typing import Any


def run_eval(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """See assistant.evaluation.runner.run_eval (imported on call: keeps `import assistant.evaluation` light)."""
    from assistant.evaluation.runner import run_eval as _run

    return _run(*args, **kwargs)


__all__ = ["run_eval"]
