"""Retrieval-area fixtures: a small indexed store (fake embedder) with drug and gene names."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = {
    "parp.md": """---
id: parp-digest
title: PARP inhibitors digest
issuing_bodies: [AUA]
sources: [{body: AUA, year: 2023, url: "https://example.org/parp"}]
topics: [prostate cancer]
---
# mCRPC

## PARP inhibitors

::: recommendation
id: T-PARP-1
strength: Moderate Recommendation
evidence: Grade C
population: mCRPC with HRR alterations
source: "Test, Statement 1"
---
Olaparib may be offered after an ARPI when BRCA2, ATM or CHEK2 alterations are found.
:::

## Radioligand

### Lu-177-PSMA-617

Lutetium Lu-177-PSMA-617 is given for PSMA-positive disease after an ARPI and a taxane.
""",
    "af.md": """---
id: af-digest
title: Atrial fibrillation digest
issuing_bodies: [ACC/AHA]
sources: [{body: ACC/AHA, year: 2023}]
topics: [atrial fibrillation]
---
# Anticoagulation

Apixaban dose is reduced with two of age 80 or more, weight 60 kg or less, creatinine 1.5 or more.

# Rate control

Beta blockers or diltiazem control the ventricular rate.
""",
    "dup.md": """---
id: dup-digest
title: Duplicate digest
issuing_bodies: [NCI]
sources: [{body: NCI, year: 2025}]
---
# Copy

Beta blockers or diltiazem control the ventricular rate.
""",
}


@pytest.fixture
def indexed(tmp_path: Path, fake_embedder):
    from assistant.settings import load_settings
    from ingest.pipeline import ingest_paths
    from ingest.store import open_store

    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    settings = load_settings(
        store_dir=tmp_path / "index", corpus_dir=tmp_path / "nocorpus", include_open_medicine=False
    )
    store = open_store(settings, fake_embedder)
    report = ingest_paths(store, settings, [folder])
    assert report.added == 3, report.errors
    return settings, store
