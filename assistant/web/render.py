"""Pure renderers for the chat app: answer Markdown, sources, rule findings, patient context, backend
status, conversation export and audit record. Data in, strings/dicts out — no Gradio, no I/O.

Everything shown comes from untrusted text (guideline passages, model output, the clinician's own
question), so every renderer escapes before it adds markup of its own: the HTML panels are raw HTML
in the browser (``gr.HTML`` does not sanitise), and the chat Markdown is escaped here *and* sanitised
by the Chatbot component, so one layer failing is not enough to run script.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from assistant.answer.format import SOURCES_SECTION, has_section
from assistant.models import Answer, Citation, Finding, PatientContext
from ingest.injection import flag_reason
from ingest.text import content_words, split_sentences

ANCHOR_PREFIX = "guiderail-src-"
"""Element id prefix of a source card; citation links point at ``#guiderail-src-<n>``."""

DISCLAIMER = (
    "GuideRail supports, and does not replace, clinical judgement. Answers come from the guideline "
    "digests and drug-label summaries in its corpus; check the cited sources and the current label "
    "before acting."
)

OUTDATED_AFTER_YEARS = 6
"""A source whose edition is older than this is flagged: guidelines in oncology are revised faster."""

BACKEND_LABELS = {"local": "local model", "openai": "model server", "none": "rules-only"}

_SAFE_URL = re.compile(r"^(https?://|mailto:|#)", re.I)
_MD_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*([^)\s]*)(\s+\"[^\"\n]*\")?\s*\)")
_MD_REFDEF = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*(\S+).*$", re.M)
_AUTOLINK = re.compile(r"<(https?://[^\s<>\"']+)>")
_CITE_GROUP = re.compile(r"\[(\d{1,3})\](?!\()")

# ---------------------------------------------------------------- escaping
def esc(text: object) -> str:
    """HTML-escape, and also neutralise ``$``/``{`` so no template layer can ever evaluate the text."""
    return html.escape(str(text), quote=True).replace("$", "&#36;").replace("{", "&#123;")


def safe_url(url: str) -> str | None:
    """The URL if it is http(s)/mailto/#anchor, else None (javascript:, data:, vbscript: … are dropped)."""
    url = (url or "").strip()
    # browsers ignore control characters and whitespace inside a scheme ("java\tscript:") — so do we
    compact = re.sub(r"[\x00-\x20]", "", url)
    return url if url and _SAFE_URL.match(compact) and compact == url else None


def _escape_markdown_text(text: str) -> str:
    """Escape HTML in Markdown source; keep Markdown itself (headings, lists, quotes) working.

    Only ``&`` and ``<`` need escaping: without ``<`` no tag, comment or autolink can start, and ``>``
    must stay literal for Markdown block quotes."""
    return text.replace("&", "&amp;").replace("<", "&lt;")


def _defuse_links(md: str) -> str:
    """Keep Markdown links with safe targets, turn every other link (or image) into its plain text."""

    def link(m: re.Match[str]) -> str:
        bang, label, url, title = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        if bang:  # images: never fetched (no network, and tracking pixels are a leak)
            return label
        target = safe_url(html.unescape(url))
        return f"[{label}]({url}{title})" if target else label

    md = _MD_LINK.sub(link, md)
    return _MD_REFDEF.sub(lambda m: m.group(0) if safe_url(m.group(1)) else "", md)


