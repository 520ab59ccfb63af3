"""``python -m bench.classifier``: the classifier's images/s per runtime, model and batch size, against the matmul rate.

For each runtime (OpenVINO, the default, and onnxruntime: :mod:`iraas.images.model.runtimes`),
each model (``lite0-int8``, the default; ``lite0``, float; ``lite2``) and batch size (1, 8, 32):

* the classifier path: :meth:`Classifier.classify_bytes` on encoded photos (decode, preprocess,
  inference, softmax, top-5), i.e. what the worker and ``iraas classify`` run per batch;
* inference alone: one call on already preprocessed pixels, using every core; and, at batch 8,
  two calls side by side from two threads on a stream of one thread each
  (``inference_two_lanes_images_per_s``);
* ``iraas classify``'s loop (files read, batches of 16, one batch per core side by side, each on
  one inference thread: :func:`iraas.cli.classify.command.classify_files`), against one batch
  at a time with its decoding and inference each spread over both cores (the loop before);
* for onnxruntime, the same two loops (batch 1, and batches of 16 one at a time) with its threads
  spinning between runs (its default; the classifier turns it off), as ``spinning_over_sleeping``.

``targets`` sets ``iraas classify``'s rate (the default runtime and model) beside the fastest
inference-only rate of the default model file at batch 8, whichever runtime and way gave it.
``models`` repeats the default runtime's figures.

The reference rate is numpy's FP32 matmul (4096 x 4096, GFLOP/s) measured in the same run, in a
subprocess with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset (they can slow OpenBLAS on
this machine); the classifier's share of it counts the float network's FLOPs per image (0.77
GFLOP for Lite0, read from the ONNX graph). All figures are medians over ``--repeats`` rounds
after a warm-up round; the rounds interleave the runtimes and models, so drift on a shared
machine hits them alike. Writes ``bench/out/classifier.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench import OUT, save_report
from harness.data import shared_data_dir
from iraas.cli.classify.command import BATCH_SIZE as COMMAND_BATCH
from iraas.cli.classify.command import classify_files
from iraas.config import usable_cores
from iraas.images.model.preprocess import batch as stack
from iraas.images.model.runtime import Classifier
from iraas.images.model.runtimes import DEFAULT_RUNTIME, RUNTIMES
from iraas.images.settings import default_model_dir

MODELS = ("lite0-int8", "lite0", "lite2")
BATCHES = (1, 8, 32)
MATMUL_N = 4096

MATMUL_SCRIPT = f"""
import json, statistics, time
import numpy as np
n = {MATMUL_N}
a = np.random.default_rng(0).random((n, n), dtype=np.float32)
b = np.random.default_rng(1).random((n, n), dtype=np.float32)
a @ b
rates = []
for _ in range(5):
    t = time.perf_counter(); a @ b; rates.append(2 * n**3 / (time.perf_counter() - t) / 1e9)
print(json.dumps(statistics.median(rates)))
"""


def matmul_gflops() -> float:
    """numpy's FP32 matmul rate, in a child without the OpenBLAS overrides."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    out = subprocess.run([sys.executable, "-c", MATMUL_SCRIPT], env=env, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout))


