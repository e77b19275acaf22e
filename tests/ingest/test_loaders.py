"""Loaders: every format to Markdown-ish text with provenance; bad inputs fail with a clear reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import IngestError
from ingest.loaders import load_file
from ingest.markdown import split_sections

from .conftest import make_pdf


def test_corpus_markdown_front_matter(guide_md: Path) -> None:
    doc = load_file(guide_md, pack="corpus")
    m = doc.meta
    assert m.doc_id == "demo-apc" and m.issuing_body == "AUA/ASTRO" and m.year == "2023 amendment"
    assert m.url == "https://example.org/apc" and m.last_reviewed == "2026-11-29"
    assert m.source_pack == "corpus" and m.kind == "guideline" and "mCRPC" in m.topics
    assert doc.body_first_line == 14 and doc.text.startswith("# mCRPC")
    assert len(doc.content_hash) == 64


def test_nci_style_front_matter(tmp_path: Path) -> None:
    p = tmp_path / "pdq" / "page.md"
    p.parent.mkdir()
    p.write_text(
        "---\ntitle: Some Treatment (PDQ®) - NCI\nurl: https://www.cancer.gov/x\nsource: NCI\n"
        "lastReviewed: '2025-12-30'\ncitation: NCI, 2025\ntags: [pdq]\n---\n# Some Treatment\n\nText.\n",
        encoding="utf-8",
    )
    m = load_file(p, pack="nci", root=tmp_path).meta
    assert m.doc_id == "pdq-page" and m.issuing_body == "NCI" and m.year == "2025"
    assert m.last_reviewed == "2025-12-30" and m.url == "https://www.cancer.gov/x" and m.kind == "pdq"


def test_html_keeps_headings_and_tables(tmp_path: Path) -> None:
    p = tmp_path / "g.html"
    p.write_text(
        "<html><head><title>Guide</title><script>var x=1;</script></head><body><nav>menu</nav>"
        "<h1>Prostate</h1><h2>Dosing</h2><p>Give the drug.</p><ul><li>first point</li></ul>"
        "<table><tr><th>Drug</th><th>Dose</th></tr><tr><td>olaparib</td><td>300 mg</td></tr></table>"
        "</body></html>",
        encoding="utf-8",
    )
    doc = load_file(p)
    assert doc.meta.title == "Guide"
    assert "# Prostate" in doc.text and "## Dosing" in doc.text and "olaparib | 300 mg" in doc.text
    assert "var x" not in doc.text and "menu" not in doc.text
    secs = split_sections(doc.meta.doc_id, doc.text)
    assert any(s.heading_path == ("Prostate", "Dosing") and "Give the drug." in s.text for s in secs)


def test_pdf_headings_and_table_preserved(tmp_path: Path) -> None:
    p = make_pdf(
        tmp_path / "guide.pdf",
        "Metastatic prostate cancer",
        "After docetaxel",
        ["Cabazitaxel was tested after docetaxel in our made-up example paragraph. " * 3],
        table=[["Drug", "Dose"], ["olaparib", "300 mg twice daily"]],
    )
    doc = load_file(p)
    secs = split_sections(doc.meta.doc_id, doc.text)
    body = next(s for s in secs if "Cabazitaxel was tested" in s.text)
    assert body.heading_path == ("Metastatic prostate cancer", "After docetaxel"), doc.text[:300]
    assert "olaparib | 300 mg twice daily" in doc.text


def test_plain_text(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("Plain notes\n\nSecond paragraph.", encoding="utf-8")
    doc = load_file(p)
    assert doc.meta.title == "Plain notes" and "Second paragraph." in doc.text


def test_non_utf8_falls_back_to_cp1252(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = tmp_path / "old.md"
    p.write_bytes("# Caf\u00e9 \u2013 dosing\n\nna\u00efve text".encode("cp1252"))
    doc = load_file(p)
    assert "Café – dosing" in doc.text
    assert any("not valid UTF-8" in r.message for r in caplog.records)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "empty"),
        ("blank.md", b"   \n\n  ", "no text"),
        ("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "PDF"),
        ("notes.docx", b"whatever", "unsupported"),
        ("bad.md", b"---\nid: x\ntitle: [oops\n---\nbody", "line 3"),
    ],
)
def test_bad_inputs_raise_ingest_error(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(IngestError) as info:
        load_file(p)
    assert reason in info.value.reason, info.value.reason


def test_too_large_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "big.txt"
    p.write_text("word " * 50_000, encoding="utf-8")
    with pytest.raises(IngestError, match="limit"):
        load_file(p, max_file_mb=0.1)


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 50, 50, style="F")  # a drawing, no text: like a scanned page
    p = tmp_path / "scan.pdf"
    pdf.output(str(p))
    with pytest.raises(IngestError, match="no text layer"):
        load_file(p)


def test_encrypted_pdf(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "secret text")
    p = tmp_path / "locked.pdf"
    pdf.output(str(p))
    with pytest.raises(IngestError, match="encrypted"):
        load_file(p)


def test_markdown_link_targets_reduced_to_text(tmp_path: Path) -> None:
    p = tmp_path / "links.md"
    p.write_text(
        '# Drugs\n\nSee [olaparib](/drugs/olaparib "Olaparib") and [[PUBMED Abstract]](http://x.org/q?id=1).\n'
        "![](/img/a.jpg)\n\nKeep [brackets] and (parens).\n",
        encoding="utf-8",
    )
    text = load_file(p).text
    assert "See olaparib and [PUBMED Abstract]." in text
    assert "http" not in text and "/img/" not in text and "Keep [brackets] and (parens)." in text
