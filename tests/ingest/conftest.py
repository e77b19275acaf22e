"""Ingest-area fixtures: small files of every supported format, made from our own text."""

from __future__ import annotations

from pathlib import Path

import pytest

GUIDE_MD = """---
id: demo-apc
kind: guideline
title: Demo advanced prostate digest
issuing_bodies: [AUA, ASTRO]
sources:
  - body: AUA/ASTRO
    edition: "2023 amendment"
    year: 2023
    url: https://example.org/apc
topics: [prostate cancer, mCRPC]
last_reviewed: 2026-11-29
---
# mCRPC

## After docetaxel

Cabazitaxel context written for the test.

::: recommendation
id: DEMO-APC-S1
strength: Moderate Recommendation
evidence: Grade B
population: mCRPC after docetaxel
source: "Demo, Statement 1"
---
Offer cabazitaxel to patients who progressed after docetaxel.
:::

## Biomarkers

Olaparib is considered for CHEK2 or BRCA2 alterations; Lu-177-PSMA-617 for PSMA-positive disease.
"""


def make_pdf(
    path: Path, heading: str, sub: str, paragraphs: list[str], table: list[list[str]] | None = None
) -> Path:
    """A small real PDF: a large-font heading, a medium subheading, body text and an optional table."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Test guideline PDF")
    pdf.add_page()
    pdf.set_font("Helvetica", size=20)
    pdf.multi_cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=15)
    pdf.multi_cell(0, 8, sub, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for para in paragraphs:
        pdf.multi_cell(0, 5, para, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    if table:
        with pdf.table() as t:
            for row in table:
                r = t.row()
                for cell in row:
                    r.cell(cell)
    pdf.output(str(path))
    return path


@pytest.fixture
def guide_md(tmp_path: Path) -> Path:
    p = tmp_path / "demo-apc.md"
    p.write_text(GUIDE_MD, encoding="utf-8")
    return p


def write_doc(folder: Path, name: str, doc_id: str, sections: dict[str, str]) -> Path:
    """A corpus-format Markdown file with one heading per entry of `sections`."""
    body = "\n\n".join(f"## {h}\n\n{t}" for h, t in sections.items())
    p = folder / name
    p.write_text(
        f"---\nid: {doc_id}\ntitle: {doc_id} title\nissuing_bodies: [TEST]\n---\n# {doc_id}\n\n{body}\n"
    )
    return p


@pytest.fixture
def settings(tmp_path: Path):
    """Settings with an empty corpus and no open-medicine pack, storing under tmp_path."""
    from assistant.settings import load_settings

    corpus = tmp_path / "corpus"
    (corpus / "guidelines").mkdir(parents=True)
    return load_settings(store_dir=tmp_path / "index", corpus_dir=corpus, include_open_medicine=False)


@pytest.fixture
def store(settings, fake_embedder):
    from ingest.store import open_store

    return open_store(settings, fake_embedder)