def network_gflop(onnx_path: Path) -> float:
    """FLOPs per image of a float ONNX model (2 per multiply-add of Conv and Gemm/MatMul)."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(onnx_path))
    side = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value  # N x side x side x 3
    for dim in model.graph.input[0].type.tensor_type.shape.dim[:1]:
        dim.dim_value = 1  # batch 1: every shape becomes concrete
    del model.graph.value_info[:]  # the export's own shapes keep the symbolic batch
    model = shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*model.graph.value_info, *model.graph.output, *model.graph.input)
    }
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    shapes[model.graph.input[0].name] = [1, side, side, 3]
    flops = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = weights[node.input[1]]  # (out, in/groups, kh, kw)
            out = shapes[node.output[0]]
            flops += 2 * int(np.prod(out)) * w[1] * w[2] * w[3]
        elif node.op_type in ("Gemm", "MatMul") and node.input[1] in weights:
            rows, cols = weights[node.input[1]][:2]
            flops += 2 * rows * cols
    return flops / 1e9


def kernels(model_path: Path, image_size: int) -> dict:
    """What onnxruntime runs for ``model_path``: op types by share of kernel time (profiled, batch 8),
    and whether this process may use AMX tiles (MLAS asks Linux for them when it picks its AMX
    int8 GEMM; ARCH_GET_XCOMP_PERM shows whether it did)."""
    import ctypes
    import tempfile
    from collections import Counter

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        x = np.zeros((8, image_size, image_size, 3), dtype=np.uint8)
        for _ in range(3):
            session.run(None, {session.get_inputs()[0].name: x})
        events = json.loads(Path(session.end_profiling()).read_text())
    time_by_op: Counter[str] = Counter()
    count_by_op: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            time_by_op[event["args"]["op_name"]] += event["dur"]
            count_by_op[event["args"]["op_name"]] += 1
    total = sum(time_by_op.values()) or 1
    report: dict = {
        "ops_by_time_share": {op: round(t / total, 3) for op, t in time_by_op.most_common()},
        "nodes_per_run": {op: n // 3 for op, n in count_by_op.most_common()},
    }
    report["matmul_integer_u8s8_gops"] = round(matmul_integer_gops(), 1)
    try:
        mask = ctypes.c_ulong(0)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syscall(158, 0x1022, ctypes.byref(mask)) == 0:  # SYS_arch_prctl, ARCH_GET_XCOMP_PERM (x86-64)
            report["amx_tile_data_permitted"] = bool(mask.value & (1 << 18))  # XFEATURE_XTILEDATA
    except (OSError, AttributeError):
        pass
    return report


def matmul_integer_gops(n: int = 2048) -> float:
    """onnxruntime's u8 x s8 MatMulInteger rate (GOP/s): far above 4x the FP32 rate means AMX, not VNNI."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.integers(-128, 128, (n, n), dtype=np.int8), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "matmul_integer",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    a = rng.integers(0, 256, (n, n), dtype=np.uint8)
    session.run(None, {"A": a})
    rates = []
    for _ in range(5):
        started = time.perf_counter()
        session.run(None, {"A": a})
        rates.append(2 * n**3 / (time.perf_counter() - started) / 1e9)
    return statistics.median(rates)


def median_rate(runs: list[float]) -> float:
    return round(statistics.median(runs), 1)


def classify_path(c: Classifier, blobs: list[bytes], batch: int) -> None:
    for i in range(0, len(blobs), batch):
        c.classify_bytes(blobs[i : i + batch])


def inference_alone(c: Classifier, arrays: list[np.ndarray], batch: int) -> None:
    for i in range(0, len(arrays), batch):
        c._run(stack(arrays[i : i + batch], crop=c.image_size))


def command_loop(c: Classifier, paths: list[Path]) -> None:
    """What ``iraas classify`` does (``c`` runs one inference thread)."""
    for _ in classify_files(c, [str(p) for p in paths]):
        pass


def one_batch_at_a_time(c: Classifier, paths: list[Path]) -> None:
    """The loop before: each batch of files read, decoded on both cores, then inferred on both."""
    for i in range(0, len(paths), COMMAND_BATCH):
        c.classify_bytes([p.read_bytes() for p in paths[i : i + COMMAND_BATCH]])


