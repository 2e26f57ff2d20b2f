"""The dependency audit (scripts/audit.py, run by `make test`): a known vulnerability fails it, and
an audit that could not check the installed versions never reports success."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit", ROOT / "scripts" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails_the_audit_with_its_id_and_fix() -> None:
    code, lines = _audit().judge({"dependencies": [
        {"name": "aiohttp", "version": "3.8.0", "vulns": [
            {"id": "GHSA-5h86-8mv2-jq9f", "fix_versions": ["3.9.4"], "aliases": [], "description": ""}]},
        {"name": "yarl", "version": "1.9.0", "vulns": []},
        {"name": "idna", "skip_reason": "Dependency not found on PyPI and could not be audited: idna (3.0)"},
    ], "fixes": []})
    assert code == 1
    assert "aiohttp 3.8.0: GHSA-5h86-8mv2-jq9f (fixed in 3.9.4)" in lines


def test_packages_the_service_could_not_check_make_the_audit_not_done_never_passed() -> None:
    audit = _audit()
    code, lines = audit.judge({"dependencies": [
        {"name": "yarl", "version": "1.9.0", "vulns": []},
        {"name": "idna", "skip_reason": "Dependency not found on PyPI and could not be audited: idna (3.0)"},
    ], "fixes": []})
    assert code == audit.NOT_DONE and "1 of 2 packages could not be checked" in lines[0] and "idna" in lines[0]
    assert audit.judge({"dependencies": [], "fixes": []})[0] == audit.NOT_DONE  # nothing checked
    assert audit.judge({"dependencies": [{"name": "yarl", "version": "1.9.0", "vulns": []}]}) == (
        0, ["1 packages checked, no known vulnerabilities"])


def test_make_test_runs_the_audit_and_only_a_not_done_audit_may_go_on(tmp_path: Path) -> None:
    done = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert "scripts/audit.py" in done.stdout
    assert "pip-audit>=" in (ROOT / "pyproject.toml").read_text()
    # The recipe itself, with a stand-in for the audit script that exits with the code asked for.
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()
    (venv / ".installed-test").touch()
    stand_in = tmp_path / "python"
    stand_in.write_text('#!/bin/sh\nexit "$AUDIT_CODE"\n')
    stand_in.chmod(0o755)

    def make_audit(code: int, strict: str = "") -> int:
        return subprocess.run(["make", "-s", "audit", f"VENV={venv}", f"PY={stand_in}", f"AUDIT_STRICT={strict}"],
                              cwd=ROOT, env={**os.environ, "AUDIT_CODE": str(code)}, capture_output=True,
                              timeout=60).returncode

    assert make_audit(0) == 0
    assert make_audit(1) != 0  # a known vulnerability fails make test
    assert make_audit(3) == 0  # not done: a warning, make test goes on
    assert make_audit(3, strict="1") != 0  # unless AUDIT_STRICT is set
