"""A model of one's own: ``IRAAS_MODEL=/path/to/NAME.onnx`` (or ``NAME.onnx`` in the model folder),
its files read and checked (stdlib only: ``iraas model list`` and the S3 fetch read them without a runtime).

Beside ``NAME.onnx`` lie ``NAME.labels.txt``, one label per line in the order of the model's
outputs, and optionally ``NAME.json``, how its input is made::

    {"input_size": 224, "resize": 256, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}

(ImageNet's values, torchvision's defaults, are the defaults: ``resize``, the side the shorter
side is resized to before the centre crop, defaults to ``input_size / 0.875`` rounded, 256 for 224.)

Unlike the built-in files, which take uint8 pixels N x side x side x 3 and normalise them in the
graph, an own model takes what a PyTorch export takes: N x 3 x side x side, either float32 (pixels
scaled to 0..1, less ``mean``, over ``std``) or uint8 pixels. Its one output holds a score per
label, taken as logits (what torchvision's models give): the answer's confidences are their
softmax. :func:`load_own_model` checks the files; :func:`check_signature` the graph's input and
output, as the runtime that loads it reports them (:mod:`.runtime`). Each problem is a
:class:`~iraas.errors.ConfigError` of one line that names the file and what is wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from iraas.errors import ConfigError

from .models import OWN_SUFFIX

LABELS_SUFFIX = ".labels.txt"
SETTINGS_SUFFIX = ".json"
DEFAULT_INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # on 0..1 pixels, RGB
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875  # torchvision's evaluation crop: a 224 crop of the shorter side resized to 256
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 8, 4096
MAX_RESIZE = 4 * MAX_INPUT_SIZE
SETTINGS_KEYS = ("input_size", "resize", "mean", "std")
INPUT_TYPES = ("float32", "uint8")


@dataclass(frozen=True)
class OwnModel:
    """An own model's files, read and checked: what the classifier needs besides the graph."""

    path: Path  # NAME.onnx
    labels: tuple[str, ...]  # in the order of the model's outputs
    input_size: int = DEFAULT_INPUT_SIZE  # the square side the network takes
    resize: int = round(DEFAULT_INPUT_SIZE / CROP_FRACTION)  # the shorter side before the centre crop
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class Tensor:
    """One input or output of a graph, as a runtime reports it."""

    name: str
    dtype: str  # numpy's name: "float32", "uint8", ...
    shape: tuple[int | None, ...] | None  # None for a dimension (or a rank) that is not fixed


def labels_file(path: Path) -> Path:
    """``NAME.labels.txt`` beside ``NAME.onnx``."""
    return path.with_name(path.name.removesuffix(OWN_SUFFIX) + LABELS_SUFFIX)


def settings_file(path: Path) -> Path:
    """``NAME.json`` beside ``NAME.onnx``."""
    return path.with_name(path.name.removesuffix(OWN_SUFFIX) + SETTINGS_SUFFIX)


def default_resize(input_size: int) -> int:
    """The shorter side before a centre crop of ``input_size``, as torchvision evaluates: 256 for 224."""
    return round(input_size / CROP_FRACTION)


def own_model_path(name: str, model_dir: Path) -> Path:
    """The file an ``IRAAS_MODEL`` value names: an absolute path as it is, a bare file name in ``model_dir``."""
    path = Path(name)
    return path if path.is_absolute() else Path(model_dir).expanduser() / path


def load_own_model(path: Path) -> OwnModel:
    """``path`` (``NAME.onnx``) with its labels and settings read and checked; ConfigError naming
    the file and what is wrong. The graph itself is checked when a runtime loads it
    (:func:`check_signature`)."""
    if not path.is_file():
        where = "no such file" if not path.exists() else "not a file"
        raise ConfigError(f"IRAAS_MODEL={path}: {where}")
    labels = read_labels(path)
    input_size, resize, mean, std = read_settings(path)
    return OwnModel(path=path, labels=labels, input_size=input_size, resize=resize, mean=mean, std=std)


def read_labels(path: Path) -> tuple[str, ...]:
    """The labels of the model at ``path``, from ``NAME.labels.txt``: one per line, none blank (a
    blank last line is no label)."""
    labels_path = labels_file(path)
    try:
        text = labels_path.read_text(encoding="utf-8-sig")  # -sig: a byte order mark is no part of the first label
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no labels file {labels_path.name} beside it (one label per line, in the order of the outputs)"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{labels_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{labels_path}: {exc.strerror or exc}") from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ConfigError(f"{labels_path}: no labels (one label per line, in the order of the outputs)")
    if "" in lines:
        raise ConfigError(f"{labels_path}: line {lines.index('') + 1} is blank (one label per line, none blank)")
    return tuple(lines)


