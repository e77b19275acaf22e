"""FDA biomarker-directed approval records (corpus/oncology/*.yaml) rendered as citable digests.

Each file becomes one Markdown digest in the corpus format (front matter + one recommendation block per
approval, block id = the approval id). The knowledge loader parses the same text, so a finding's reference
resolves to the block; ingest indexes it, so retrieval finds it. One rendering, no second copy to drift.
Works on plain YAML mappings: ingest never imports the assistant.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ingest.markdown import slugify
from ingest.safety_docs import one_line, yaml_scalar

ONCOLOGY_DIR = "oncology"
APPROVAL_PACK_PREFIX = "fda-oncology-"


def approval_files(corpus_dir: Path | str) -> list[Path]:
    folder = Path(corpus_dir) / ONCOLOGY_DIR
    return sorted(folder.glob("*.y*ml")) if folder.is_dir() else []


def doc_id_for(path: Path | str) -> str:
    return APPROVAL_PACK_PREFIX + slugify(Path(path).stem)


def _drug_names(rec: Mapping[str, Any], names: Mapping[str, str]) -> str:
    return " + ".join(names.get(str(d), str(d).replace("_", " ")) for d in rec.get("regimen") or [])


def _markers(rec: Mapping[str, Any]) -> str:
    bm = rec.get("biomarkers") or {}
    if not isinstance(bm, Mapping) or not bm:
        return "no biomarker requirement"
    parts = []
    for k, v in bm.items():
        vals = v if isinstance(v, list) else [v]
        parts.append(f"{k} {' or '.join(str(x).replace('_', ' ') for x in vals)}")
    origin = rec.get("origin") or {}
    if isinstance(origin, Mapping):
        parts += [f"{k} {v}" for k, v in origin.items()]
    return "; ".join(parts)


def render_approvals(path: Path | str, records: list[Mapping[str, Any]], names: Mapping[str, str] | None = None) -> str:
    """Markdown (corpus digest format) for the approval records of one file."""
    names = names or {}
    stem = Path(path).stem
    group = stem.replace("_", " ")
    unverified_all = bool(records) and all(bool(r.get("unverified")) for r in records)
    lines = [
        "---",
        f"id: {doc_id_for(path)}",
        "kind: review",
        f"title: {yaml_scalar(f'FDA biomarker-directed approvals — {group}')}",
        "issuing_bodies: [FDA]",
        "sources:",
        "  - title: 'US prescribing information (indications) and FDA approval notices'",
        "    body: FDA",
        "    edition: 'as posted at review'",
        "    url: https://www.fda.gov/drugs/resources-information-approved-drugs/oncology-cancer-hematologic-malignancies-approval-notifications",
        "specialty: oncology",
        f"topics: [oncology, biomarker, targeted therapy, {group}]",
        "strength_scheme: 'FDA-approved indication (label section 1); guideline grades named where verified.'",
        f"last_reviewed: {max((str(r.get('last_reviewed') or '') for r in records), default='')}",
        "verified_from: 'per block: label section and approval date'",
        f"unverified: {'true' if unverified_all else 'false'}",
        "---",
        "",
        f"# FDA-approved biomarker-directed therapy — {group}",
        "",
    ]
    by_tumour: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_tumour.setdefault(str(rec.get("tumour") or "other"), []).append(rec)
    for tumour, recs in by_tumour.items():
        lines += [f"## {tumour.replace('_', ' ')}", ""]
        for rec in recs:
            drugs = _drug_names(rec, names)
            setting = ", ".join(str(s).replace("_", " ") for s in rec.get("setting") or []) or "as labelled"
            line = {"first": "first line", "later": "after prior therapy"}.get(str(rec.get("line") or "any"), "")
            approved = one_line(rec.get("approved"))
            cdx = one_line(rec.get("companion_diagnostic"))
            partners = one_line(rec.get("partners_note"))
            body = [
                f"{drugs} — {tumour.replace('_', ' ')} ({_markers(rec)}), {setting}{', ' + line if line else ''}.",
                one_line(rec.get("summary")),
            ]
            if partners:
                body.append(f"Given with: {partners}.")
            if cdx:
                body.append(f"Test: {cdx}.")
            if approved:
                body.append(f"FDA approval of this indication: {approved}.")
            lines += [
                "::: recommendation",
                f"id: {rec.get('id', '')}",
                f"strength: {yaml_scalar(one_line(rec.get('strength')) or 'FDA-approved indication')}",
                "evidence: n/a",
                f"population: {yaml_scalar(f'Patients with {tumour.replace(chr(95), chr(32))}: {_markers(rec)}')}",
                f"source: {yaml_scalar(one_line(rec.get('label')))}",
                *([f"url: {yaml_scalar(rec['url'])}"] if rec.get("url") else []),
                *(["unverified: true"] if rec.get("unverified") else []),
                "---",
                " ".join(b for b in body if b),
                ":::",
                "",
            ]
    return "\n".join(lines)


def load_file(path: Path) -> dict[str, Any]:
    """Raw mapping of one approvals file (yaml.safe_load; the knowledge loader validates it), parsed once per file
    version (ingest renders it, the evaluation reads its `drugs:`): a fresh copy each call."""
    st = Path(path).stat()
    return copy.deepcopy(_parsed(str(path), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=32)
def _parsed(path: str, _mtime_ns: int, _size: int) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {}


def pack_drug_names(corpus_dir: Path | str) -> dict[str, str]:
    """First name of every drug an approvals file introduces (`drugs:`), for block titles."""
    out: dict[str, str] = {}
    for path in approval_files(corpus_dir):
        try:
            drugs = load_file(path).get("drugs") or []
        except (OSError, yaml.YAMLError):
            continue
        for d in drugs if isinstance(drugs, list) else []:
            if isinstance(d, dict) and d.get("id") and d.get("names"):
                out.setdefault(str(d["id"]), str(d["names"][0]))
    return out


def rendered_approval_digests(corpus_dir: Path | str, names: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(virtual path, Markdown) for every approvals file that has records."""
    out: list[tuple[str, str]] = []
    for path in approval_files(corpus_dir):
        try:
            data = load_file(path)
        except (OSError, yaml.YAMLError):
            continue  # the knowledge validator reports the broken file with its line
        recs = [r for r in (data.get("approvals") or []) if isinstance(r, dict) and r.get("id")]
        if recs:
            out.append((f"{path}#approvals", render_approvals(path, recs, names)))
    return out
