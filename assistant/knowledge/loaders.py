"""Read the corpus files into typed records: digests and labels, rule files, clinical vocabulary, drug safety
profiles and oncology approvals.

Each loader appends what it finds wrong to the shared `ValidationReport` (file:line) instead of raising, so one
run lists every problem. Safety profiles and approval records are rendered as citable digests (the same text
ingest indexes) and their blocks join the references. `Knowledge` is assembled from these in the package's
`_build`; cross-reference checks live in `validate`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from assistant.errors import CorpusValidationError
from assistant.knowledge.lexicon import Lexicon
from assistant.knowledge.records import CorpusRef, Digest, Problem, ValidationReport
from assistant.knowledge.schema import (
    _DOC_ID_RE,
    _ID_RE,
    _RULE_TYPES,
    _THERAPY_ATOMS,
    DIAGNOSES,
    Rule,
    SafetyProfile,
    shipped_non_gene_markers,
)
from assistant.knowledge.yaml_lines import _atom_line, _pydantic_problems, _rel, _yaml_load
from assistant.oncology.records import Approval
from assistant.oncology.vocab import OncologyVocab, load_vocab

_FRONT_REQUIRED = ("id", "kind", "title", "last_reviewed")
_FRONT_KNOWN = {
    "id", "kind", "title", "issuing_bodies", "sources", "specialty", "topics", "strength_scheme",
    "last_reviewed", "verified_from", "unverified", "drug", "brand_names",
}  # fmt: skip
_REC_REQUIRED = ("id", "strength", "evidence", "population", "source")
_REC_KNOWN = {*_REC_REQUIRED, "url", "unverified", "last_reviewed", "verified_from", "notes"}


def _as_date(value: Any) -> str | None:
    if isinstance(value, _dt.date):
        return value.isoformat()
    try:
        return _dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        return None


def _load_digest(
    path: Path,
    corpus_dir: Path,
    report: ValidationReport,
    refs: dict[str, CorpusRef],
    digests: dict[str, Digest],
    lexicon: Lexicon,
    *,
    text: str | None = None,
    rel: str | None = None,
) -> None:
    from ingest.markdown import list_headings, parse_front_matter, split_sections

    rel = rel or _rel(path, corpus_dir)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            report.errors.append(Problem(rel, None, f"cannot read: {exc}"))
            return
    try:
        meta, body, first = parse_front_matter(text, source=rel)
    except CorpusValidationError as exc:
        report.errors.append(Problem(exc.path, exc.line, exc.reason))
        return
    except ValueError as exc:  # PyYAML raises ValueError for impossible dates
        report.errors.append(Problem(rel, 1, f"front matter: {exc}"))
        return
    if not meta:
        report.errors.append(Problem(rel, 1, "no YAML front matter (the file must start with '---')"))
        return
    fm_lines = {}
    for i, ln in enumerate(text.split("\n")[:first], start=1):
        m = re.match(r"^([A-Za-z_][\w-]*)\s*:", ln)
        if m:
            fm_lines.setdefault(m.group(1), i)
    for key in _FRONT_REQUIRED:
        if key not in meta or meta[key] in (None, ""):
            report.errors.append(Problem(rel, 1, f"front matter lacks required key {key!r}"))
    for key in sorted(set(meta) - _FRONT_KNOWN):
        report.warnings.append(
            Problem(rel, fm_lines.get(key, 1), f"front matter key {key!r} is not in the format")
        )
    doc_id = str(meta.get("id", "")).strip()
    if doc_id and not _DOC_ID_RE.match(doc_id):
        report.errors.append(
            Problem(rel, fm_lines.get("id", 1), f"document id {doc_id!r} must match [a-z0-9-]")
        )
    if doc_id in digests:
        report.errors.append(
            Problem(
                rel, fm_lines.get("id", 1), f"document id {doc_id!r} already used by {digests[doc_id].path}"
            )
        )
        return
    kind = str(meta.get("kind", "")).strip()
    if kind and kind not in ("guideline", "label", "review"):
        report.errors.append(
            Problem(rel, fm_lines.get("kind", 1), f"kind {kind!r} must be guideline, label or review")
        )
    if "last_reviewed" in meta and _as_date(meta["last_reviewed"]) is None:
        report.errors.append(
            Problem(
                rel,
                fm_lines.get("last_reviewed", 1),
                f"last_reviewed {meta['last_reviewed']!r} is not an ISO date",
            )
        )
    if kind == "label":
        drug = str(meta.get("drug", "")).strip()
        if not drug:
            report.errors.append(Problem(rel, 1, "a label digest needs 'drug:' (canonical therapy id)"))
        elif lexicon.entries and not lexicon.is_known(drug):
            report.errors.append(
                Problem(rel, fm_lines.get("drug", 1), f"drug {drug!r} is not a therapy id in the lexicon")
            )
    if not isinstance(meta.get("sources", []), list) or not meta.get("sources"):
        report.errors.append(
            Problem(rel, fm_lines.get("sources", 1), "front matter needs a non-empty 'sources:' list")
        )
    if not doc_id:
        return
    title = str(meta.get("title", ""))
    last_reviewed = _as_date(meta.get("last_reviewed")) or ""
    doc_unverified = bool(meta.get("unverified", False))

    slugs: dict[str, int] = {}
    for h in list_headings(body, first):
        if h.slug in slugs:
            report.errors.append(
                Problem(
                    rel,
                    h.line,
                    f"heading slug {h.slug!r} repeats line {slugs[h.slug]} (slugs must be unique in a document)",
                )
            )
        else:
            slugs[h.slug] = h.line
    try:
        sections = split_sections(doc_id, body, first, source=rel)
    except CorpusValidationError as exc:
        report.errors.append(Problem(exc.path, exc.line, exc.reason))
        return
    rec_ids: list[str] = []
    by_slug: dict[str, list[str]] = {}
    slug_paths: dict[str, tuple[str, ...]] = {}
    for s in sections:
        line = getattr(s, "line", 0) or None
        if s.slug:
            slug_paths.setdefault(s.slug, s.heading_path)
            if s.text and not s.rec_id:
                by_slug.setdefault(s.slug, []).append(s.text)
        header = dict(getattr(s, "rec_header", ()) or ())
        is_rec = bool(header) or bool(s.rec_id)
        if not is_rec:
            continue
        for key in _REC_REQUIRED:
            if not header.get(key, getattr(s, {"id": "rec_id", "source": "rec_source"}.get(key, key), "")):
                report.errors.append(Problem(rel, line, f"recommendation block lacks {key!r}"))
        for key in sorted(set(header) - _REC_KNOWN):
            report.warnings.append(
                Problem(rel, line, f"recommendation header key {key!r} is not in the format")
            )
        if "last_reviewed" in header and _as_date(header["last_reviewed"]) is None:
            report.errors.append(
                Problem(rel, line, f"last_reviewed {header['last_reviewed']!r} is not an ISO date")
            )
        if not s.text.strip():
            report.errors.append(
                Problem(rel, line, f"recommendation {s.rec_id or '?'} has no statement text")
            )
        if not s.rec_id:
            continue
        if not _ID_RE.match(s.rec_id):
            report.errors.append(
                Problem(rel, line, f"recommendation id {s.rec_id!r} must have no spaces or '#'")
            )
        if s.rec_id in refs:
            prev = refs[s.rec_id]
            report.errors.append(
                Problem(rel, line, f"recommendation id {s.rec_id!r} already used at {prev.path}:{prev.line}")
            )
            continue
        rec_ids.append(s.rec_id)
        if s.slug:
            by_slug.setdefault(s.slug, []).append(s.text)
        refs[s.rec_id] = CorpusRef(
            ref=s.rec_id,
            doc_id=doc_id,
            doc_title=title,
            kind=kind,
            heading_path=s.heading_path,
            text=s.text,
            path=rel,
            line=line or 0,
            rec_id=s.rec_id,
            strength=s.strength,
            evidence=s.evidence,
            population=s.population,
            source=s.rec_source,
            url=getattr(s, "rec_url", "") or _first_url(meta),
            unverified=s.unverified or doc_unverified,
            last_reviewed=last_reviewed,
        )
    for slug, line in slugs.items():
        ref = f"{doc_id}#{slug}"
        refs[ref] = CorpusRef(
            ref=ref,
            doc_id=doc_id,
            doc_title=title,
            kind=kind,
            heading_path=slug_paths.get(slug, ()),
            text="\n\n".join(by_slug.get(slug, [])),
            path=rel,
            line=line,
            url=_first_url(meta),
            unverified=doc_unverified,
            last_reviewed=last_reviewed,
        )
    digests[doc_id] = Digest(doc_id, kind, title, rel, dict(meta), tuple(slugs), tuple(rec_ids))
    report.counts["labels" if kind == "label" else "digests"] = (
        report.counts.get("labels" if kind == "label" else "digests", 0) + 1
    )
    report.counts["recommendations"] = report.counts.get("recommendations", 0) + len(rec_ids)


def _first_url(meta: dict[str, Any]) -> str:
    for src in meta.get("sources") or []:
        if isinstance(src, dict) and src.get("url"):
            return str(src["url"])
    return ""


def _load_rule_file(
    path: Path, corpus_dir: Path, report: ValidationReport, context: dict[str, Any] | None = None
) -> list[tuple[Rule, Any, str]]:
    rel = _rel(path, corpus_dir)
    try:
        data = _yaml_load(path.read_text(encoding="utf-8"), rel)
    except CorpusValidationError as exc:
        report.errors.append(Problem(exc.path, exc.line, exc.reason))
        return []
    if data is None:
        report.warnings.append(Problem(rel, None, "empty rule file"))
        return []
    if not isinstance(data, dict) or set(data) != {"rules"} or not isinstance(data["rules"], list):
        report.errors.append(
            Problem(rel, 1, "a rule file is one top-level key 'rules:' holding a list of records")
        )
        return []
    out = []
    for raw in data["rules"]:
        line = getattr(raw, "line", 0) or None
        if not isinstance(raw, dict):
            report.errors.append(Problem(rel, line, "each rule record must be a mapping"))
            continue
        model = _RULE_TYPES.get(str(raw.get("type")))
        if model is None:
            report.errors.append(
                Problem(
                    rel,
                    line,
                    f"rule {raw.get('id', '?')}: type must be therapy, warning or question, got {raw.get('type')!r}",
                )
            )
            continue
        try:
            rule = model.model_validate(raw, context=context)
        except ValidationError as exc:
            report.errors.extend(_pydantic_problems(exc, raw, rel, f"rule {raw.get('id', '?')}"))
            continue
        out.append((rule, raw, rel))
    return out


def _load_clinical(
    corpus_dir: Path, report: ValidationReport
) -> tuple[tuple[str, ...], dict[str, float], tuple[str, ...]]:
    """Condition ids, reference ULNs and the non-gene markers (``biomarkers.non_gene``) from
    lexicon/clinical.yaml (built-in ids and the shipped marker list when the file is absent)."""
    path = corpus_dir / "lexicon" / "clinical.yaml"
    if not path.exists():
        return DIAGNOSES, {}, shipped_non_gene_markers()
    rel = _rel(path, corpus_dir)
    try:
        data = _yaml_load(path.read_text(encoding="utf-8"), rel)
    except CorpusValidationError as exc:
        report.errors.append(Problem(exc.path, exc.line, exc.reason))
        return DIAGNOSES, {}, shipped_non_gene_markers()
    ids: list[str] = []
    for item in (data or {}).get("conditions") or []:
        line = getattr(item, "line", None)
        cid = str(item.get("id", "")) if isinstance(item, dict) else ""
        if not re.match(r"^[a-z0-9][a-z0-9_]*$", cid):
            report.errors.append(Problem(rel, line, f"condition id {cid!r} must be lowercase letters, digits, '_'"))
            continue
        if cid in ids:
            report.errors.append(Problem(rel, line, f"condition id {cid!r} repeats"))
            continue
        for pat in item.get("patterns") or []:
            try:
                re.compile(str(pat))
            except re.error as exc:
                report.errors.append(Problem(rel, line, f"condition {cid}: bad pattern ({exc})"))
        ids.append(cid)
    uln: dict[str, float] = {}
    for name, spec in ((data or {}).get("reference_uln") or {}).items():
        value = spec.get("value") if isinstance(spec, dict) else spec
        try:
            uln[str(name)] = float(value)
        except (TypeError, ValueError):
            report.errors.append(Problem(rel, None, f"reference_uln {name}: value must be a number"))
    non_gene = ((data or {}).get("biomarkers") or {}).get("non_gene")
    if non_gene is None:
        non_gene = shipped_non_gene_markers()
    elif not isinstance(non_gene, list) or not all(isinstance(m, str) for m in non_gene):
        report.errors.append(Problem(rel, None, "biomarkers.non_gene must be a list of marker names"))
        non_gene = shipped_non_gene_markers()
    report.counts["conditions"] = len(ids)
    return tuple(ids) or DIAGNOSES, uln, tuple(str(m) for m in non_gene)


def _load_safety(
    corpus_dir: Path,
    report: ValidationReport,
    lexicon: Lexicon,
    refs: dict[str, CorpusRef],
    digests: dict[str, Digest],
    context: dict[str, Any],
) -> list[SafetyProfile]:
    from ingest.safety_docs import render_profile, safety_files

    names = {tid: e.names[0] for tid, e in lexicon.entries.items() if e.names}
    profiles: list[SafetyProfile] = []
    seen: dict[str, str] = {}
    for path in safety_files(corpus_dir):
        rel = _rel(path, corpus_dir)
        try:
            data = _yaml_load(path.read_text(encoding="utf-8"), rel)
        except CorpusValidationError as exc:
            report.errors.append(Problem(exc.path, exc.line, exc.reason))
            continue
        if not isinstance(data, dict) or set(data) != {"profiles"} or not isinstance(data["profiles"], list):
            report.errors.append(Problem(rel, 1, "a safety file is one top-level key 'profiles:' holding a list"))
            continue
        for raw in data["profiles"]:
            line = getattr(raw, "line", 0) or None
            try:
                prof = SafetyProfile.model_validate(raw, context=context)
            except ValidationError as exc:
                pid = raw.get("id", "?") if isinstance(raw, dict) else "?"
                report.errors.extend(_pydantic_problems(exc, raw, rel, f"profile {pid}"))
                continue
            if prof.id in seen:
                report.errors.append(Problem(rel, line, f"profile id {prof.id!r} already used in {seen[prof.id]}"))
                continue
            seen[prof.id] = f"{rel}:{line}"
            if lexicon.entries:
                for tok in [*prof.applies_to]:
                    if not lexicon.is_known(tok):
                        report.errors.append(
                            Problem(rel, line, f"profile {prof.id}: applies_to {tok!r} is not a therapy id or class")
                        )
                for chk in [*prof.contraindicated, *prof.caution]:
                    for node in chk.when.walk():
                        for atom in _THERAPY_ATOMS:
                            for tok in getattr(node, atom) or []:
                                if not lexicon.is_known(tok):
                                    report.errors.append(
                                        Problem(
                                            rel,
                                            _atom_line(raw, atom, tok) or line,
                                            f"profile {prof.id} check {chk.id}: {atom} {tok!r} is not a therapy id or class",
                                        )
                                    )
            # The rendered label-safety digest: its blocks become citable refs (and are what ingest indexes).
            _load_digest(path, corpus_dir, report, refs, digests, lexicon, text=render_profile(raw, names), rel=f"{rel}#{prof.id}")
            for c in prof.cite:
                if c not in refs:
                    report.errors.append(Problem(rel, line, f"profile {prof.id}: cite {c!r} resolves to nothing"))
            profiles.append(prof)
    report.counts["safety_profiles"] = len(profiles)
    report.counts["safety_checks"] = sum(len(p.contraindicated) + len(p.caution) for p in profiles)
    return profiles


def _load_approvals(
    corpus_dir: Path,
    report: ValidationReport,
    lexicon: Lexicon,
    refs: dict[str, CorpusRef],
    digests: dict[str, Digest],
) -> tuple[list[Approval], OncologyVocab | None]:
    """FDA biomarker-directed approval records (corpus/oncology/*.yaml): validated against the oncology vocabulary
    and the therapy lexicon, rendered as citable digest blocks (the same text ingest indexes)."""
    from ingest.approval_docs import approval_files, render_approvals

    files = approval_files(corpus_dir)
    try:
        vocab = load_vocab(corpus_dir)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        report.errors.append(Problem("lexicon/oncology.yaml", None, f"oncology vocabulary unreadable: {exc}"))
        return [], None
    if files and vocab is None:
        report.errors.append(Problem("lexicon/oncology.yaml", None, "oncology/ records need lexicon/oncology.yaml"))
        return [], None
    if vocab is None:
        return [], None
    context = {
        "tumours": set(vocab.tumours),
        "histologies": set(vocab.histologies),
        "markers": set(vocab.markers),
        "settings": set(vocab.settings),
    }
    names = {tid: e.names[0] for tid, e in lexicon.entries.items() if e.names}
    out: list[Approval] = []
    seen: dict[str, str] = {}
    for path in files:
        rel = _rel(path, corpus_dir)
        try:
            data = _yaml_load(path.read_text(encoding="utf-8"), rel)
        except CorpusValidationError as exc:
            report.errors.append(Problem(exc.path, exc.line, exc.reason))
            continue
        if not isinstance(data, dict) or not set(data) <= {"drugs", "approvals"}:
            report.errors.append(Problem(rel, 1, "an oncology file has the top-level keys 'drugs:' and 'approvals:' only"))
            continue
        raws = data.get("approvals") or []
        if not isinstance(raws, list):
            report.errors.append(Problem(rel, 1, "'approvals:' must be a list"))
            continue
        good_raw: list[Any] = []
        for raw in raws:
            line = getattr(raw, "line", 0) or None
            try:
                rec = Approval.model_validate(raw, context=context)
            except ValidationError as exc:
                aid = raw.get("id", "?") if isinstance(raw, dict) else "?"
                report.errors.extend(_pydantic_problems(exc, raw, rel, f"approval {aid}"))
                continue
            if rec.id in seen:
                report.errors.append(Problem(rel, line, f"approval id {rec.id!r} already used in {seen[rec.id]}"))
                continue
            seen[rec.id] = f"{rel}:{line}"
            bad = [t for t in [*rec.regimen, *rec.after, *rec.not_after] if not lexicon.is_known(t)]
            if bad and lexicon.entries:
                report.errors.append(
                    Problem(rel, line, f"approval {rec.id}: {bad} not a therapy id or class (add it under 'drugs:')")
                )
                continue
            out.append(rec)
            good_raw.append(raw)
        if good_raw:
            text = render_approvals(path, good_raw, names)
            _load_digest(path, corpus_dir, report, refs, digests, lexicon, text=text, rel=f"{rel}#approvals")
    report.counts["oncology_approvals"] = len(out)
    return out, vocab


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every file that makes up the corpus version (Markdown, YAML), sorted."""
    return sorted(
        p
        for p in corpus_dir.rglob("*")
        if p.is_file() and p.suffix in (".md", ".yaml", ".yml") and p.name != "README.md"
    )


def corpus_version(corpus_dir: Path) -> str:
    """Short hash over every corpus file's path and bytes: changes when any rule or digest changes."""
    h = hashlib.sha256()
    for p in corpus_files(corpus_dir):
        h.update(str(p.relative_to(corpus_dir)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]
