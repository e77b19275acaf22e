"""Reading corpus YAML with locations, so every problem can name its file and line.

A SafeLoader (libyaml when present) that remembers the 1-based line of every mapping, list and key, plus the
helpers that turn a pydantic error location or a condition token back into that line. Used by `lexicon` and
`loaders` for every YAML file of the corpus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from assistant.errors import CorpusValidationError
from assistant.knowledge.records import Problem


class _LineDict(dict):
    line: int = 0
    key_lines: dict[str, int]


class _LineList(list):
    line: int = 0


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present: 5x faster
    """SafeLoader that remembers the 1-based line of every mapping, list and key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
# Dates stay strings so a bad one ("2026-13-01") becomes a located pydantic error, not a crash.
_LineLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", yaml.constructor.SafeConstructor.construct_yaml_str
)


def _yaml_load(text: str, path: str) -> Any:
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 — a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CorpusValidationError(
            path, mark.line + 1 if mark else None, f"invalid YAML: {problem}"
        ) from exc


def _line_at(data: Any, loc: tuple[Any, ...], default: int) -> int:
    """Best line for a pydantic error location: the deepest node along `loc` that knows its line."""
    line = getattr(data, "line", default) or default
    node = data
    for key in loc:
        if isinstance(node, dict):
            k = {"all_": "all", "any_": "any", "not_": "not"}.get(key, key) if isinstance(key, str) else key
            if k in node:
                line = getattr(node, "key_lines", {}).get(str(k), line)
                node = node[k]
                line = getattr(node, "line", line) or line
                continue
            break
        if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
            line = getattr(node, "line", line) or line
            continue
        if isinstance(key, str) and not isinstance(node, dict):
            continue  # pydantic adds model/union tags to locations; skip them
        break
    return line


def _atom_line(node: Any, atom: str, token: str) -> int | None:
    """Line of the `atom: token` entry inside a raw condition tree (so a typo points at its own line)."""
    if isinstance(node, dict):
        value = node.get(atom)
        if value == token or (isinstance(value, list) and token in value):
            return getattr(node, "key_lines", {}).get(atom) or getattr(node, "line", None)
        children = list(node.values())
    elif isinstance(node, list):
        children = list(node)
    else:
        return None
    for child in children:
        hit = _atom_line(child, atom, token)
        if hit:
            return hit
    return None


def _pydantic_problems(exc: ValidationError, data: Any, path: str, what: str) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        shown = ".".join(str(p) for p in loc if not (isinstance(p, str) and p[:1].isupper()))
        shown = shown.replace("all_", "all").replace("any_", "any").replace("not_", "not")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the format; see corpus/README.md)"
        out.append(Problem(path, _line_at(data, loc, getattr(data, "line", 0)), f"{what}: {shown}: {msg}"))
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)

