"""Project-level contracts: the two README commands, CI entry, CLI surface, settings validation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import build_parser, main
from assistant.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "README must open with a code block holding the two set-up commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def test_readme_opens_with_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2, f"expected exactly two set-up commands, found {commands}"


def test_ci_runs_exactly_the_readme_test_command():
    test_cmd = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    executable = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith(("#", "set ", "cd "))]
    assert executable == [f"exec {test_cmd}"], f".ci/run must only exec {test_cmd!r}, has {executable}"


def test_top_level_layout_matches_the_product_shape():
    for name in ("ingest", "assistant", "corpus", "ui.py", "tests", "pyproject.toml", "README.md", "Makefile"):
        assert (ROOT / name).exists(), f"missing top-level {name}"


def test_cli_has_every_contract_subcommand():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"ingest", "ask", "eval", "serve", "bench"}


@pytest.mark.parametrize(
    "argv",
    # (--store with --chroma-url is allowed since issue 14: the folder holds the remote collection's local metadata)
    [["ask", "x", "--llm", "bogus"], []],
)
def test_cli_rejects_bad_arguments_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_cli_rejects_bad_chroma_url_without_traceback(capsys):
    code = main(["ask", "q", "--chroma-url", "ftp://nowhere", "--llm", "none"])
    err = capsys.readouterr().err
    assert code == 2
    assert "chroma_url" in err and "Traceback" not in err


def test_settings_forbid_unknown_fields_and_name_bad_values():
    with pytest.raises(ValueError, match="nonsense"):
        Settings(nonsense=1)
    with pytest.raises(ValueError, match="top_k"):
        Settings(top_k=0)
    with pytest.raises(ValueError, match="preset"):
        load_settings(preset="turbo")


def test_settings_read_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GUIDERAIL_STORE_DIR", str(tmp_path / "ix"))
    monkeypatch.setenv("GUIDERAIL_LLM", "none")
    s = load_settings()
    assert s.index_dir == tmp_path / "ix" and s.llm == "none"
    assert load_settings(llm="openai").llm == "openai", "explicit overrides beat the environment"


def test_console_script_runs_without_network_or_model():
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ingest" in out.stdout


def test_importing_packages_builds_nothing_heavy():
    code = (
        "import sys, assistant, assistant.cli, assistant.settings, assistant.models, ingest, ingest.models;"
        "heavy = [m for m in ('torch', 'chromadb', 'llama_cpp', 'gradio', 'sentence_transformers') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"heavy modules imported at import time: {out.stdout}"
