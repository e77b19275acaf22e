"""Generation tests: the calibration helpers (gen_calibration.py, also a script) as a module and a fixture.

test_support_calibration.py imports it by its bare name (`import gen_calibration`); under
--import-mode=importlib that name is registered here from the file itself rather than by putting this folder
on sys.path (which would expose every file in it). A test can take the `calibration` fixture instead."""

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


_load_calibration()


@pytest.fixture(scope="session")
def calibration() -> ModuleType:
    """tests/generation/gen_calibration.py: labelled support pairs and precision/recall helpers."""
    return _load_calibration()
