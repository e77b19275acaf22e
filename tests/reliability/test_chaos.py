"""The fault-injection run (`scripts/chaos.py`): every fault prints PASS; exit 0. About a minute and a half."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_chaos_script_reports_no_failure(helpers):
    done = subprocess.run(
        [helpers.PY, str(helpers.ROOT / "scripts" / "chaos.py")],
        capture_output=True, text=True, timeout=900, env=helpers.child_env(), cwd=helpers.ROOT,
    )
    lines = done.stdout.splitlines()
    failures = [ln for ln in lines if ln.startswith("FAIL")]
    assert done.returncode == 0 and not failures, "\n".join(failures) or done.stderr[-3000:]
    assert sum(ln.startswith("PASS") for ln in lines) >= 30, done.stdout