def two_lanes(c: Classifier, arrays: list[np.ndarray], batch: int) -> None:
    """Inference alone, two batches at a time from two threads (``c`` has a stream per lane)."""
    chunks = [arrays[i : i + batch] for i in range(0, len(arrays), batch)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda chunk: c._run(stack(chunk, crop=c.image_size)), chunks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=64, help="photos per run (a multiple of 32 keeps batches full)")
    parser.add_argument("--repeats", type=int, default=5, help="measured rounds (after one warm-up round)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--out", type=Path, default=OUT / "classifier.json")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import openvino as ov

    from iraas.images.model.export import ensure_model

    folder = shared_data_dir() / "imagenet-sample" / "images"
    paths = sorted(folder.glob("*.JPEG"))[: args.photos]
    if not paths:
        sys.exit(f"no photos under {folder}; set IRAAS_TEST_DATA")
    blobs = [p.read_bytes() for p in paths]
    names = [m for m in args.models.split(",") if m]
    runtimes = [r for r in args.runtimes.split(",") if r]
    lanes = usable_cores()
    # Per (runtime, model): as the worker loads it (both cores), as iraas classify does (a stream
    # of one thread per lane), and onnxruntime with its threads spinning between runs (its default).
    classifiers: dict[tuple[str, str], Classifier] = {}
    single_threaded: dict[tuple[str, str], Classifier] = {}
    spinning: dict[str, Classifier] = {}
    gflop: dict[str, float] = {}
    for name in names:
        path = ensure_model(default_model_dir(), progress=lambda line: print(line, file=sys.stderr), model=name)
        if name.endswith("int8") and "int8" not in path.name:
            sys.exit(f"{name}: the int8 model could not be built (no calibration photos?)")
        for runtime in runtimes:
            classifiers[runtime, name] = Classifier(path, runtime=runtime)
            single_threaded[runtime, name] = Classifier(path, threads=1, runtime=runtime, streams=lanes)
        if "onnxruntime" in runtimes:
            spinning[name] = Classifier(path, spin=True, runtime="onnxruntime")
        gflop[name] = network_gflop(ensure_model(default_model_dir(), model=name.removesuffix("-int8")))
        print(f"{name}: {path.name}, {gflop[name]:.2f} GFLOP per image", flush=True)
    arrays = {name: [c.prepare(b) for b in blobs] for (_, name), c in classifiers.items()}

    classify: dict[tuple[str, str, int], list[float]] = {}
    infer: dict[tuple[str, str, int], list[float]] = {}
    infer_lanes: dict[tuple[str, str], list[float]] = {}
    command: dict[tuple[str, str, str], list[float]] = {}
    spin: dict[tuple[str, str], list[float]] = {}
    matmul: list[float] = []

    def timed(fn: Callable[[], object]) -> float:
        started = time.perf_counter()
        fn()
        return len(blobs) / (time.perf_counter() - started)

    for round_ in range(args.repeats + 1):
        warm = round_ == 0
        rate = matmul_gflops()
        if not warm:
            matmul.append(rate)
        for (runtime, name), c in classifiers.items():
            one = single_threaded[runtime, name]
            figures: dict[tuple[str, int | str], float] = {
                **{("classify", b): timed(partial(classify_path, c, blobs, b)) for b in BATCHES},
                **{("infer", b): timed(partial(inference_alone, c, arrays[name], b)) for b in BATCHES},
                ("lanes", 8): timed(partial(two_lanes, one, arrays[name], 8)),
                ("command", "lanes"): timed(partial(command_loop, one, paths)),
                ("command", "one_batch_at_a_time"): timed(partial(one_batch_at_a_time, c, paths)),
            }
            if runtime == "onnxruntime":
                figures["spin", "batch_1"] = timed(partial(classify_path, spinning[name], blobs, 1))
                figures["spin", "one_batch_at_a_time"] = timed(partial(one_batch_at_a_time, spinning[name], paths))
            if warm:
                continue
            for (kind, key), value in figures.items():
                if kind == "classify":
                    classify.setdefault((runtime, name, int(key)), []).append(value)
                elif kind == "infer":
                    infer.setdefault((runtime, name, int(key)), []).append(value)
                elif kind == "lanes":
                    infer_lanes.setdefault((runtime, name), []).append(value)
                elif kind == "command":
                    command.setdefault((runtime, name, str(key)), []).append(value)
                else:
                    spin.setdefault((name, str(key)), []).append(value)
        print(f"round {round_}{' (warm-up)' if warm else ''} done; matmul {rate:.0f} GFLOP/s", flush=True)

    mm = median_rate(matmul)
    report: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_flags": sorted(_cpu_flags() & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile"}),
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "openvino": ov.get_version(),
            "numpy": np.__version__,
        },
        "photos": len(blobs),
        "repeats": args.repeats,
        "matmul_fp32_gflops": mm,
        "default_runtime": DEFAULT_RUNTIME,
        "runtimes": {},
    }
    for runtime in runtimes:
        entries: dict[str, Any] = {}
        for name in names:
            entry: dict[str, Any] = {
                "file": classifiers[runtime, name].model_path.name,
                "gflop_per_image": round(gflop[name], 3),
                "classify_images_per_s": {str(b): median_rate(classify[runtime, name, b]) for b in BATCHES},
                "inference_images_per_s": {str(b): median_rate(infer[runtime, name, b]) for b in BATCHES},
                # Batch 8 on two threads side by side, one stream of one thread each.
                "inference_two_lanes_images_per_s": median_rate(infer_lanes[runtime, name]),
                "iraas_classify_images_per_s": {
                    k: median_rate(command[runtime, name, k]) for k in ("lanes", "one_batch_at_a_time")
                },
            }
            if runtime == "onnxruntime":
                # Spinning threads against sleeping ones (the default), same loops: above 1 spinning pays.
                sleeping = {"batch_1": median_rate(classify[runtime, name, 1]),
                            "one_batch_at_a_time": entry["iraas_classify_images_per_s"]["one_batch_at_a_time"]}
                entry["spinning_over_sleeping"] = {
                    k: round(median_rate(spin[name, k]) / v, 2) for k, v in sleeping.items()
                }
            for key in ("classify_images_per_s", "inference_images_per_s", "iraas_classify_images_per_s"):
                entry[key.replace("images_per_s", "share_of_matmul")] = {
                    b: round(v * gflop[name] / mm, 3) for b, v in entry[key].items()
                }
            entries[name] = entry
        report["runtimes"][runtime] = entries
    # What users get: the default runtime's figures (the benchmarks page's rows read these).
    report["models"] = report["runtimes"].get(DEFAULT_RUNTIME) or report["runtimes"][runtimes[0]]
    if "onnxruntime" in runtimes and "lite0-int8" in names:
        report["int8_kernels"] = kernels(classifiers["onnxruntime", "lite0-int8"].model_path,
                                         classifiers["onnxruntime", "lite0-int8"].image_size)
    if len(runtimes) == 2:
        first, second = report["runtimes"][RUNTIMES[0]], report["runtimes"][RUNTIMES[1]]
        report["openvino_over_onnxruntime"] = {
            name: {key: {b: round(first[name][key][b] / second[name][key][b], 2) for b in first[name][key]}
                   for key in ("classify_images_per_s", "inference_images_per_s", "iraas_classify_images_per_s")}
            for name in names
        }
    if {"lite0", "lite0-int8"} <= set(names):
        q, f = report["models"]["lite0-int8"], report["models"]["lite0"]
        report["int8_over_float"] = {
            key: {b: round(q[key][b] / f[key][b], 2) for b in q[key]}
            for key in ("classify_images_per_s", "inference_images_per_s", "iraas_classify_images_per_s")
        }
    if "lite0-int8" in names:
        default = report["models"]["lite0-int8"]
        # The fastest inference-only rate of the default model file at batch 8, either runtime:
        # one batch at a time on every core, or two side by side on a stream each.
        fastest = max(
            [(rates["lite0-int8"]["inference_images_per_s"]["8"], f"{runtime}, one batch of 8 at a time")
             for runtime, rates in report["runtimes"].items()]
            + [(rates["lite0-int8"]["inference_two_lanes_images_per_s"], f"{runtime}, two batches of 8 side by side")
               for runtime, rates in report["runtimes"].items()]
        )
        command_rate = default["iraas_classify_images_per_s"]["lanes"]
        report["targets"] = {
            "iraas_classify_images_per_s": command_rate,
            "fastest_inference_batch_8_images_per_s": fastest[0],
            "fastest_inference_batch_8_how": fastest[1],
            "iraas_classify_share_of_fastest_inference": round(command_rate / fastest[0], 3),
            "share_at_least_0.6": command_rate / fastest[0] >= 0.6,
            "iraas_classify_default_model_share_of_matmul": default["iraas_classify_share_of_matmul"]["lanes"],
        }
    print(json.dumps(report, indent=2))
    save_report(args.out, report)
    return 0


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


if __name__ == "__main__":
    sys.exit(main())
