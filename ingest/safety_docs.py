"""Drug safety profiles (corpus/safety/*.yaml) rendered as label-safety digests, so their checks are citable.

The safety pass excludes or warns about a drug with a reason taken from its profile; the answer must cite the
label behind it. Each profile becomes one Markdown digest in the corpus format (front matter + one
recommendation block per check, id ``<profile id>.<check id>``). The same text is parsed by the knowledge
loader (so rules and findings can reference the blocks) and indexed by ingest (so they are retrievable):
one rendering, no second copy to drift. Works on plain YAML mappings: ingest never imports the assistant.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ingest.markdown import slugify

SAFETY_DIR = "safety"
SAFETY_PACK_PREFIX = "safety-"


def safety_files(corpus_dir: Path | str) -> list[Path]:
    folder = Path(corpus_dir) / SAFETY_DIR
    return sorted(folder.glob("*.y*ml")) if folder.is_dir() else []


def doc_id_for(profile_id: str) -> str:
    return SAFETY_PACK_PREFIX + slugify(profile_id)


def yaml_scalar(value: Any) -> str:
    """A YAML-safe one-line scalar (front matter and block fields of the rendered digests)."""
    return yaml.safe_dump(str(value), default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def one_line(text: Any) -> str:
    """Text with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text or "").split())


def render_profile(profile: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    """Markdown (corpus digest format) for one safety profile mapping."""
    pid = str(profile.get("id", "")).strip()
    applies = [str(a) for a in (profile.get("applies_to") or [])]
    shown = ", ".join((names or {}).get(a, a.replace("_", " ")) for a in applies) or pid
    label = one_line(profile.get("label")) or f"US prescribing information ({shown})"
    unverified = bool(profile.get("unverified", False))
    lines = [
        "---",
        f"id: {doc_id_for(pid)}",
        "kind: label",
        f"title: {yaml_scalar(f'{shown} — label safety checks')}",
        "issuing_bodies: [FDA]",
        f"drug: {applies[0] if applies else ''}",
        "sources:",
        f"  - title: {yaml_scalar(label)}",
        "    body: FDA",
        f"    edition: {yaml_scalar(profile.get('revised') or 'as posted on DailyMed')}",
        f"    url: {yaml_scalar(profile.get('url') or '')}",
        "specialty: drug safety",
        f"topics: [drug safety, contraindications, {', '.join(a.replace('_', ' ') for a in applies)}]",
        "strength_scheme: 'FDA-approved labeling: contraindications, boxed warnings, warnings and use in specific populations.'",
        f"last_reviewed: {profile.get('last_reviewed', '')}",
        f"verified_from: {yaml_scalar(profile.get('verified_from') or label)}",
        f"unverified: {'true' if unverified else 'false'}",
        "---",
        "",
        f"# {shown} — who should not receive it, and what to watch",
        "",
    ]

    def block(check: Mapping[str, Any], strength: str) -> list[str]:
        section = one_line(check.get("section"))
        return [
            "::: recommendation",
            f"id: {pid}.{check.get('id', '')}",
            f"strength: {yaml_scalar(strength)}",
            "evidence: n/a",
            f"population: {yaml_scalar('Patients who could receive ' + shown)}",
            f"source: {yaml_scalar(label + (', ' + section if section else ''))}",
            *([f"url: {yaml_scalar(profile['url'])}"] if profile.get("url") else []),
            *(["unverified: true"] if unverified else []),
            "---",
            one_line(check.get("reason")),
            ":::",
            "",
        ]

    contra = profile.get("contraindicated") or []
    if contra:
        lines += ["## Contraindications and boxed warnings", ""]
        for check in contra:
            lines += block(check, "FDA label — do not use")
    cautions = profile.get("caution") or []
    if cautions:
        lines += ["## Cautions", ""]
        for check in cautions:
            lines += block(check, f"FDA label — caution ({check.get('severity', 'high')})")
    monitor = [m for m in (profile.get("monitor") or []) if str(m).strip()]
    if monitor:
        lines += ["## Monitoring", ""]
        lines += [f"- {one_line(m)}" for m in monitor]
        lines.append("")
    return "\n".join(lines)


def load_profiles(path: Path) -> list[Mapping[str, Any]]:
    """Raw profile mappings of one safety file (yaml.safe_load; the knowledge loader validates them)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = data.get("profiles") if isinstance(data, dict) else None
    return [p for p in items if isinstance(p, dict)] if isinstance(items, list) else []


def rendered_safety_digests(corpus_dir: Path | str, names: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(virtual path, Markdown) for every profile of every safety file, in file order."""
    out: list[tuple[str, str]] = []
    for path in safety_files(corpus_dir):
        try:
            profiles = load_profiles(path)
        except (OSError, yaml.YAMLError):
            continue  # the knowledge validator reports the broken file with its line
        for prof in profiles:
            if prof.get("id"):
                out.append((f"{path}#{prof['id']}", render_profile(prof, names)))
    return out
