"""Bad-input catalogue, files: every broken file gives one clear IngestError naming the file, never a traceback
of another type, and readable-but-odd files load with their text intact."""

from __future__ import annotations

import os
import random
import tracemalloc
from pathlib import Path

import pytest

from assistant.errors import IngestError
from ingest.loaders import load_file

GOOD_PARAS = [
    "Offer the test therapy to adults with the test condition after review.",
    "Monitor blood counts every three months during treatment.",
]


def _random_bytes(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def _write(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


# Each case: file name, a builder(path, helpers) -> path, and words one of which the reason must contain.
def _corrupt_pdf(p, h):
    return _write(p, b"%PDF-1.7\n" + _random_bytes(4000) + b"\n%%EOF")


def _not_a_pdf_at_all(p, h):
    return _write(p, "this is plain text pretending to be a PDF\n" * 20)


def _encrypted_pdf(p, h):
    return h.make_text_pdf(p, GOOD_PARAS, user_password="s3cret")


def _scanned_pdf(p, h):
    return h.make_image_only_pdf(p)


def _zero_byte(p, h):
    return _write(p, b"")


def _whitespace_only(p, h):
    return _write(p, "   \n\n\t  \n")


def _front_matter_only(p, h):
    return _write(p, "---\nid: only-meta\ntitle: Nothing below\n---\n\n")


def _binary_with_text_ext(p, h):
    return _write(p, _random_bytes(5000, seed=2))


def _png_named_txt(p, h):
    return _write(p, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _random_bytes(2000, seed=3))


def _gzip_named_md(p, h):
    import gzip

    return _write(p, gzip.compress(b"# Heading\n\nreal text inside a gzip\n" * 50))


def _unterminated_front_matter(p, h):
    return _write(p, "---\nid: broken\ntitle: Front matter never closed\n\n# Heading\n\nBody text here.\n")


def _invalid_yaml_front_matter(p, h):
    return _write(p, "---\nid: broken-yaml\ntitle: [unclosed, list\nyear: : :\n---\n# Heading\n\nBody text.\n")


def _unsupported_extension(p, h):
    return _write(p, b"PK\x03\x04 fake docx")


BROKEN = [
    ("corrupt.pdf", _corrupt_pdf, ("pdf", "corrupt", "readable")),
    ("fake.pdf", _not_a_pdf_at_all, ("pdf", "readable", "corrupt")),
    ("encrypted.pdf", _encrypted_pdf, ("encrypt", "password")),
    ("scanned.pdf", _scanned_pdf, ("text layer", "scanned", "ocr")),
    ("empty.md", _zero_byte, ("empty",)),
    ("empty.txt", _zero_byte, ("empty",)),
    ("empty.pdf", _zero_byte, ("empty",)),
    ("empty.html", _zero_byte, ("empty",)),
    ("blank.md", _whitespace_only, ("no text", "empty")),
    ("meta-only.md", _front_matter_only, ("no text", "empty")),
    ("binary.md", _binary_with_text_ext, ("binary",)),
    ("binary.txt", _binary_with_text_ext, ("binary",)),
    ("image.txt", _png_named_txt, ("binary",)),
    ("archive.md", _gzip_named_md, ("binary",)),
    ("broken-fm.md", _unterminated_front_matter, ("front matter",)),
    ("bad-yaml.md", _invalid_yaml_front_matter, ("front matter", "yaml")),
    ("guideline.docx", _unsupported_extension, ("unsupported",)),
]


@pytest.mark.parametrize(("name", "build", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_file_is_refused_with_a_clear_reason(tmp_path, helpers, name, build, words):
    path = build(tmp_path / name, helpers)
    with pytest.raises(IngestError) as exc:
        load_file(path)
    reason = exc.value.reason.lower()
    assert any(w in reason for w in words), f"{name}: reason {exc.value.reason!r} should mention one of {words}"
    assert str(path) in str(exc.value), "the message must name the file"
    assert "traceback" not in reason


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        load_file(tmp_path / "nope.md")


def test_directory_with_a_text_extension_is_refused(tmp_path):
    (tmp_path / "folder.md").mkdir()
    with pytest.raises(IngestError):
        load_file(tmp_path / "folder.md")


def test_file_above_the_size_limit_is_refused_naming_the_limit(tmp_path):
    path = tmp_path / "big.md"
    path.write_text("# Big\n\n" + "word " * 60_000, encoding="utf-8")  # ~300 KB
    with pytest.raises(IngestError) as exc:
        load_file(path, max_file_mb=0.1)
    assert "0.1 MB" in exc.value.reason and "max_file_mb" in exc.value.reason


def test_huge_file_is_refused_without_reading_it(tmp_path):
    """A 4 GB (sparse) file must be refused from its size alone: memory stays bounded."""
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:
        f.truncate(4 * 1024**3)
    tracemalloc.start()
    try:
        with pytest.raises(IngestError, match="limit"):
            load_file(path)  # default 50 MB limit
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024, f"refusing a huge file allocated {peak / 1e6:.1f} MB"


# ---------------------------------------------------------------- odd but readable
@pytest.mark.parametrize(
    ("encoding", "ext"),
    [("cp1252", ".md"), ("latin-1", ".txt"), ("utf-16", ".txt"), ("utf-8-sig", ".md")],
)
def test_non_utf8_text_is_decoded_without_losing_characters(tmp_path, encoding, ext):
    body = "# Nausée et vomissements\n\nTraitement préventif: ondansétron avant la chimiothérapie; suivi à 3 mois.\n"
    if encoding == "cp1252":
        body += "Smart quotes \u201cquoted\u201d and an en dash \u2013 here.\n"
    path = tmp_path / f"doc-{encoding}{ext}"
    path.write_bytes(body.encode(encoding))
    try:
        doc = load_file(path)
    except IngestError as exc:  # acceptable only if the reason names the encoding problem
        pytest.fail(f"{encoding} file refused: {exc}")
    assert "Nausée" in doc.text and "ondansétron" in doc.text, doc.text[:200]
    if encoding == "cp1252":
        assert "\u201cquoted\u201d" in doc.text and "\u2013" in doc.text


def test_utf8_bom_does_not_hide_front_matter(tmp_path):
    path = tmp_path / "bom.md"
    path.write_bytes("---\nid: bom-doc\ntitle: BOM guideline\n---\n# BOM guideline\n\nBody text.\n".encode("utf-8-sig"))
    doc = load_file(path)
    assert doc.meta.doc_id == "bom-doc" and doc.meta.title == "BOM guideline"
    assert "id: bom-doc" not in doc.text


def test_crlf_markdown_keeps_its_front_matter_and_headings(tmp_path):
    text = "---\r\nid: crlf-doc\r\ntitle: CRLF guideline\r\n---\r\n# CRLF guideline\r\n\r\n## Section\r\n\r\nBody.\r\n"
    path = tmp_path / "crlf.md"
    path.write_bytes(text.encode())
    doc = load_file(path)
    assert doc.meta.doc_id == "crlf-doc" and "\r" not in doc.text and "## Section" in doc.text


def test_front_matter_with_wrong_types_still_loads_with_sane_metadata(tmp_path):
    path = tmp_path / "types.md"
    path.write_text(
        "---\nid: 12345\ntitle: 42\nyear: [2020, 2021]\ntopics: just-a-string\nunverified: maybe\n---\n# H\n\nBody.\n",
        encoding="utf-8",
    )
    doc = load_file(path)
    assert doc.meta.doc_id == "12345" and doc.meta.title == "42"
    assert isinstance(doc.meta.year, str) and isinstance(doc.meta.topics, tuple)
    assert doc.meta.unverified is False


def test_front_matter_that_is_not_a_mapping_is_refused_or_ignored(tmp_path):
    path = tmp_path / "listfm.md"
    path.write_text("---\n- a\n- b\n---\n# Heading\n\nBody text here.\n", encoding="utf-8")
    try:
        doc = load_file(path)
    except IngestError as exc:
        assert "front matter" in exc.reason.lower()
    else:
        assert "Body text here." in doc.text


def test_html_script_and_handlers_are_dropped_from_the_text(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>T</title><script>alert('x')</script></head><body>"
        "<h1>Guideline</h1><p onclick=\"steal()\">Real advice about monitoring.</p>"
        "<script>document.cookie</script><style>p{}</style></body></html>",
        encoding="utf-8",
    )
    doc = load_file(path)
    assert "Real advice about monitoring." in doc.text
    assert "alert(" not in doc.text and "document.cookie" not in doc.text and "steal()" not in doc.text


def test_nul_bytes_after_the_first_block_do_not_crash(tmp_path):
    path = tmp_path / "late-nul.txt"
    path.write_bytes(b"Readable guideline text. " * 400 + b"\x00\x00tail")
    try:
        doc = load_file(path)
    except IngestError as exc:
        assert "binary" in exc.reason.lower()
    else:
        assert doc.text.startswith("Readable guideline text.")


def test_one_megabyte_single_line_loads(tmp_path):
    path = tmp_path / "oneline.txt"
    path.write_text("monitoring " * 95_000, encoding="utf-8")  # ~1 MB, no newline
    doc = load_file(path)
    assert len(doc.text) > 1_000_000 - 50_000


def test_good_pdf_still_loads(tmp_path, helpers):
    """Control case: the PDF factory itself produces a loadable file (so the refusals above mean something)."""
    doc = load_file(helpers.make_text_pdf(tmp_path / "good.pdf", GOOD_PARAS, title="Good guideline"))
    assert "Monitor blood counts" in doc.text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file_is_refused(tmp_path):
    path = tmp_path / "secret.md"
    path.write_text("# H\n\nBody.\n", encoding="utf-8")
    path.chmod(0)
    with pytest.raises(IngestError):
        load_file(path)
