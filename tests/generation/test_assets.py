"""Assembling the GGUF from its part packages: order, checksum, atomic write, stamp, clear errors."""

from __future__ import annotations

import hashlib

import pytest

from assistant.errors import LLMError
from assistant.llm import assets
from assistant.settings import load_settings


def _parts(tmp_path, chunks: list[bytes]):
    paths = []
    for i, data in enumerate(chunks, 1):
        p = tmp_path / "pkgs" / f"part{i:02d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
    return paths


@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path / "data")


def test_parts_are_joined_in_order_and_verified(tmp_path, settings):
    chunks = [b"alpha-", b"beta-", b"gamma"]
    sha = hashlib.sha256(b"".join(chunks)).hexdigest()
    path = assets.ensure_model(settings, parts=_parts(tmp_path, chunks), expected_sha256=sha)
    assert path == settings.models_dir / assets.MODEL_FILENAME
    assert path.read_bytes() == b"alpha-beta-gamma"
    assert list(path.parent.glob("*.part")) == [], "no temporary file left behind"
    assert (path.parent / (path.name + ".stamp.json")).is_file()


def test_second_call_trusts_the_stamp_without_rehashing(tmp_path, settings, monkeypatch):
    chunks = [b"x" * 1000, b"y"]
    sha = hashlib.sha256(b"".join(chunks)).hexdigest()
    assets.ensure_model(settings, parts=_parts(tmp_path, chunks), expected_sha256=sha)
    monkeypatch.setattr(assets, "_sha256", lambda p: pytest.fail("re-hashed despite a valid stamp"))
    monkeypatch.setattr(assets, "find_parts", lambda: pytest.fail("looked for parts despite a valid stamp"))
    assert assets.ensure_model(settings, expected_sha256=sha).is_file()


def test_wrong_hash_raises_and_leaves_nothing(tmp_path, settings):
    with pytest.raises(LLMError, match="sha256"):
        assets.ensure_model(settings, parts=_parts(tmp_path, [b"a", b"b"]), expected_sha256="0" * 64)
    assert not (settings.models_dir / assets.MODEL_FILENAME).exists()
    assert list(settings.models_dir.glob("*")) == []


def test_modified_file_is_reassembled(tmp_path, settings):
    chunks = [b"good", b"data"]
    sha = hashlib.sha256(b"gooddata").hexdigest()
    parts = _parts(tmp_path, chunks)
    path = assets.ensure_model(settings, parts=parts, expected_sha256=sha)
    path.write_bytes(b"corrupted")
    assert assets.ensure_model(settings, parts=parts, expected_sha256=sha).read_bytes() == b"gooddata"


def test_missing_part_packages_are_named(monkeypatch):
    monkeypatch.setattr(assets, "PART_PACKAGE", "guiderail-no-such-package-{n}")
    with pytest.raises(LLMError, match=r"guiderail-no-such-package-1 .*requirements-model\.txt"):
        assets.find_parts(count=2)


def test_installed_part_packages_are_found_in_order():
    try:
        parts = assets.find_parts()
    except LLMError:
        pytest.skip("model part packages not installed in this environment")
    assert [p.name for p in parts] == [f"part{n:02d}.bin" for n in range(1, 23)]


def test_cli_reports_errors_without_traceback(monkeypatch, capsys):
    def boom(settings):
        raise LLMError("parts missing")

    monkeypatch.setattr(assets, "ensure_model", boom)
    assert assets.main(["--ensure"]) == 1
    assert "error: parts missing" in capsys.readouterr().err
    assert assets.main([]) == 2