def read_settings(path: Path) -> tuple[int, int, tuple[float, float, float], tuple[float, float, float]]:
    """The input settings of the model at ``path``, from ``NAME.json`` if there is one, else the
    defaults: (input_size, resize, mean, std)."""
    json_path = settings_file(path)
    try:
        raw = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raw = {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{json_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise ConfigError(f"{json_path}: not JSON ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{json_path}: {exc.strerror or exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{json_path}: not a JSON object; it may hold {', '.join(SETTINGS_KEYS)}")
    unknown = sorted(set(raw) - set(SETTINGS_KEYS))
    if unknown:  # a misspelt key would silently leave its default in place
        raise ConfigError(f"{json_path}: unknown key {unknown[0]!r}; it may hold {', '.join(SETTINGS_KEYS)}")
    input_size = _whole(json_path, raw, "input_size", DEFAULT_INPUT_SIZE, MIN_INPUT_SIZE, MAX_INPUT_SIZE)
    resize = _whole(json_path, raw, "resize", default_resize(input_size), input_size, MAX_RESIZE)
    # Values a 0..255 recipe would give (mean 123.7) are refused: IRaaS scales the pixels to 0..1 first.
    mean = _triple(json_path, raw, "mean", IMAGENET_MEAN, lambda v: 0 <= v <= 1, "from 0 to 1 (on 0..1 pixels)")
    std = _triple(json_path, raw, "std", IMAGENET_STD, lambda v: 0 < v <= 1, "above 0, at most 1 (on 0..1 pixels)")
    return input_size, resize, mean, std


def _whole(json_path: Path, raw: dict[str, object], key: str, default: int, lo: int, hi: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{json_path}: {key} is {json.dumps(value)}; it must be a whole number from {lo} to {hi}")
    return value


def _triple(json_path: Path, raw: dict[str, object], key: str, default: tuple[float, float, float],
            ok: Callable[[float], bool], rule: str) -> tuple[float, float, float]:
    value = raw.get(key, default)
    items = list(value) if isinstance(value, list | tuple) else []
    numbers = [float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(items) != 3 or len(numbers) != 3 or not all(math.isfinite(v) and ok(v) for v in numbers):
        raise ConfigError(f"{json_path}: {key} is {json.dumps(value)}; it must be 3 numbers (R, G, B), each {rule}")
    return numbers[0], numbers[1], numbers[2]


def check_signature(model: OwnModel, inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> str:
    """Check the graph's inputs and outputs against what IRaaS feeds it and reads from it; returns
    the input's type (``float32`` or ``uint8``). ConfigError naming the file and what is wrong."""
    where = model.path
    if len(inputs) != 1:
        names = ", ".join(t.name for t in inputs)
        raise ConfigError(f"{where}: the model has {len(inputs)} inputs ({names}); it must take one, a batch of images")
    (tensor,) = inputs
    shape = tensor.shape
    if tensor.dtype not in INPUT_TYPES:
        raise ConfigError(f"{where}: its input {tensor.name} is {tensor.dtype}; it must be float32 or uint8")
    if shape is None or len(shape) != 4:
        raise ConfigError(
            f"{where}: its input {tensor.name} has shape {_shape(shape)}; it must be N x 3 x side x side (NCHW)"
        )
    if shape[1] != 3:
        if shape[3] == 3:
            raise ConfigError(
                f"{where}: its input {tensor.name} is NHWC {tensor.dtype} {_shape(shape)}; a model of your own "
                f"takes N x 3 x side x side (NCHW), as PyTorch exports it"
            )
        if shape[1] is not None:  # not fixed: the first run tells
            raise ConfigError(f"{where}: its input {tensor.name} has {shape[1]} channels {_shape(shape)}; it must take 3 (RGB)")
    if shape[0] is not None:
        raise ConfigError(
            f"{where}: its input {tensor.name} has a fixed batch of {shape[0]} {_shape(shape)}; "
            f"export it with a dynamic batch axis (docs/models.md)"
        )
    side = [s for s in shape[2:] if s is not None]
    if any(s != model.input_size for s in side):
        source = settings_file(where).name if settings_file(where).is_file() else "the default"
        raise ConfigError(
            f"{where}: its input {tensor.name} is {_shape(shape)} but input_size is {model.input_size} ({source}); "
            f"set \"input_size\" in {settings_file(where).name}"
        )
    if len(outputs) != 1:
        names = ", ".join(t.name for t in outputs)
        raise ConfigError(f"{where}: the model has {len(outputs)} outputs ({names}); it must have one, a score per label")
    (output,) = outputs
    last = output.shape[-1] if output.shape else None
    if last is not None and last != len(model.labels):
        raise ConfigError(label_count_mismatch(model, last))
    return tensor.dtype


def label_count_mismatch(model: OwnModel, scores: int) -> str:
    """The message for an output of ``scores`` per image that the labels file does not match."""
    return (f"{model.path}: the model gives {scores} scores per image but {labels_file(model.path).name} "
            f"has {len(model.labels)} labels")


def runtime_refusal(model: OwnModel, what: str, exc: BaseException) -> ConfigError:
    """A runtime's error about ``model`` (a file it cannot read, a first run that fails) as one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = lines[0] if lines else type(exc).__name__
    return ConfigError(f"{model.path}: {what}: {detail[:300]}")


def _shape(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "[?]"
    return "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"
