"""What ``IRAAS_MODEL`` can choose on this machine, for ``iraas model list`` (stdlib only: no
runtime is loaded and nothing is built).

The built-in models, each built (cached in the model folder) or not, and the models of one's own
found there (``*.onnx`` other than the built-in cache files), each with its label count or what
keeps it from loading; the model ``IRAAS_MODEL`` names is marked, and listed even if its file is
elsewhere (an absolute path) or missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iraas.errors import ConfigError

from .files import find_model, is_built_in_file
from .models import DEFAULT_MODEL, MODELS, OWN_SUFFIX, is_own_model
from .own import labels_file, load_own_model, own_model_path, settings_file


@dataclass(frozen=True)
class Choice:
    """One model ``IRAAS_MODEL`` can name."""

    name: str  # the IRAAS_MODEL value: a built-in name, an own model's file name or absolute path
    state: str  # "built", "not built", "3 labels", or what keeps an own model from loading
    description: str
    current: bool = False  # the one IRAAS_MODEL names
    ready: bool = True  # built, or an own model whose files read well


def choices(model_dir: Path, current: str) -> list[Choice]:
    """The built-in models, then the own models in ``model_dir`` by name (and ``current``, if it names
    one elsewhere). ``current`` is the checked ``IRAAS_MODEL`` value (``models.default_model``)."""
    model_dir = Path(model_dir).expanduser()
    found: list[Choice] = []
    for spec in MODELS.values():
        built = find_model(model_dir, spec.name) is not None
        default = " (the default)" if spec.name == DEFAULT_MODEL else ""
        found.append(Choice(spec.name, "built" if built else "not built", spec.description + default,
                            current=spec.name == current, ready=built))
    own = sorted(p for p in model_dir.glob(f"*{OWN_SUFFIX}") if p.is_file() and not is_built_in_file(p))
    current_path = own_model_path(current, model_dir) if is_own_model(current) else None
    for path in own:
        # A bare file name is what IRAAS_MODEL takes for a file in the model folder.
        found.append(_own_choice(path.name, path, current=path == current_path))
    if current_path is not None and current_path not in own:
        found.append(_own_choice(current, current_path, current=True))
    return found


def _own_choice(name: str, path: Path, current: bool) -> Choice:
    try:
        model = load_own_model(path)
    except ConfigError as exc:
        # The message names the file; the listing already does.
        problem = str(exc).removeprefix(f"IRAAS_MODEL={path}: ").removeprefix(f"{path}: ")
        for other in (labels_file(path), settings_file(path)):
            problem = problem.removeprefix(f"{other}: ")
        return Choice(name, "refused", f"a model of your own: {problem}", current=current, ready=False)
    extra = f", {settings_file(path).name}" if settings_file(path).is_file() else ""
    count = len(model.labels)
    return Choice(name, f"{count} label{'s' if count != 1 else ''}",
                  f"a model of your own (with {labels_file(path).name}{extra})", current=current)


def describe(model_dir: Path, listed: list[Choice]) -> list[str]:
    """``iraas model list``'s lines: a heading, then one aligned line per choice (``*`` marks IRAAS_MODEL)."""
    width = max(len(c.name) for c in listed)
    state_width = max(len(c.state) for c in listed)
    lines = [f"models in {Path(model_dir).expanduser()} (IRAAS_MODEL_DIR); * marks IRAAS_MODEL"]
    for c in listed:
        lines.append(f"{'*' if c.current else ' '} {c.name:<{width}}  {c.state:<{state_width}}  {c.description}")
    return lines
