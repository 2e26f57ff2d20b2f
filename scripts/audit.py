#!/usr/bin/env python3
"""The dependency audit: pip-audit over every installed distribution but the project itself.

Exit codes: 0 every package was checked and none has a known vulnerability; 1 a known
vulnerability (the IDs and fixed versions are printed); 3 the audit could not be done — the
advisory service was unreachable or does not know some installed versions — and the packages it
could not check are named. An audit that checked nothing never reports success.

Usage: scripts/audit.py [--ignore-vuln ID ...]   (run with the project's virtualenv python)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

NOT_DONE = 3


def main(argv: list[str]) -> int:
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                                check=True, capture_output=True, text=True).stdout
        requirements.write_text(frozen)
        done = subprocess.run(  # noqa: S603 (this venv's pip-audit; arguments from the Makefile)
            [str(bin_dir / "pip-audit"), "--format", "json", "--no-deps", "--disable-pip",
             "--progress-spinner", "off", *argv, "-r", str(requirements)],
            capture_output=True, text=True)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"audit: NOT DONE: pip-audit gave no report (exit {done.returncode}):\n{done.stderr.strip()}",
              file=sys.stderr)
        return NOT_DONE
    code, lines = judge(report)
    for line in lines:
        print(f"audit: {line}", file=sys.stderr)
    return code


def judge(report: dict[str, Any]) -> tuple[int, list[str]]:
    """The exit code and what to say, from pip-audit's JSON report."""
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if "skip_reason" in d]
    lines = []
    for d in vulnerable:
        for v in d["vulns"]:
            fixed = ", ".join(v.get("fix_versions") or []) or "no fixed release"
            lines.append(f"{d['name']} {d['version']}: {v['id']} (fixed in {fixed})")
    if vulnerable:
        return 1, [*lines, f"FAILED: {len(vulnerable)} installed package(s) with known vulnerabilities"]
    if skipped or not deps:
        names = ", ".join(d["name"] for d in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        reason = skipped[0]["skip_reason"] if skipped else "no package was listed"
        return NOT_DONE, [f"NOT DONE: {len(skipped)} of {len(deps)} packages could not be checked ({reason}): "
                          f"{names}{more}"]
    return 0, [f"{len(deps)} packages checked, no known vulnerabilities"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
