"""Known vulnerabilities in what the locks install, with pip-audit, and nothing said that was not checked.

``python locks/audit.py --pip-audit PATH [LOCK ...] [-- PIP_AUDIT_ARGS]`` (``make audit``; every lock of
locks/check.py when none is named). pip-audit asks a vulnerability service (PyPI's JSON API by default,
or OSV with ``-- -s osv``) about each locked ``name==version``. Where that service cannot be reached,
pip-audit fails with a traceback; where it answers "not found" for a release (a mirror, a proxy that
blocks the JSON API), pip-audit *skips* the package and still prints "No known vulnerabilities found"
with exit 0. Both are reported here as what they are, one line and exit 2: no result was obtained.

Exit 0: every locked package was audited and none has a known vulnerability. Exit 1: some have (each
listed with its advisories and the versions that fix them). Exit 2: no complete result.

A release with a local version label (``torch==2.13.0+cpu``) is audited as its public release
(``torch 2.13.0``): the advisories name public versions, and the vulnerability services know no local
builds. Hashes play no part in an audit, so each lock is handed to pip-audit as plain pins.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from check import DEPLOYABLES, read_lock

REPO_ROOT = Path(__file__).resolve().parents[1]
# pip-audit's socket timeout, per request, in seconds.
TIMEOUT_S = 15


class NoResult(Exception):
    """pip-audit gave no complete answer for a lock."""


def why(run: subprocess.CompletedProcess[str]) -> str:
    """pip-audit's last word, short: the exception and its operating system error where it names one."""
    said = (run.stderr.strip().splitlines() or run.stdout.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
    errno = re.search(r"\[Errno -?\d+\] [^'\")]*", said)
    return f"{said.split(':', 1)[0]}: {errno.group(0).strip()}" if errno else said[:300]


def audit(pip_audit: str, lock: Path, extra: list[str]) -> list[str]:
    """The vulnerabilities pip-audit found in one lock, one line each; NoResult if it could not say."""
    problems: list[str] = []
    pins, _ = read_lock(lock, problems)
    if problems:
        raise NoResult(f"{lock.name}: not a lock locks/check.py accepts ({problems[0]})")
    with tempfile.TemporaryDirectory(prefix="iraas-audit-") as scratch:
        requirements = Path(scratch, "pins.txt")
        requirements.write_text("".join(f"{pin.name}=={pin.version.public}\n" for pin in pins.values()))
        report = Path(scratch, "report.json")
        command = [pip_audit, "-r", str(requirements), "--no-deps", "--disable-pip", "--progress-spinner", "off",
                   "--timeout", str(TIMEOUT_S), "--format", "json", "--output", str(report), *extra]
        run = subprocess.run(command, capture_output=True, text=True)
        try:
            found = json.loads(report.read_text())["dependencies"]
        except (OSError, ValueError, KeyError):
            raise NoResult(f"{lock.name}: pip-audit could not reach its vulnerability data ({why(run)})") from None
    skipped = [d for d in found if d.get("skip_reason")]
    if skipped or len(found) < len(pins):
        example = f" (e.g. {skipped[0]['name']}: {skipped[0]['skip_reason']})" if skipped else ""
        raise NoResult(f"{lock.name}: pip-audit could not audit {len(skipped) or len(pins) - len(found)} of {len(pins)} "
                       f"packages{example}: its vulnerability service did not answer for them")
    return [
        f"{lock.name}: {d['name']}=={d['version']} {v['id']} (fixed in {', '.join(v['fix_versions']) or 'no release yet'})"
        for d in found for v in d.get("vulns", [])
    ]


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in args_list:
        at = args_list.index("--")
        args_list, extra = args_list[:at], args_list[at + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pip-audit", required=True, help="the pip-audit executable (make audit: .venv-audit/bin/pip-audit)")
    parser.add_argument("locks", nargs="*", type=Path, help="lock files (default: every lock of locks/check.py)")
    args = parser.parse_args(args_list)
    locks = args.locks or [REPO_ROOT / deployable.lock for deployable in DEPLOYABLES]
    found: list[str] = []
    for lock in locks:
        try:
            vulnerable = audit(args.pip_audit, lock, extra)
        except NoResult as error:
            print(f"audit: NO RESULT: {error}", file=sys.stderr)
            return 2
        found += vulnerable
        print(f"audit: {lock.name}: {'vulnerable' if vulnerable else 'every package audited, no known vulnerabilities'}")
    for line in found:
        print(f"audit: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
