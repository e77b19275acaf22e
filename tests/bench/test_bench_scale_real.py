"""The ingest section through the real ingest.scale.measure_ingest (real MiniLM, Chroma) on a few NCI pages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.bench import run_bench
from assistant.settings import PROJECT_ROOT, load_settings

NCI = PROJECT_ROOT.parent / "shared" / "corpora" / "nci"

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.mark.skipif(not NCI.is_dir(), reason="NCI pages not available on this machine")
def test_ingest_section_with_real_scale_measurement(tmp_path: Path):
    folder = tmp_path / "nci"
    folder.mkdir()
    for p in sorted(NCI.rglob("*.md"))[:3]:  # copied only into the test's temp folder, never into the repo
        shutil.copy(p, folder / p.name)
    settings = load_settings(llm="none", data_dir=tmp_path / "data")
    r = run_bench(settings, tmp_path / "bench", nci_dir=folder, only=["ingest"])
    ing = r["ingest"]
    assert "skipped" not in ing, ing
    assert ing["source"] == "nci" and ing["documents"] == 3 and ing["chunks"] > 0
    assert ing["ingest_chunks_per_s"] > 0 and ing["raw_encode_chunks_per_s"] > 0
    assert ing["query_p50_ms"] is not None
    assert "Ingest and retrieval at scale" in (tmp_path / "bench" / "bench.md").read_text()
