"""Files → `Document`: Markdown (+ YAML front matter), HTML, PDF and plain text, with provenance.

Every loader returns Markdown-ish text (ATX headings kept) so one section splitter serves all formats.
Anything that cannot be read raises `IngestError(path, reason)` with a reason a user can act on.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ingest.errors import CorpusValidationError, IngestError
from ingest.markdown import parse_front_matter, slugify
from ingest.models import Document, DocumentMeta

log = logging.getLogger(__name__)

MARKDOWN_EXT = {".md", ".markdown"}
HTML_EXT = {".html", ".htm"}
PDF_EXT = {".pdf"}
TEXT_EXT = {".txt"}
SUPPORTED_EXT = MARKDOWN_EXT | HTML_EXT | PDF_EXT | TEXT_EXT


def doc_id_for(path: Path, root: Path | None = None) -> str:
    """A stable id from the path (relative to `root` when given): `pdq/breast-hp.md` → `pdq-breast-hp`."""
    rel = path
    if root is not None:
        try:
            rel = path.resolve().relative_to(root.resolve())
        except ValueError:
            rel = Path(path.name)
    else:
        rel = Path(path.name)
    return slugify(str(rel.with_suffix(""))) or "document"


def load_file(
    path: str | Path,
    pack: str = "user",
    *,
    max_file_mb: float = 50.0,
    root: Path | None = None,
    doc_id: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Document:
    """Load one file. `defaults` supplies provenance the file lacks (e.g. from a pack registry).

    Every way one file can fail — unreadable (permissions, I/O error), gone since it was listed,
    undecodable, unparsable, too large, too deeply nested — is an `IngestError` naming the file.
    """
    where = str(path)
    try:
        return _load_file(Path(path), pack, max_file_mb=max_file_mb, root=root, doc_id=doc_id, defaults=defaults)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise IngestError(where, "the file disappeared while it was being read") from exc
        reason = exc.strerror or type(exc).__name__
        raise IngestError(where, f"cannot read the file: {reason}") from exc
    except RecursionError as exc:
        raise IngestError(where, "structure nested too deeply to parse") from exc


def _load_file(
    p: Path,
    pack: str,
    *,
    max_file_mb: float,
    root: Path | None,
    doc_id: str | None,
    defaults: Mapping[str, Any] | None,
) -> Document:
    where = str(p)
    if not p.exists():
        raise IngestError(where, "no such file (deleted, or a broken link)")
    if not p.is_file():
        raise IngestError(where, "not a file")
    ext = p.suffix.lower()
    if ext not in SUPPORTED_EXT:
        raise IngestError(
            where, f"unsupported file type {ext or '(none)'}; use one of {sorted(SUPPORTED_EXT)}"
        )
    size = p.stat().st_size
    if size > max_file_mb * 1024 * 1024:
        raise IngestError(
            where, f"file is {size / 1e6:.1f} MB, above the {max_file_mb:g} MB limit (max_file_mb)"
        )
    if size == 0:
        raise IngestError(where, "file is empty")
    raw = p.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    fallback_id = doc_id or doc_id_for(p, root)

    if ext in PDF_EXT:
        text, pdf_title = _pdf_to_markdown(raw, where)
        fm: dict[str, Any] = {"title": pdf_title} if pdf_title else {}
        body, first = text, 1
    else:
        decoded = _decode(raw, where)
        if ext in MARKDOWN_EXT:
            try:
                fm, body, first = parse_front_matter(decoded, source=where)
            except CorpusValidationError as exc:
                raise IngestError(where, f"line {exc.line}: {exc.reason}") from exc
        elif ext in HTML_EXT:
            body, html_title = _html_to_markdown(decoded)
            fm, first = ({"title": html_title} if html_title else {}), 1
        else:
            fm, body, first = {}, decoded, 1
    if ext in MARKDOWN_EXT or ext in TEXT_EXT:
        body = strip_link_targets(body)
    if not body.strip():
        raise IngestError(where, "no text found in the file")
    meta = meta_from_front_matter(
        fm, fallback_id=fallback_id, pack=pack, path=where, body=body, defaults=defaults
    )
    return Document(meta=meta, text=body, content_hash=digest, body_first_line=first)


def load_markdown_text(
    text: str, where: str, pack: str, *, doc_id: str | None = None, defaults: Mapping[str, Any] | None = None
) -> Document:
    """A Document from Markdown text that has no file of its own (e.g. the rendered label-safety digests)."""
    try:
        fm, body, first = parse_front_matter(text, source=where)
    except CorpusValidationError as exc:
        raise IngestError(where, f"line {exc.line}: {exc.reason}") from exc
    body = strip_link_targets(body)
    if not body.strip():
        raise IngestError(where, "no text found")
    fallback = doc_id or slugify(where)
    meta = meta_from_front_matter(fm, fallback_id=fallback, pack=pack, path=where, body=body, defaults=defaults)
    return Document(
        meta=meta, text=body, content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(), body_first_line=first
    )


_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_LINK = re.compile(r"\[((?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]\((?:[^()\s]|\([^()\s]*\))+(?:\s+\"[^\"\n]*\")?\)")


def strip_link_targets(text: str) -> str:
    """`[text](url "title")` → `text`; images → their alt text. Line structure is kept.

    Why: link targets are long URLs that the word-piece tokenizer shreds into dozens of tokens —
    on the NCI pages they were a large share of all tokens — while adding nothing a reader or either
    retriever can use (the page URL is in the metadata)."""
    text = _IMAGE.sub(lambda m: m.group(1), text)
    return _LINK.sub(lambda m: m.group(1), text)


# ---------------------------------------------------------------- provenance
MAX_FIELD_CHARS = 1000  # one provenance field (title, body, url …); front matter is capped, fields too


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    if isinstance(value, (list, tuple)):
        return "/".join(_s(v) for v in value if _s(v))[:MAX_FIELD_CHARS]
    return str(value).strip()[:MAX_FIELD_CHARS]


def meta_from_front_matter(
    fm: Mapping[str, Any],
    *,
    fallback_id: str,
    pack: str,
    path: str = "",
    body: str = "",
    defaults: Mapping[str, Any] | None = None,
) -> DocumentMeta:
    """DocumentMeta from front matter in either the corpus format or the NCI page format.

    corpus: id, kind, title, issuing_bodies, sources[{body, edition, year, url}], last_reviewed, topics …
    NCI:    title, url, source, lastReviewed, citation ("NCI, 2025"), tags, version
    """
    d: dict[str, Any] = dict(defaults or {})
    d.update({k: v for k, v in fm.items() if v not in (None, "")})
    sources = d.get("sources") if isinstance(d.get("sources"), list) else []
    first_src: Mapping[str, Any] = sources[0] if sources and isinstance(sources[0], Mapping) else {}

    title = _s(d.get("title")) or _first_heading(body) or fallback_id
    body_name = _s(d.get("issuing_bodies")) or _s(d.get("issuing_body")) or _s(d.get("organisation"))
    body_name = body_name or _s(d.get("organization")) or _s(first_src.get("body")) or _s(d.get("source"))
    year = _s(first_src.get("edition")) or _s(first_src.get("year")) or _s(d.get("year"))
    if not year:
        m = re.search(r"\b(19|20)\d{2}\b", _s(d.get("citation")) + " " + _s(d.get("lastReviewed")))
        year = m.group(0) if m else ""
    url = _s(d.get("url")) or _s(first_src.get("url")) or _s(d.get("doi"))
    kind = _s(d.get("kind"))
    if not kind:
        tags = (
            [t.lower() for t in d.get("tags", []) if isinstance(t, str)]
            if isinstance(d.get("tags"), list)
            else []
        )
        kind = (
            "pdq"
            if "pdq" in tags or "pdq" in title.lower()
            else ("review" if pack != "corpus" else "guideline")
        )
        kind = "guideline" if pack == "open-medicine" else kind
    topics_raw = d.get("topics") or d.get("cancerTypes") or d.get("tags") or []
    topics = tuple(_s(t) for t in topics_raw if _s(t)) if isinstance(topics_raw, list) else (_s(topics_raw),)
    return DocumentMeta(
        doc_id=slugify(_s(d.get("id"))) or fallback_id,
        title=title,
        issuing_body=body_name,
        year=year,
        url=url,
        source_pack=pack,
        kind=kind,
        last_reviewed=_s(d.get("last_reviewed")) or _s(d.get("lastReviewed")) or _s(d.get("last_updated")),
        specialty=_s(d.get("specialty")),
        topics=topics,
        unverified=str(d.get("unverified", False)).lower() in ("true", "yes", "1"),
        path=path,
    )


def _first_heading(body: str) -> str:
    m = re.search(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", body, re.MULTILINE)
    if m:
        return m.group(1).strip()
    for line in body.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


# ---------------------------------------------------------------- text decoding
def _decode(raw: bytes, where: str) -> str:
    """UTF-8 first; else cp1252, else latin-1 (with a warning). Binary content is refused."""
    # A byte-order mark names the encoding outright (UTF-16/32 text is full of NUL bytes, so check first).
    for bom, enc in (
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if raw.startswith(bom):
            try:
                return raw.decode(enc).replace("\r\n", "\n").replace("\r", "\n")
            except UnicodeDecodeError as exc:
                raise IngestError(
                    where, f"starts with a {enc} byte-order mark but does not decode as {enc}"
                ) from exc
    head = raw[:8192]
    if b"\x00" in head:
        raise IngestError(where, "binary content (NUL bytes) in a text file; is the extension wrong?")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = ""
        for enc in ("cp1252", "latin-1"):
            try:
                text = raw.decode(enc)
            except UnicodeDecodeError:
                continue
            log.warning("%s: not valid UTF-8; decoded as %s — check special characters", where, enc)
            break
    controls = sum(1 for c in text[:8192] if ord(c) < 32 and c not in "\n\r\t\f")
    if text and controls > 0.05 * min(len(text), 8192):
        raise IngestError(where, "binary content in a text file (too many control characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------- HTML
_BLOCK_TAGS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "table", "pre", "blockquote", "dt", "dd"]


def _html_to_markdown(html: str) -> tuple[str, str]:
    """HTML → Markdown-ish text with headings as `#` lines and tables as ` | `-separated rows."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "form", "svg", "template"]):
        tag.decompose()
    root = soup.body or soup
    out: list[str] = []
    for el in root.find_all(_BLOCK_TAGS):
        # a block nested in another block (a <p> inside an <li>, a table in a table) is emitted by its parent
        if el.find_parent(["table", "li", "pre", "blockquote", "dd"]) is not None:
            continue
        name = el.name
        if name and name[0] == "h" and name[1:].isdigit():
            text = el.get_text(" ", strip=True)
            if text:
                out.append(f"{'#' * int(name[1:])} {text}")
        elif name == "table":
            rows = []
            for tr in el.find_all("tr"):
                cells = [c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])]
                if any(cells):
                    rows.append(" | ".join(cells))
            if rows:
                out.append("\n".join(rows))
        elif name == "li":
            text = el.get_text(" ", strip=True)
            if text:
                out.append(f"- {text}")
        elif name == "pre":
            out.append(el.get_text().strip("\n"))
        else:
            text = el.get_text(" ", strip=True)
            if text:
                out.append(text)
    if not out:  # unstructured HTML: fall back to its visible text
        out = [line.strip() for line in root.get_text("\n").splitlines() if line.strip()]
    return "\n\n".join(out), title