def link_citations(md: str, valid: Iterable[int]) -> str:
    """``[n]`` → a Markdown link to the source card; numbers with no source stay plain text."""
    known = set(valid)

    def one(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f"[\\[{n}\\]](#{ANCHOR_PREFIX}{n})" if n in known else m.group(0)

    return _CITE_GROUP.sub(one, md)


def safe_markdown(md: str) -> str:
    """Untrusted Markdown → Markdown that renders no HTML and links only to http(s)/mailto/#anchors."""
    md = _AUTOLINK.sub(lambda m: f"[{m.group(1)}]({m.group(1)})", md or "")
    return _defuse_links(_escape_markdown_text(md))


_QUOTE = re.compile(r"“([^”\n]*)”")
_MD_EMPHASIS = re.compile(r"([\\`*_~])")


def escape_quotes(md: str) -> str:
    """Backslash-escape Markdown emphasis and code markers inside “…” quotes, so a quoted passage renders
    exactly as its source (``__init__``, ``*`` footnote marks and ``~`` ranges would otherwise be eaten)."""
    return _QUOTE.sub(lambda m: "“" + _MD_EMPHASIS.sub(r"\\\1", m.group(1)) + "”", md)


def answer_markdown(md: str, citations: Sequence[Citation]) -> str:
    """Untrusted answer Markdown → safe Markdown for the Chatbot with clickable citation numbers."""
    return link_citations(escape_quotes(safe_markdown(md)), (c.number for c in citations))


def user_markdown(text: str) -> str:
    """The clinician's own message: shown as typed (escaped, links defused, no citation links)."""
    return _defuse_links(_escape_markdown_text(text or ""))


# ---------------------------------------------------------------- supporting span
def _words(text: str) -> set[str]:
    # The verifier's content words; a 6-letter prefix on top: "progressed"/"progression" match
    return {w[:6] for w in content_words(text) if len(w) >= 3}


def claims_for(answer_md: str) -> dict[int, list[str]]:
    """The answer sentences that cite each number (what the passage is supposed to support)."""
    out: dict[int, list[str]] = {}
    for line in (answer_md or "").splitlines():
        for sent in split_sentences(line):
            for n in {int(x) for x in re.findall(r"\[(\d{1,3})\]", sent)}:
                out.setdefault(n, []).append(re.sub(r"\[\d{1,3}\]", "", sent))
    return out


def support_span(passage: str, claims: Sequence[str], *, min_overlap: int = 2) -> tuple[int, int] | None:
    """Character span of the passage sentence sharing most content words with the claims, if any does."""
    if not passage:
        return None
    claim_words = set().union(*(_words(c) for c in claims)) if claims else set()
    best: tuple[int, int, int] | None = None
    pos = 0
    for sent in split_sentences(passage):
        start = passage.find(sent, pos)
        if start < 0:
            continue
        pos = start + len(sent)
        overlap = len(_words(sent) & claim_words)
        if overlap >= min_overlap and (best is None or overlap > best[0]):
            best = (overlap, start, start + len(sent))
    return (best[1], best[2]) if best else None


def _year(text: str) -> int | None:
    """The latest year named ("2020, amended 2023" → 2023: the amendment is the edition in force)."""
    years = [int(y) for y in re.findall(r"\b(?:19|20)\d{2}\b", text or "")]
    return max(years) if years else None


def outdated_reason(c: Citation, all_citations: Sequence[Citation], today: date | None = None) -> str | None:
    """Why this source's edition may be outdated: a newer edition of it is cited too, or it is old."""
    year = _year(c.year)
    if year is None:
        return None
    base = re.sub(r"[\W\d_]+", " ", c.title.lower()).strip()
    for other in all_citations:
        oy = _year(other.year)
        same_source = other.organisation == c.organisation and re.sub(r"[\W\d_]+", " ", other.title.lower()).strip() == base
        if other is not c and oy and oy > year and same_source:
            return f"a newer edition ({oy}) is also cited"
    this_year = (today or date.today()).year
    if this_year - year > OUTDATED_AFTER_YEARS:
        return f"edition from {year}; check for a newer one"
    return None


# ---------------------------------------------------------------- sources panel
def passage_flag(c: Citation) -> str:
    """Why a passage is flagged as addressing the model: ingest's flag, else found now (an older index)."""
    return c.flagged or flag_reason(c.passage)


def _cite_links(numbers: Iterable[int]) -> str:
    return " ".join(
        f'<a class="gr-cite" href="#{ANCHOR_PREFIX}{int(n)}" data-cite="{int(n)}">[{int(n)}]</a>' for n in numbers
    )


def _highlight(passage: str, span: tuple[int, int] | None) -> str:
    if not span:
        return esc(passage)
    a, b = span
    return f"{esc(passage[:a])}<mark>{esc(passage[a:b])}</mark>{esc(passage[b:])}"


def sources_html(citations: Sequence[Citation], answer_md: str = "", today: date | None = None) -> str:
    """One card per citation: metadata, markers, the passage with its supporting sentence highlighted."""
    if not citations:
        return '<div class="gr-empty">Sources appear here with each answer.</div>'
    claims = claims_for(answer_md)
    cards: list[str] = []
    for c in citations:
        n = int(c.number)
        badges: list[str] = []
        if c.unverified:
            badges.append('<span class="gr-badge gr-unverified" title="Not checked against its source">unverified</span>')
        # issue 14: text addressed to the model is shown as data, flagged, and never quoted as advice
        flagged = passage_flag(c)
        if flagged:
            badges.append(f'<span class="gr-badge gr-flagged" title="{esc(flagged)}">flagged: addressed to the model</span>')
        old = outdated_reason(c, citations, today)
        if old:
            badges.append(f'<span class="gr-badge gr-outdated" title="{esc(old)}">outdated edition?</span>')
        meta: list[str] = []
        org_year = ", ".join(x for x in (c.organisation, c.year) if x)
        if org_year:
            meta.append(esc(org_year))
        if c.section:
            meta.append(f"§ {esc(c.section)}")
        if c.rec_id:
            meta.append(f"<code>{esc(c.rec_id)}</code>")
        details: list[str] = []
        if c.strength:
            details.append(f"<b>Strength:</b> {esc(c.strength)}")
        if c.last_reviewed:
            details.append(f"<b>Last reviewed:</b> {esc(c.last_reviewed)}")
        url = safe_url(c.url)
        if url:
            details.append(f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">source ↗</a>')
        if old:
            details.append(f"<i>{esc(old)}</i>")
        span = support_span(c.passage, claims.get(n, []))
        cards.append(
            f'<details class="gr-src" id="{ANCHOR_PREFIX}{n}" open>'
            f'<summary><span class="gr-num">[{n}]</span> <b>{esc(c.title)}</b> {" ".join(badges)}</summary>'
            f'<div class="gr-meta">{" · ".join(meta)}</div>'
            f'<div class="gr-meta">{" · ".join(details)}</div>'
            + (
                f'<div class="gr-flagnote" role="note">⚠ This passage contains text addressed to the model '
                f"({esc(flagged)}); it is shown as data and never quoted as advice.</div>"
                if flagged
                else ""
            )
            + f'<blockquote class="gr-passage">{_highlight(c.passage, span)}</blockquote>'
            f'<div class="gr-chunk">chunk <code>{esc(c.chunk_id)}</code></div>'
            "</details>"
        )
    return '<div class="gr-sources">' + "".join(cards) + "</div>"


# ---------------------------------------------------------------- rule-check panel
KIND_STYLE: Mapping[str, tuple[str, str, str]] = {
    "recommend": ("✔", "recommend", "Recommended options"),
    "consider": ("◐", "consider", "Options to consider"),
    "exclude": ("✖", "exclude", "Not recommended for this patient"),
    "warn": ("⚠", "warn", "Warnings"),
    "ask": ("?", "ask", "Open questions"),
}
"""Icon, CSS class and group heading per finding kind, in the order the panel shows them."""


def _finding_row(f: Finding) -> str:
    icon, label, _ = KIND_STYLE.get(f.kind, ("•", f.kind, f.kind))
    name = f.title or (f.therapy or "").replace("_", " ")
    extra = []
    if f.strength:
        extra.append(esc(f.strength))
    if f.severity:
        extra.append(f"severity {esc(f.severity)}")
    if f.unverified:
        extra.append('<span class="gr-badge gr-unverified">unverified</span>')
    extra.append(f"rule <code>{esc(f.rule_id)}</code>")
    cites = _cite_links(f.citations) if f.citations else '<span class="gr-nocite">no passage cited</span>'
    head = f"<b>{esc(name)}</b> — " if name else ""
    return (
        f'<li class="gr-finding gr-{esc(label)}" data-kind="{esc(f.kind)}">'
        f'<span class="gr-kind">{icon} {esc(label)}</span> {head}{esc(f.reason)} {cites}'
        f'<div class="gr-fmeta">{" · ".join(extra)}</div></li>'
    )


def findings_html(findings: Sequence[Finding]) -> str:
    """The rule checks that constrained the answer, grouped by kind: what to do, what not, what to ask."""
    if not findings:
        return '<div class="gr-empty">No rule fired for the details given (rule checks appear here).</div>'
    groups: list[str] = []
    kinds = [*KIND_STYLE, *sorted({f.kind for f in findings} - set(KIND_STYLE))]
    for kind in kinds:
        members = sorted((f for f in findings if f.kind == kind), key=lambda f: f.preference or 99)
        if not members:
            continue
        icon, label, heading = KIND_STYLE.get(kind, ("•", kind, kind))
        groups.append(
            f'<details class="gr-group gr-group-{esc(label)}" open><summary>{icon} {esc(heading)} '
            f'<span class="gr-count">({len(members)})</span></summary>'
            f'<ul class="gr-findings">{"".join(_finding_row(f) for f in members)}</ul></details>'
        )
    return '<div class="gr-rules-list">' + "".join(groups) + "</div>"


# ---------------------------------------------------------------- patient context
def context_facts(ctx: PatientContext) -> list[tuple[str, str]]:
    """(label, value) rows for the facts that are known; plain text, escaped by the caller."""
    rows: list[tuple[str, str]] = []
    if ctx.diagnoses:
        rows.append(("Diagnoses", ", ".join(d.replace("_", " ") for d in ctx.diagnoses)))
    if ctx.disease_state:
        rows.append(("Disease state", ctx.disease_state))
    if ctx.castration:
        rows.append(("Castration", ctx.castration))
    for t in ctx.therapies:
        where = f" ({t.setting})" if t.setting else ""
        rows.append(("Therapy", f"{t.therapy.replace('_', ' ')} — {t.status}{where}"))
    for b in ctx.biomarkers:
        origin = f", {b.origin}" if b.origin != "unknown" else ""
        value = f" {b.value}" if b.value else ""
        rows.append(("Biomarker", f"{b.name}: {b.result.replace('_', ' ')}{origin}{value}"))
    if ctx.tumour is not None:
        from assistant.oncology.context import describe_tumour

        rows.append(("Tumour", describe_tumour(ctx.tumour)))
    for site, state in ctx.sites.items():
        rows.append(("Site", f"{site.replace('_', ' ')}: {state}"))
    for lab in ctx.labs.values():
        value = "" if lab.value is None else f" {lab.value:g} {lab.unit}".rstrip()
        series = f" (series {', '.join(f'{v:g}' for v in lab.series)})" if lab.series else ""
        trend = f", {lab.trend}" if lab.trend != "unknown" else ""
        rows.append(("Lab", f"{lab.name}{value}{trend}{series}"))
    simple = (
        ("ECOG", ctx.ecog),
        ("Symptomatic", None if ctx.symptomatic is None else ("yes" if ctx.symptomatic else "no")),
        ("Age", ctx.age),
        ("Sex", ctx.sex),
        ("Weight (kg)", ctx.weight_kg),
        ("Pregnant", None if ctx.pregnant is None else ("yes" if ctx.pregnant else "no")),
    )
    rows.extend((k, str(v)) for k, v in simple if v is not None)
    if ctx.symptoms:
        rows.append(("Symptoms", ", ".join(ctx.symptoms)))
    if ctx.allergies:
        rows.append(("Allergies", ", ".join(ctx.allergies)))
    if ctx.medications:
        rows.append(("Medications", ", ".join(m.replace("_", " ") for m in ctx.medications)))
    for name, state in ctx.comorbidities.items():
        rows.append(("Comorbidity", f"{name.replace('_', ' ')}: {state}"))
    for ch in ctx.changes:
        rows.append(("Changed", f"{ch.field}: {ch.old} → {ch.new} (turn {ch.turn})"))
    for note in ctx.notes:
        rows.append(("Note", note))
    return rows


def context_html(ctx: PatientContext | None, corrections: Sequence[str] = ()) -> str:
    if ctx is None:
        return '<div class="gr-empty">Patient facts extracted from the conversation appear here.</div>'
    rows = context_facts(ctx)
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    if not rows:
        body = '<tr><td colspan="2" class="gr-empty">No patient facts recognised yet.</td></tr>'
    fixes = "".join(f"<li>{esc(c)}</li>" for c in corrections)
    fixes_html = f'<div class="gr-fixes"><b>Corrected by the clinician:</b><ul>{fixes}</ul></div>' if fixes else ""
    return f'<table class="gr-context">{body}</table>{fixes_html}'


def context_json(ctx: PatientContext | None) -> str:
    """The editable form of the context: only the fields that are set, so a correction is easy to type."""
    import json

    if ctx is None:
        return "{}"
    data = ctx.model_dump(mode="json", exclude_defaults=True)
    data.pop("changes", None)  # history of overrides: shown, not edited
    return json.dumps(data, indent=2, ensure_ascii=False)


# ---------------------------------------------------------------- backend / banner
def backend_label(backend: str) -> str:
    return BACKEND_LABELS.get(backend, backend or "unknown")


def status_html(configured: str, answer: Answer | None = None) -> str:
    """Backend indicator, plus a prominent banner when the answer came from the fallback."""
    used = answer.backend if answer is not None else configured
    mode = answer.verification.mode if answer is not None else ""
    model = f" · {esc(answer.model)}" if answer is not None and answer.model else ""
    parts = [
        f'<span class="gr-backend" data-backend="{esc(used)}">Backend: <b>{esc(backend_label(used))}</b>{model}</span>'
    ]
    if answer is not None:
        verified = "verified" if answer.verification.verified else "not fully verified"
        parts.append(f'<span class="gr-mode">answer mode: {esc(mode)} · {verified}</span>')
    fallback = answer is not None and (answer.banner or mode == "composer-fallback")
    if fallback:
        text = answer.banner or "The language model's answer was not used; this answer was written from the rule checks."
        parts.append(f'<div class="gr-banner" role="alert">⚠ Fallback used: {esc(text)}</div>')
    if answer is not None and answer.abstained:
        parts.append('<div class="gr-abstain">The assistant abstained: the corpus does not cover this well enough.</div>')
    return '<div class="gr-status">' + " ".join(parts) + "</div>"


# ---------------------------------------------------------------- exports
def conversation_markdown(turns: Sequence[Mapping[str, Any]], exported_at: str) -> str:
    """The visible conversation as Markdown: questions, answers (with their sources), corrections.

    The file is opened in other viewers, many of which render raw HTML: every text is made safe here."""
    lines = ["# GuideRail conversation", "", f"_Exported {exported_at}. {DISCLAIMER}_", ""]
    for i, t in enumerate(turns, 1):
        answer: Answer | None = t.get("answer")
        lines.append(f"## Turn {i}")
        if t.get("note"):
            lines.append(f"_{user_markdown(t['note'])}_")
        lines.append(f"**Question:** {user_markdown(t['question'])}")
        if t.get("patient"):
            lines.append(f"**Added patient details:** {user_markdown(t['patient'])}")
        lines.append("")
        if answer is None:
            lines.append("_(no answer)_")
            continue
        if answer.banner:
            lines.append(f"> **Note:** {user_markdown(answer.banner)}")
            lines.append("")
        lines.append(escape_quotes(safe_markdown(answer.answer_markdown.strip())))
        if answer.citations and not has_section(answer.answer_markdown, SOURCES_SECTION):
            lines.append(f"\n### {SOURCES_SECTION}")
            for c in answer.citations:
                src = f"{c.number}. {c.title} — {c.organisation} {c.year} § {c.section} ({c.chunk_id})"
                if passage_flag(c):
                    src += " — flagged: contains text addressed to the model, not advice"
                lines.append(user_markdown(src))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def audit_turn(turn: Mapping[str, Any]) -> dict[str, Any]:
    """One question's audit entry: inputs, context, passages with ids/editions, findings, verification."""
    answer: Answer | None = turn.get("answer")
    entry: dict[str, Any] = {
        "question": turn["question"],
        "patient_text": turn.get("patient"),
        "audience": turn.get("audience"),
        "superseded": bool(turn.get("superseded")),
        "note": turn.get("note") or None,
        "context_given": turn["context"].model_dump(mode="json") if turn.get("context") is not None else None,
        "asked_at": turn.get("asked_at"),
    }
    if answer is None:
        entry["answer"] = None
        return entry
    entry.update(
        {
            "patient_context": answer.patient_context.model_dump(mode="json"),
            "passages": [
                {
                    "number": c.number,
                    "chunk_id": c.chunk_id,
                    "doc_id": c.doc_id,
                    "rec_id": c.rec_id,
                    "title": c.title,
                    "organisation": c.organisation,
                    "edition_year": c.year,
                    "section": c.section,
                    "strength": c.strength,
                    "last_reviewed": c.last_reviewed,
                    "unverified": c.unverified,
                    "url": c.url,
                    "flagged": passage_flag(c) or None,
                    "text": c.passage,
                }
                for c in answer.citations
            ],
            "findings": [f.model_dump(mode="json") for f in answer.findings],
            "verification": answer.verification.model_dump(mode="json"),
            "abstained": answer.abstained,
            "backend": answer.backend,
            "model": answer.model,
            "corpus_version": answer.corpus_version,
            "banner": answer.banner,
            "answer_markdown": answer.answer_markdown,
            "follow_ups": answer.follow_ups,
            "timings_ms": answer.timings_ms,
        }
    )
    return entry


def audit_record(
    turns: Sequence[Mapping[str, Any]], *, exported_at: str, app_version: str, settings_summary: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "schema": "guiderail.audit/1",
        "exported_at": exported_at,
        "app_version": app_version,
        "settings": dict(settings_summary),
        "turns": [audit_turn(t) for t in turns],
    }
