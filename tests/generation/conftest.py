"""Generation tests: the calibration helpers (gen_calibration.py, also a script) as a module and a fixture.

Tests take the `calibration` fixture: the file is loaded as a module from its path (it is also run as a
script), with no change to sys.path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load_calibration() -> ModuleType:
    if "gen_calibration" in sys.modules:
        return sys.modules["gen_calibration"]
    spec = importlib.util.spec_from_file_location("gen_calibration", Path(__file__).with_name("gen_calibration.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_calibration"] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module



@pytest.fixture(scope="session")
def calibration() -> ModuleType:
    """tests/generation/gen_calibration.py: labelled support pairs and precision/recall helpers."""
    return _load_calibration()
