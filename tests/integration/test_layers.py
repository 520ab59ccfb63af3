"""The package's layers (pyproject.toml's [tool.importlinter]) hold, and the rule bites: a module of
a lower floor that imports a higher one fails `lint-imports`, which `make check` runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from iraas.config import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", str(tree / "pyproject.toml")],
        cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its contracts, to break on purpose."""
    shutil.copytree(REPO_ROOT / "iraas", tmp_path / "iraas", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}\n")


def test_the_package_keeps_its_layers(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        # The domain knowing the web tier (what images/service.py once did with drain).
        ("iraas/images/service.py", "from iraas.web import drain", "iraas.images.service -> iraas.web.drain"),
        # The kernel knowing a part (what config.py once did with the models and the policy).
        ("iraas/config.py", "from iraas.scaling.policy import ScalingConfig", "iraas.config -> iraas.scaling.policy"),
        # Two parts of one floor that must not know each other.
        ("iraas/classroom/service.py", "from iraas.images import jobs", "iraas.classroom.service -> iraas.images.jobs"),
    ],
)
def test_an_import_from_a_lower_floor_to_a_higher_one_fails(tree: Path, module: str, line: str, named: str) -> None:
    add_import(tree / module, line)
    result = lint(tree)
    assert result.returncode == 1
    assert named in result.stdout.split("iraas imports one way")[-1], result.stdout  # the layers contract names it


def test_modules_of_one_part_that_import_each_other_in_a_circle_fail(tree: Path) -> None:
    # export builds the int8 file with quantize; quantize reaching back into export closes a loop.
    add_import(tree / "iraas/images/model/quantize.py", "from iraas.images.model import export")
    result = lint(tree)
    assert result.returncode == 1
    assert "No cycles are allowed in iraas.images.model" in result.stdout, result.stdout
