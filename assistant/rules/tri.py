"""Three-valued logic for rule conditions: every atom is true, false or unknown (``None``).

The lowest layer of the rule stage: `conditions.py` combines atoms with these operators, and the
comparison table `_OPS` turns a rule's `op` string (`<`, `>=` …) into a function. `all`/`any`/`not`
keep "unknown" unless the answer is already decided (the table in corpus/README.md).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable

Tri = bool | None

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def and3(values: Iterable[Tri]) -> Tri:
    unknown = False
    for v in values:
        if v is False:
            return False
        if v is None:
            unknown = True
    return None if unknown else True


def or3(values: Iterable[Tri]) -> Tri:
    unknown = False
    for v in values:
        if v is True:
            return True
        if v is None:
            unknown = True
    return None if unknown else False


def not3(value: Tri) -> Tri:
    return None if value is None else not value
