"""The locks agree with what they are compiled from, and every recipe installs from its lock.

One lock per deployable (docs/deploy-aws.md#locks). For each, checked offline from the files alone:

- every requirement it is compiled from (pyproject.toml's core dependencies and the deployable's extras,
  requirements-dev.txt for the dev venv, [build-system] requires where a recipe builds the project from
  its source) is in the lock, at a version its specifier allows;
- every line of the lock is pinned with ``==`` and carries at least one ``--hash=sha256:``;
- the lock is resolved for the Python the deployable runs (the Dockerfile's ``python:X.Y`` tag, the
  AMI's Ubuntu release, chalice's: the dev venv's);
- each recipe installs from its lock with ``--require-hashes``, and installs the project itself with
  ``--no-deps`` (pip resolves nothing of its own); the Lambda base image is pinned by digest and the
  AMI's source image by an exact name.

``python locks/check.py [--root DIR]``: one line per disagreement and exit 1, or one line and exit 0.
Run by ``make check`` and ``make lock``; needs only ``packaging``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# The Python of each Ubuntu release the AMI may start from (python3 of its archive).
UBUNTU_PYTHON = {"jammy": "3.10", "noble": "3.12", "resolute": "3.13"}
# The core dependencies the Lambda runtime brings, so that the web tier's package leaves them out.
LAMBDA_RUNTIME_HAS = frozenset({"boto3", "urllib3"})


@dataclass(frozen=True)
class Recipe:
    """A file that installs a deployable: where it names its lock, and what marks a pip install there."""

    path: str
    lock_ref: str  # how the recipe names the lock (a path in its own terms)
    rule: str | None = None  # in a Makefile: only this rule's recipe lines
    copies_to: str | None = None  # in a Dockerfile: where it COPYs the lock into the image


@dataclass(frozen=True)
class Deployable:
    name: str
    lock: str
    extras: tuple[str, ...] = ()
    core: bool = True
    dev_requirements: bool = False
    builds_project: bool = True  # installs the project from source: [build-system] requires are locked
    runtime_has: frozenset[str] = frozenset()
    recipes: tuple[Recipe, ...] = ()
    python_from: str = ""  # "dockerfile:PATH", "ami:PATH" or "dev"
    extra_inputs: tuple[str, ...] = field(default=())  # requirement files compiled in (locks/*.in)


DEV_EXTRAS = ("worker", "build", "local", "faces", "openstack")
DEPLOYABLES = (
    Deployable(
        name="dev", lock="locks/dev.txt", extras=DEV_EXTRAS, dev_requirements=True,
        recipes=(Recipe("Makefile", "locks/dev.txt", rule="$(STAMP)"),), python_from="dev",
    ),
    Deployable(
        name="worker", lock="locks/worker.txt", extras=("worker",),
        recipes=(Recipe("worker_ami/install.sh", "/opt/iraas/src/locks/worker.txt"),),
        python_from="ami:worker_ami/worker.pkr.hcl",
    ),
    Deployable(
        name="face function", lock="locks/face-function.txt", extras=("faces",),
        recipes=(Recipe("functions/face_recognition/Dockerfile", "/tmp/locks/face-function.txt", copies_to="/tmp/locks/"),),
        python_from="dockerfile:functions/face_recognition/Dockerfile",
    ),
    Deployable(
        name="callback function", lock="locks/callback-function.txt",
        recipes=(Recipe("functions/callbacks/Dockerfile", "/tmp/locks/callback-function.txt", copies_to="/tmp/locks/"),),
        python_from="dockerfile:functions/callbacks/Dockerfile",
    ),
    # chalice package bundles chalice_web/requirements.txt itself; pip checks every hash once any line has
    # one, and chalice builds for the Python it runs under (the dev venv's).
    Deployable(
        name="web tier", lock="chalice_web/requirements.txt", builds_project=False,
        runtime_has=LAMBDA_RUNTIME_HAS, python_from="dev", extra_inputs=("locks/web.in",),
    ),
)


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    hashes: int


def logical_lines(text: str, comment: str = "#") -> list[str]:
    """Lines with backslash continuations joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.split(f" {comment}", 1)[0] if not raw.lstrip().startswith(comment) else ""
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            lines.append(" ".join(current.split()))
        current = ""
    if current.strip():
        lines.append(" ".join(current.split()))
    return lines


def read_lock(path: Path, problems: list[str]) -> tuple[dict[str, Pin], str | None]:
    """The lock's pins by canonical name, and the Python version it says it was resolved for."""
    text = path.read_text()
    python = re.search(r"--python-version[ =](\d+\.\d+)", text)
    pins: dict[str, Pin] = {}
    for line in logical_lines(text):
        if line.startswith("-"):
            problems.append(f"{path.name}: an option line in a lock: {line[:80]}")
            continue
        spec, *options = line.split(" --")
        hashes = sum(1 for option in options if option.startswith("hash=sha256:"))
        try:
            requirement = Requirement(spec)
            [specifier] = list(requirement.specifier)
            version = Version(specifier.version)
        except (InvalidRequirement, InvalidVersion, ValueError):
            problems.append(f"{path.name}: not a pinned requirement: {spec[:80]}")
            continue
        if specifier.operator != "==" or requirement.url:
            problems.append(f"{path.name}: {spec} is not pinned with ==")
        if not hashes:
            problems.append(f"{path.name}: {requirement.name}=={version} has no --hash=sha256:")
        pins[canonicalize_name(requirement.name)] = Pin(requirement.name, version, hashes)
    return pins, python.group(1) if python else None


