"""`make lint` audits the installed dependencies with pip-audit, strictly: a package the
vulnerability service could not check fails the audit instead of being skipped."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_make_lint_runs_a_strict_pip_audit_of_the_installed_environment() -> None:
    done = subprocess.run(["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    audit = next(line for line in done.stdout.splitlines() if "pip-audit" in line and "--strict" in line)
    assert "-r .venv/audit-requirements.txt" in done.stdout and "pip freeze --all --exclude-editable" in done.stdout
    assert "--skip-editable" not in audit  # with --strict, a skipped editable project would fail the audit
    assert "pip-audit>=" in (ROOT / "pyproject.toml").read_text()
