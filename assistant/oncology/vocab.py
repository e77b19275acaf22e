"""The oncology vocabulary (corpus/lexicon/oncology.yaml): tumour types, histologies, markers, settings and the
class words for earlier treatment. Data, not code: a new tumour or marker is a line in the YAML file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ingest.text import NameMatcher

VOCAB_FILE = Path("lexicon") / "oncology.yaml"


def _exact_case(name: str) -> bool:
    """Short all-caps names (MET, RET, HR, ER, ALL) collide with English words: they match only as written."""
    return len(name) <= 4 and name.upper() == name and any(c.isalpha() for c in name)


@dataclass(frozen=True)
class OncologyVocab:
    tumours: Mapping[str, tuple[str, ...]]  # id → names
    tumour_parent: Mapping[str, str | None]
    histologies: Mapping[str, tuple[str, ...]]
    markers: Mapping[str, tuple[str, ...]]
    families: Mapping[str, tuple[str, ...]]
    settings: Mapping[str, tuple[str, ...]]
    setting_parent: Mapping[str, str | None]
    therapy_words: Mapping[str, tuple[str, ...]]  # phrase → classes
    implies: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # tumour → {marker: status} by definition
    variant_genes: Mapping[str, str] = field(default_factory=dict)  # T790M → EGFR
    organs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # tumour → organ words
    _rx: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # ------------------------------------------------------------------ lookups
    def tumour_ancestors(self, tumour: str) -> list[str]:
        """The tumour and every parent up the tree (nsclc → [nsclc, solid_tumour])."""
        out: list[str] = []
        t: str | None = tumour
        while t and t not in out:
            out.append(t)
            t = self.tumour_parent.get(t)
        return out

    def setting_ancestors(self, setting: str) -> list[str]:
        out: list[str] = []
        s: str | None = setting
        while s and s not in out:
            out.append(s)
            s = self.setting_parent.get(s)
        return out

    def family_of(self, marker: str) -> str | None:
        for fam, members in self.families.items():
            if marker in members:
                return fam
        return None

    # ------------------------------------------------------------------ compiled patterns (built once)
    def _matcher(self, key: str, table: Mapping[str, Iterable[str]]) -> NameMatcher:
        hit = self._rx.get(key)
        if hit is None:
            by_name: dict[str, str] = {}
            for ident, names in table.items():
                for n in names:
                    if n:
                        by_name.setdefault(n.lower(), ident)
            exact = [n for names in table.values() for n in names if n and _exact_case(n)]
            # hyphen_joins off: fusion partners are written "KIF5B-RET", "EML4-ALK"; results "HER2-low"
            hit = NameMatcher(by_name, exact_case=exact, hyphen_joins=False)
            self._rx[key] = hit
        return hit

    def find(self, kind: str, text: str) -> list[tuple[int, int, str, str]]:
        """(start, end, id, matched words) for every `kind` name in text: tumours, histologies, markers, settings,
        therapy_words."""
        table = getattr(self, kind)
        if kind == "therapy_words":  # the phrases are the keys; the values are classes
            table = {k: (k,) for k in table}
        return [(start, end, ident, text[start:end]) for ident, start, end in self._matcher(kind, table).find(text)]


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        value = value.get("names") or []
    return tuple(str(v) for v in (value or []))


def vocab_from_mapping(data: Mapping[str, Any]) -> OncologyVocab:
    tumours = data.get("tumours") or {}
    settings = data.get("settings") or {}
    return OncologyVocab(
        tumours={k: _names(v) for k, v in tumours.items()},
        tumour_parent={k: (v.get("parent") if isinstance(v, Mapping) else None) for k, v in tumours.items()},
        histologies={k: _names(v) for k, v in (data.get("histologies") or {}).items()},
        markers={k: _names(v) for k, v in (data.get("markers") or {}).items()},
        families={k: _names(v) for k, v in (data.get("families") or {}).items()},
        settings={k: _names(v) for k, v in settings.items()},
        setting_parent={k: (v.get("parent") if isinstance(v, Mapping) else None) for k, v in settings.items()},
        therapy_words={k: _names(v) for k, v in (data.get("therapy_words") or {}).items()},
        implies={k: dict(v.get("implies") or {}) for k, v in tumours.items() if isinstance(v, Mapping)},
        variant_genes={str(k): str(v) for k, v in (data.get("variant_genes") or {}).items()},
        organs={k: tuple(str(x) for x in (v or [])) for k, v in (data.get("organs") or {}).items()},
    )


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> OncologyVocab:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return vocab_from_mapping(data)


def load_vocab(corpus_dir: Path | str) -> OncologyVocab | None:
    """The vocabulary of a corpus, or None when the corpus has no oncology lexicon."""
    path = Path(corpus_dir) / VOCAB_FILE
    if not path.is_file():
        return None
    return _load_cached(str(path.resolve()), path.stat().st_mtime)