def requirement_lines(path: Path) -> list[str]:
    return [line for line in logical_lines(path.read_text()) if not line.startswith("-")]


def inputs_of(root: Path, deployable: Deployable) -> list[tuple[str, Requirement]]:
    """What the lock must satisfy: (where it is written, the requirement)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    found: list[tuple[str, str]] = []
    if deployable.core:
        found += [("pyproject.toml [project] dependencies", r) for r in project["project"]["dependencies"]]
    for extra in deployable.extras:
        found += [(f"pyproject.toml extra {extra}", r) for r in project["project"]["optional-dependencies"][extra]]
    if deployable.dev_requirements:
        found += [("requirements-dev.txt", r) for r in requirement_lines(root / "requirements-dev.txt")]
    if deployable.builds_project:
        found += [("pyproject.toml [build-system] requires", r) for r in project["build-system"]["requires"]]
    for extra_input in deployable.extra_inputs:
        found += [(extra_input, r) for r in requirement_lines(root / extra_input)]
    requirements = [(where, Requirement(text)) for where, text in found]
    return [(where, r) for where, r in requirements if canonicalize_name(r.name) not in deployable.runtime_has]


def recipe_problems(root: Path, deployable: Deployable, recipe: Recipe) -> list[str]:
    text = (root / recipe.path).read_text()
    if recipe.rule is not None:  # a Makefile rule: its target line up to the next blank line
        start = text.find(f"\n{recipe.rule}:")
        text = text[start:text.find("\n\n", start + 1)] if start >= 0 else ""
    installs = [line for line in logical_lines(text) if re.search(r"\bpip3? install\b", line)]
    problems = []
    if recipe.copies_to is not None and f"COPY {deployable.lock} {recipe.copies_to}" not in logical_lines(text):
        problems.append(f"{recipe.path}: does not COPY {deployable.lock} {recipe.copies_to}")
    if not any("--require-hashes" in line and f"-r {recipe.lock_ref}" in line for line in installs):
        problems.append(f"{recipe.path}: does not install {deployable.lock} with --require-hashes (-r {recipe.lock_ref})")
    for line in installs:
        if "--require-hashes" not in line and "--no-deps" not in line:
            problems.append(f"{recipe.path}: a pip install resolves dependencies outside the lock: {line[:100]}")
    return problems


def python_problems(root: Path, deployable: Deployable, locked: str | None) -> list[str]:
    kind, _, path = deployable.python_from.partition(":")
    if kind == "dockerfile":
        text = (root / path).read_text()
        base = re.search(r"^FROM public\.ecr\.aws/lambda/python:(\d+\.\d+)(@sha256:[0-9a-f]{64})?\s*$", text, re.M)
        if base is None:
            return [f"{path}: its FROM is not public.ecr.aws/lambda/python:X.Y"]
        problems = [] if base.group(2) else [f"{path}: the base image is not pinned by digest (@sha256:...)"]
        wanted = base.group(1)
    elif kind == "ami":
        text = (root / path).read_text()
        names = re.findall(r'"ubuntu/images/[^"]*/ubuntu-(\w+)-[^"]*-server-(\d{8}[^"]*)"', text)
        if len(names) != 1 or "*" in names[0][1] or re.search(r"most_recent\s*=\s*true", text):
            return [f"{path}: the source AMI is not one exact, dated image name"]
        [(release, _)] = names
        problems, wanted = [], UBUNTU_PYTHON.get(release, f"an unknown Ubuntu ({release})")
    else:
        wanted = lock_python_of_dev(root)
        problems = []
    if locked != wanted:
        problems.append(f"{deployable.lock}: resolved for Python {locked}, but the {deployable.name} runs {wanted}")
    return problems


def lock_python_of_dev(root: Path) -> str | None:
    """The dev venv's Python: the version mypy checks for (pyproject.toml [tool.mypy] python_version)."""
    return tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mypy"]["python_version"]


def check(root: Path) -> list[str]:
    problems: list[str] = []
    extras = re.search(r"^DEV_EXTRAS := (.*)$", (root / "Makefile").read_text(), re.M)
    if extras is None or tuple(extras.group(1).split()) != DEV_EXTRAS:
        problems.append(f"Makefile: DEV_EXTRAS (what make lock compiles locks/dev.txt with) is not {' '.join(DEV_EXTRAS)}")
    for deployable in DEPLOYABLES:
        lock = root / deployable.lock
        if not lock.is_file():
            problems.append(f"{deployable.lock}: missing (make lock)")
            continue
        pins, python = read_lock(lock, problems)
        for where, requirement in inputs_of(root, deployable):
            pin = pins.get(canonicalize_name(requirement.name))
            if pin is None:
                problems.append(f"{deployable.lock}: lacks {requirement} ({where}); run make lock")
            elif not requirement.specifier.contains(pin.version, prereleases=True):
                problems.append(f"{deployable.lock}: has {pin.name}=={pin.version}, but {where} wants {requirement}; run make lock")
        for recipe in deployable.recipes:
            problems += recipe_problems(root, deployable, recipe)
        problems += python_problems(root, deployable, python)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="the repository")
    args = parser.parse_args(argv)
    problems = check(args.root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"locks: {len(DEPLOYABLES)} locks agree with pyproject.toml and requirements-dev.txt, every line hashed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
