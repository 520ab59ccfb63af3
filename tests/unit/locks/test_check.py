"""locks/ (the locks, not a module): locks/check.py finds the repository's locks in step with pyproject.toml,
requirements-dev.txt and the recipes, and reports each way they can drift: its command line (what
`make check` runs), in this process, on a copy of the files it reads."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
CHECK = REPO_ROOT / "locks" / "check.py"
# What the checker reads: the inputs, the locks and the recipes that install from them.
FILES = (
    "pyproject.toml", "requirements-dev.txt", "Makefile", "chalice_web/requirements.txt", "worker_ami/install.sh",
    "worker_ami/worker.pkr.hcl", "functions/face_recognition/Dockerfile", "functions/callbacks/Dockerfile",
    "locks/build-system.in", "locks/web.in", "locks/dev.txt", "locks/worker.txt", "locks/face-function.txt",
    "locks/callback-function.txt",
)


_spec = importlib.util.spec_from_file_location("locks_check", CHECK)
assert _spec is not None and _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = check  # its dataclasses look their module up there
_spec.loader.exec_module(check)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_check(root: Path) -> Result:
    """`python locks/check.py --root ROOT`: its exit status and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = check.main(["--root", str(root)])
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_the_repositorys_locks_agree_with_what_they_are_compiled_from_and_every_recipe_installs_from_one():
    result = run_check(REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("locks: 5 locks agree")


def test_a_copy_of_the_files_passes_so_the_drift_below_is_what_each_test_changes(tree):
    assert run_check(tree).returncode == 0


def test_a_requirement_added_to_an_extra_is_reported_in_every_lock_of_that_extra_only(tree):
    edit(tree / "pyproject.toml", '    "setproctitle>=1.3",  # `ps` names the worker',
         '    "left-unlocked>=1.0",\n    "setproctitle>=1.3",  # `ps` names the worker')
    result = run_check(tree)
    assert result.returncode == 1
    lacking = sorted(line.split(":")[0] for line in result.stderr.splitlines() if "lacks left-unlocked>=1.0" in line)
    assert lacking == ["locks/dev.txt", "locks/worker.txt"]
    assert "pyproject.toml extra worker" in result.stderr and "make lock" in result.stderr


def test_a_specifier_the_locked_version_does_not_satisfy_is_reported(tree):
    edit(tree / "pyproject.toml", '"numpy>=1.26",\n    "onnxruntime', '"numpy>=99",\n    "onnxruntime')
    result = run_check(tree)
    assert result.returncode == 1
    [locked] = re.findall(r"numpy==([\d.]+)", (tree / "locks/worker.txt").read_text())
    assert f"locks/worker.txt: has numpy=={locked}, but pyproject.toml extra worker wants numpy>=99" in result.stderr
    # The face function's own numpy>=1.26 (its faces extra) still holds.
    assert "locks/face-function.txt" not in result.stderr


def test_a_test_tool_the_dev_lock_lacks_and_a_core_dependency_the_web_tier_lacks_are_reported(tree):
    with (tree / "requirements-dev.txt").open("a") as f:
        f.write("pytest-xdist==3.8.0  # a new test tool\n")
    edit(tree / "pyproject.toml", '    "multipart>=1.2",\n', '    "multipart>=1.2",\n    "left-unlocked>=1.0",\n')
    result = run_check(tree)
    assert "locks/dev.txt: lacks pytest-xdist==3.8.0 (requirements-dev.txt)" in result.stderr
    # Every deployable carries the core dependencies, the web tier's package too.
    lacking = sorted(line.split(":")[0] for line in result.stderr.splitlines() if "lacks left-unlocked>=1.0" in line)
    assert lacking == ["chalice_web/requirements.txt", "locks/callback-function.txt", "locks/dev.txt",
                       "locks/face-function.txt", "locks/worker.txt"]


def test_a_lock_line_without_a_hash_or_an_exact_pin_is_reported(tree):
    lock = tree / "locks/callback-function.txt"
    text = re.sub(r"(six==[\d.]+) \\\n(    --hash=sha256:[0-9a-f]{64}( \\)?\n)+", r"\1\n", lock.read_text())
    lock.write_text(text.replace("jmespath==", "jmespath>="))
    result = run_check(tree)
    assert result.returncode == 1
    assert re.search(r"callback-function.txt: six==[\d.]+ has no --hash=sha256:", result.stderr)
    assert "callback-function.txt: jmespath>=" in result.stderr and "is not pinned with ==" in result.stderr


def test_a_recipe_that_resolves_its_own_dependencies_is_reported(tree):
    edit(tree / "worker_ami/install.sh",
         "/opt/iraas/venv/bin/pip install -q --require-hashes -r /opt/iraas/src/locks/worker.txt\n"
         "/opt/iraas/venv/bin/pip install -q --no-deps --no-build-isolation /opt/iraas/src",
         '/opt/iraas/venv/bin/pip install -q "/opt/iraas/src[worker]"')
    edit(tree / "Makefile", "-q --require-hashes -r locks/dev.txt", "-q -r locks/dev.txt")
    edit(tree / "functions/callbacks/Dockerfile", "COPY locks/callback-function.txt /tmp/locks/", "COPY locks/ /tmp/locks/")
    result = run_check(tree)
    assert result.returncode == 1
    problems = result.stderr.splitlines()
    assert "worker_ami/install.sh: does not install locks/worker.txt with --require-hashes" in result.stderr
    assert any(p.startswith("worker_ami/install.sh: a pip install resolves dependencies outside the lock") for p in problems)
    assert "Makefile: does not install locks/dev.txt with --require-hashes" in result.stderr
    assert "functions/callbacks/Dockerfile: does not COPY locks/callback-function.txt /tmp/locks/" in result.stderr


def test_a_moving_base_image_or_source_ami_and_a_lock_for_another_python_are_reported(tree):
    dockerfile = tree / "functions/face_recognition/Dockerfile"
    dockerfile.write_text(re.sub(r"python:3\.12@sha256:[0-9a-f]{64}", "python:3.12", dockerfile.read_text()))
    callbacks = tree / "functions/callbacks/Dockerfile"
    callbacks.write_text(re.sub(r"python:3\.12@", "python:3.13@", callbacks.read_text()))
    recipe = tree / "worker_ami/worker.pkr.hcl"
    recipe.write_text(re.sub(r"server-\d{8}", "server-*", recipe.read_text()))
    result = run_check(tree)
    assert result.returncode == 1
    assert "functions/face_recognition/Dockerfile: the base image is not pinned by digest" in result.stderr
    assert "locks/callback-function.txt: resolved for Python 3.12, but the callback function runs 3.13" in result.stderr
    assert "worker_ami/worker.pkr.hcl: the source AMI is not one exact, dated image name" in result.stderr