# ---------------------------------------------------------------- PDF
# pdfplumber (MIT; built on pdfminer.six) rather than pypdf: it exposes each character's font size
# and name, which is what lets us recover headings, it keeps reading order and word spacing better
# on multi-column guideline layouts, and it detects tables and returns their cells, so a dosing
# table becomes rows of text instead of a word soup. It is slower than pypdfium2, which matters
# little at ingest time.
def _pdf_to_markdown(raw: bytes, where: str) -> tuple[str, str]:
    import io

    import pdfplumber

    try:
        pdf = pdfplumber.open(io.BytesIO(raw))
    except Exception as exc:  # pdfminer raises many types: syntax, encryption, EOF …
        if _is_encryption_error(exc, raw):
            raise IngestError(where, "PDF is encrypted (password protected); decrypt it first") from exc
        raise IngestError(where, f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    try:
        with pdf:
            try:
                pages = list(pdf.pages)
            except Exception as exc:
                raise IngestError(where, f"corrupt PDF ({type(exc).__name__}: {exc})") from exc
            page_lines: list[list[dict[str, Any]]] = []
            tables: list[list[tuple[float, str]]] = []
            sizes: Counter[float] = Counter()
            for page in pages:
                try:
                    lines, tbls = _pdf_page(page)
                except Exception as exc:
                    name = type(exc).__name__
                    if _is_encryption_error(exc, raw):
                        raise IngestError(
                            where, "PDF is encrypted (password protected); decrypt it first"
                        ) from exc
                    raise IngestError(where, f"corrupt PDF page {page.page_number} ({name}: {exc})") from exc
                for ln in lines:
                    sizes[ln["size"]] += len(ln["text"])
                page_lines.append(lines)
                tables.append(tbls)
            title = _s((pdf.metadata or {}).get("Title"))
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(where, f"corrupt PDF ({type(exc).__name__}: {exc})") from exc
    if not sizes:
        raise IngestError(where, "PDF has no text layer (scanned images?); run OCR on it first")
    body_size = sizes.most_common(1)[0][0]
    heading_sizes = sorted({s for s in sizes if s >= body_size * 1.15}, reverse=True)[:5]
    level_of = {s: i + 1 for i, s in enumerate(heading_sizes)}
    bold_level = len(heading_sizes) + 1

    out: list[str] = []
    para: list[str] = []

    def end_para() -> None:
        if para:
            out.append(_join_pdf_lines(para))
            para.clear()

    for lines, tbls in zip(page_lines, tables, strict=True):
        pending_tables = sorted(tbls, key=lambda t: t[0])
        prev_bottom: float | None = None
        for ln in lines:
            while pending_tables and pending_tables[0][0] <= ln["top"]:
                end_para()
                out.append(pending_tables.pop(0)[1])
            text = ln["text"].strip()
            words = text.split()
            is_heading_size = ln["size"] in level_of
            is_bold_heading = (
                ln["bold"]
                and ln["size"] >= body_size * 0.98
                and len(words) <= 12
                and not text.endswith((".", ","))
            )
            if (is_heading_size or is_bold_heading) and len(words) <= 20 and re.search(r"[A-Za-z]", text):
                end_para()
                level = level_of.get(ln["size"], bold_level)
                if (
                    out
                    and out[-1].startswith("#" * level + " ")
                    and prev_bottom is not None
                    and (ln["top"] - prev_bottom < ln["size"] * 0.8)
                ):
                    out[-1] += " " + text  # a heading wrapped onto two lines
                else:
                    out.append(f"{'#' * min(level, 6)} {text}")
            else:
                if prev_bottom is not None and ln["top"] - prev_bottom > ln["size"] * 0.9:
                    end_para()
                para.append(text)
            prev_bottom = ln["bottom"]
        end_para()
        for _, t in pending_tables:
            out.append(t)
    return "\n\n".join(out), title


def _is_encryption_error(exc: BaseException, raw: bytes) -> bool:
    """pdfplumber wraps pdfminer's PDFPasswordIncorrect in a generic exception: look down the chain."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        text = f"{type(seen).__name__} {seen}".lower()
        if "password" in text or "encrypt" in text:
            return True
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = seen.__cause__ or seen.__context__ or inner
    return b"/Encrypt" in raw[-4096:] or b"/Encrypt" in raw[:4096]


def _pdf_page(page: Any) -> tuple[list[dict[str, Any]], list[tuple[float, str]]]:
    """Text lines outside tables (with font size and boldness) and tables as text rows, for one page."""
    found = page.find_tables()
    boxes = [t.bbox for t in found]
    tables: list[tuple[float, str]] = []
    for t in found:
        rows = [" | ".join((c or "").replace("\n", " ").strip() for c in row) for row in t.extract()]
        rows = [r for r in rows if r.strip(" |")]
        if rows:
            tables.append((t.bbox[1], "\n".join(rows)))

    def outside(obj: Mapping[str, Any]) -> bool:
        x = (obj["x0"] + obj["x1"]) / 2
        y = (obj["top"] + obj["bottom"]) / 2
        return not any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)

    src = page.filter(outside) if boxes else page
    lines = []
    for ln in src.extract_text_lines(return_chars=True, strip=True):
        chars = [c for c in ln.get("chars", []) if c.get("text", "").strip()]
        if not chars or not ln["text"].strip():
            continue
        size = round(Counter(round(c.get("size", 0.0), 1) for c in chars).most_common(1)[0][0], 1)
        bold = sum("bold" in str(c.get("fontname", "")).lower() for c in chars) >= 0.8 * len(chars)
        lines.append(
            {"text": ln["text"], "size": size, "bold": bold, "top": ln["top"], "bottom": ln["bottom"]}
        )
    return lines, tables


def _join_pdf_lines(lines: list[str]) -> str:
    text = lines[0]
    for nxt in lines[1:]:
        # "treat-\nment" → "treatment"; keep hyphens of names like "Lu-177-\nPSMA".
        if text.endswith("-") and nxt[:1].islower() and not re.search(r"\d-$|[A-Z]-$", text):
            text = text[:-1] + nxt
        else:
            text += " " + nxt
    return text
