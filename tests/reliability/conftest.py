"""Reliability fixtures: bad-file factories, a stub OpenAI-compatible server, a real `chroma run` server."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = sys.executable


def _load_sibling(name: str):
    """Test helpers beside this file (pytest runs with --import-mode=importlib: no package imports)."""
    spec = importlib.util.spec_from_file_location(f"_reliability_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


stub_llm = _load_sibling("stub_llm")
servers = _load_sibling("servers")
free_port, child_env, ChromaServer = servers.free_port, servers.child_env, servers.ChromaServer


# ---------------------------------------------------------------- stub LLM
@pytest.fixture(scope="session")
def stub_server() -> Iterator[object]:
    server = stub_llm.StubServer().start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma-data").start()
    yield server
    server.stop()


# ---------------------------------------------------------------- bad files
def make_text_pdf(path: Path, paragraphs: list[str], *, title: str = "Test guideline", user_password: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    if user_password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=user_password)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.multi_cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=11)
    for para in paragraphs:
        pdf.multi_cell(0, 6, para, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.output(str(path))
    return path


def make_image_only_pdf(path: Path) -> Path:
    """A 'scanned' page: one raster image, no text layer at all."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (800, 400), "white")
    draw = ImageDraw.Draw(img)
    for y in range(40, 360, 24):  # lines that look like text to a human, not to a parser
        draw.rectangle([40, y, 760, y + 10], fill="black")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(img, x=10, y=10, w=190)
    pdf.output(str(path))
    return path


GOOD_MD = """---
id: {doc_id}
kind: guideline
title: {title}
issuing_bodies: [TESTORG]
year: 2024
url: https://example.org/{doc_id}
last_reviewed: 2026-11-01
---
# {title}

## Scope
This test guideline about {topic} covers adults and explains monitoring intervals in plain words.

## Recommendation
Clinicians should review {topic} every three months and document the outcome of each review.
"""


def good_markdown(doc_id: str, topic: str, title: str | None = None) -> str:
    return GOOD_MD.format(doc_id=doc_id, topic=topic, title=title or f"Guideline on {topic}")


@pytest.fixture(scope="session")
def helpers():
    """The factories above, for test modules (conftest is not importable under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        make_text_pdf=make_text_pdf,
        make_image_only_pdf=make_image_only_pdf,
        good_markdown=good_markdown,
        free_port=free_port,
        child_env=child_env,
        ChromaServer=ChromaServer,
        stub_llm=stub_llm,
        servers=servers,
        ROOT=ROOT,
        PY=PY,
    )


# ---------------------------------------------------------------- a real Assistant over the shipped corpus
def _fake_embedder_class():
    """The shared deterministic fake (tests/conftest.py), usable from session-scoped fixtures."""
    spec = importlib.util.spec_from_file_location("_reliability_root_conftest", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeEmbedder


@pytest.fixture(scope="session")
def session_embedder():
    return _fake_embedder_class()()


def build_corpus_index(store_dir: Path, embedder, extra_paths: tuple[Path, ...] = (), **overrides):
    """Ingest the shipped corpus (no open-medicine pack, to stay fast) plus `extra_paths` into `store_dir`."""
    from assistant.settings import load_settings
    from ingest.pipeline import ingest_paths
    from ingest.store import open_store

    settings = load_settings(store_dir=store_dir, llm="none", include_open_medicine=False, **overrides)
    store = open_store(settings, embedder)
    report = ingest_paths(store, settings, [])
    assert report.total_chunks > 0 and not report.errors, report.errors
    if extra_paths:
        report = ingest_paths(store, settings, list(extra_paths))
        assert not report.errors, report.errors
    return store


def make_assistant(store, embedder, **overrides):
    """The production Assistant (real retriever, knowledge, rules, composer/verifier) on a given store."""
    from assistant.pipeline import build_assistant
    from assistant.settings import load_settings

    values = {"llm": "none", "include_open_medicine": False, "store_dir": store.meta_dir}
    values.update(overrides)
    settings = load_settings(**values)
    knowledge = _knowledge(str(settings.corpus_dir))
    return build_assistant(settings, embedder=embedder, store=store, knowledge=knowledge, warm=False)


_KNOWLEDGE: dict[str, object] = {}


def _knowledge(corpus_dir: str):
    from assistant.knowledge import load_knowledge

    if corpus_dir not in _KNOWLEDGE:
        _KNOWLEDGE[corpus_dir] = load_knowledge(Path(corpus_dir))
    return _KNOWLEDGE[corpus_dir]


@pytest.fixture(scope="session")
def corpus_store(tmp_path_factory, session_embedder):
    return build_corpus_index(tmp_path_factory.mktemp("corpus-index") / "index", session_embedder)


@pytest.fixture(scope="session")
def rules_assistant(corpus_store, session_embedder):
    return make_assistant(corpus_store, session_embedder)


@pytest.fixture(scope="session")
def assistants():
    """Factories for tests that need their own store or backend."""
    from types import SimpleNamespace

    return SimpleNamespace(build_corpus_index=build_corpus_index, make_assistant=make_assistant)


REAL_INDEX_FILES = ("guidelines/prostate/aua-suo-advanced-prostate.md", "labels/olaparib.md", "labels/enzalutamide.md")


@pytest.fixture(scope="session")
def real_index(tmp_path_factory) -> Path:
    """A small index built by `guiderail ingest` with the real MiniLM (for CLI/app subprocess tests)."""
    import shutil
    import subprocess

    base = tmp_path_factory.mktemp("real-index")
    docs = base / "docs"
    docs.mkdir()
    for rel in REAL_INDEX_FILES:
        shutil.copy(ROOT / "corpus" / rel, docs / Path(rel).name)
    store = base / "index"
    done = subprocess.run(
        [PY, "-m", "assistant.cli", "ingest", str(docs), "--store", str(store), "--no-progress"],
        capture_output=True, text=True, timeout=600, env=child_env(), cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return store
