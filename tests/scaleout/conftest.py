"""Scale-out fixtures: one real `chroma run` server and one OpenAI-compatible stub LLM server, shared by
several GuideRail processes. The server helpers are the reliability suite's (loaded by path)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RELIABILITY = Path(__file__).resolve().parents[1] / "reliability"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_scaleout_{name}", RELIABILITY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


servers = _load("servers")


@pytest.fixture(scope="module")
def chroma(tmp_path_factory) -> Iterator[object]:
    server = servers.ChromaServer(tmp_path_factory.mktemp("chroma") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llm_server() -> Iterator[object]:
    server = servers.StubLLMProcess().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def srv():
    return servers
