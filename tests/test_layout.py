"""The package layout stays one-way: ``assistant`` may import ``ingest``, never the reverse.

Checked with ``ast`` over every module of ``ingest/`` (imports under ``TYPE_CHECKING`` and inside functions
count too), so a cycle cannot come back through a lazy import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _imports_assistant(module: str) -> bool:
    return module == "assistant" or module.startswith("assistant.")


def test_ingest_never_imports_the_assistant():
    files = sorted((ROOT / "ingest").rglob("*.py"))
    assert files, "no ingest modules found"
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in files
        for line, module in _imported_modules(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if _imports_assistant(module)
    ]
    assert not offenders, "ingest must not depend on the assistant:\n" + "\n".join(offenders)


def test_the_check_sees_every_import_form():
    tree = ast.parse(
        "import assistant\nimport assistant.errors as e\nfrom assistant.settings import Settings\n"
        "from assistant import injection\nif TYPE_CHECKING:\n    from assistant.x import Y\n"
        "def f():\n    from assistant.retrieval import HybridRetriever\n"
        "from ingest.errors import IngestError\nimport assistants_unrelated\nfrom . import models\n"
    )
    hits = sorted(m for _, m in _imported_modules(tree) if _imports_assistant(m))
    assert hits == [
        "assistant",
        "assistant",
        "assistant.errors",
        "assistant.retrieval",
        "assistant.settings",
        "assistant.x",
    ]


def test_assistant_errors_are_the_ingest_classes():
    from assistant import errors as a
    from ingest import errors as i

    for name in ("GuideRailError", "ConfigError", "IngestError", "CorpusValidationError", "StoreError"):
        assert getattr(a, name) is getattr(i, name)
    assert issubclass(a.QuestionError, i.GuideRailError) and issubclass(a.LLMError, i.GuideRailError)


def test_every_module_imports_first_without_a_cycle():
    """Each module of ``assistant/`` and ``ingest/`` imported first, in a clean module table: a package that imports
    a module which imports it back at module level fails here ("partially initialized module"), whatever order the
    rest of the suite happens to import things in."""
    import importlib
    import sys

    names = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for pkg in ("assistant", "ingest")
        for p in (ROOT / pkg).rglob("*.py")
        if "__main__" not in p.name
    )
    assert len(names) > 50
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("assistant", "ingest")}
    failures = []
    try:
        for name in names:
            for k in [k for k in sys.modules if k.split(".")[0] in ("assistant", "ingest")]:
                del sys.modules[k]
            try:
                importlib.import_module(name)
            except ImportError as exc:
                failures.append(f"{name}: {exc}")
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] in ("assistant", "ingest")]:
            del sys.modules[k]
        sys.modules.update(saved)
    assert not failures, failures
