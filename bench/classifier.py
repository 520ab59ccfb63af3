"""``python -m bench.classifier``: the classifier's images/s per model and batch size, against the matmul rate.

For each model (``lite0-int8``, the default; ``lite0``, float; ``lite2``) and batch size (1, 8, 32):

* the same two loops (batch 1, and batches of 16 one at a time) with onnxruntime's threads
  spinning between runs (its default; the classifier turns it off), as ``spinning_over_sleeping``;
* the classifier path: :meth:`Classifier.classify_bytes` on encoded photos (decode, preprocess,
  inference, softmax, top-5), i.e. what the worker and ``iraas classify`` run per batch;
* inference alone: one onnxruntime call on already preprocessed arrays;
* ``iraas classify``'s loop (files read, batches of 16, one batch per core side by side, each on
  one onnxruntime thread: :func:`iraas.cli.classify.command.classify_files`), against one batch
  at a time with its decoding and inference each spread over both cores (the loop before).

The reference rate is numpy's FP32 matmul (4096 x 4096, GFLOP/s) measured in the same run, in a
subprocess with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset (they can slow OpenBLAS on
this machine); the classifier's share of it counts the float network's FLOPs per image (0.77
GFLOP for Lite0, read from the ONNX graph). All figures are medians over ``--repeats`` rounds
after a warm-up round; the rounds interleave the models, so drift on a shared machine hits them
alike. Writes ``bench/out/classifier.json``.
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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench import OUT, save_report
from harness.data import shared_data_dir
from iraas.cli.classify.command import BATCH_SIZE as COMMAND_BATCH
from iraas.cli.classify.command import classify_files
from iraas.images.model.preprocess import batch as stack
from iraas.images.model.runtime import Classifier
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
    side = model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value
    for dim in model.graph.input[0].type.tensor_type.shape.dim[:1]:
        dim.dim_value = 1  # batch 1: every shape becomes concrete
    del model.graph.value_info[:]  # the export's own shapes keep the symbolic batch
    model = shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*model.graph.value_info, *model.graph.output, *model.graph.input)
    }
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    shapes[model.graph.input[0].name] = [1, 3, side, side]
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
        x = np.zeros((8, 3, image_size, image_size), dtype=np.float32)
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
        c._run(stack(arrays[i : i + batch]))


def command_loop(c: Classifier, paths: list[Path]) -> None:
    """What ``iraas classify`` does (``c`` runs one inference thread)."""
    for _ in classify_files(c, [str(p) for p in paths]):
        pass


def one_batch_at_a_time(c: Classifier, paths: list[Path]) -> None:
    """The loop before: each batch of files read, decoded on both cores, then inferred on both."""
    for i in range(0, len(paths), COMMAND_BATCH):
        c.classify_bytes([p.read_bytes() for p in paths[i : i + COMMAND_BATCH]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=64, help="photos per run (a multiple of 32 keeps batches full)")
    parser.add_argument("--repeats", type=int, default=5, help="measured rounds (after one warm-up round)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=Path, default=OUT / "classifier.json")
    args = parser.parse_args(argv)

    import onnxruntime as ort

    from iraas.images.model.export import ensure_model

    folder = shared_data_dir() / "imagenet-sample" / "images"
    paths = sorted(folder.glob("*.JPEG"))[: args.photos]
    if not paths:
        sys.exit(f"no photos under {folder}; set IRAAS_TEST_DATA")
    blobs = [p.read_bytes() for p in paths]
    names = [m for m in args.models.split(",") if m]
    classifiers: dict[str, Classifier] = {}
    single_threaded: dict[str, Classifier] = {}  # what iraas classify loads
    spinning: dict[str, Classifier] = {}  # onnxruntime's default: threads spin between runs
    gflop: dict[str, float] = {}
    for name in names:
        path = ensure_model(default_model_dir(), progress=lambda line: print(line, file=sys.stderr), model=name)
        if name.endswith("int8") and "int8" not in path.name:
            sys.exit(f"{name}: the int8 model could not be built (no calibration photos?)")
        classifiers[name] = Classifier(path)
        single_threaded[name] = Classifier(path, threads=1)
        spinning[name] = Classifier(path, spin=True)
        gflop[name] = network_gflop(ensure_model(default_model_dir(), model=name.removesuffix("-int8")))
        print(f"{name}: {path.name}, {gflop[name]:.2f} GFLOP per image", flush=True)
    arrays = {name: [c.prepare(b) for b in blobs] for name, c in classifiers.items()}

    classify: dict[tuple[str, int], list[float]] = {}
    infer: dict[tuple[str, int], list[float]] = {}
    command: dict[tuple[str, str], list[float]] = {}
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
        for name, c in classifiers.items():
            for b in BATCHES:
                r1 = timed(partial(classify_path, c, blobs, b))
                r2 = timed(partial(inference_alone, c, arrays[name], b))
                if not warm:
                    classify.setdefault((name, b), []).append(r1)
                    infer.setdefault((name, b), []).append(r2)
            lanes = timed(partial(command_loop, single_threaded[name], paths))
            before = timed(partial(one_batch_at_a_time, c, paths))
            spun = {"batch_1": timed(partial(classify_path, spinning[name], blobs, 1)),
                    "one_batch_at_a_time": timed(partial(one_batch_at_a_time, spinning[name], paths))}
            if not warm:
                command.setdefault((name, "lanes"), []).append(lanes)
                command.setdefault((name, "one_batch_at_a_time"), []).append(before)
                for key, rate in spun.items():
                    spin.setdefault((name, key), []).append(rate)
        print(f"round {round_}{' (warm-up)' if warm else ''} done; matmul {rate:.0f} GFLOP/s", flush=True)

    mm = median_rate(matmul)
    report: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_flags": sorted(_cpu_flags() & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile"}),
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "numpy": np.__version__,
        },
        "photos": len(blobs),
        "repeats": args.repeats,
        "matmul_fp32_gflops": mm,
        "models": {},
    }
    for name in classifiers:
        entry: dict[str, Any] = {
            "file": classifiers[name].model_path.name,
            "gflop_per_image": round(gflop[name], 3),
            "classify_images_per_s": {str(b): median_rate(classify[name, b]) for b in BATCHES},
            "inference_images_per_s": {str(b): median_rate(infer[name, b]) for b in BATCHES},
            "iraas_classify_images_per_s": {k: median_rate(command[name, k]) for k in ("lanes", "one_batch_at_a_time")},
        }
        # Spinning threads against sleeping ones (the default), same loops: above 1 spinning pays.
        sleeping = {"batch_1": median_rate(classify[name, 1]),
                    "one_batch_at_a_time": entry["iraas_classify_images_per_s"]["one_batch_at_a_time"]}
        entry["spinning_over_sleeping"] = {k: round(median_rate(spin[name, k]) / v, 2) for k, v in sleeping.items()}
        entry["classify_share_of_matmul"] = {
            b: round(v * gflop[name] / mm, 3) for b, v in entry["classify_images_per_s"].items()
        }
        entry["inference_share_of_matmul"] = {
            b: round(v * gflop[name] / mm, 3) for b, v in entry["inference_images_per_s"].items()
        }
        entry["iraas_classify_share_of_matmul"] = {
            k: round(v * gflop[name] / mm, 3) for k, v in entry["iraas_classify_images_per_s"].items()
        }
        report["models"][name] = entry
    if "lite0-int8" in classifiers:
        report["int8_kernels"] = kernels(classifiers["lite0-int8"].model_path, classifiers["lite0-int8"].image_size)
    if {"lite0", "lite0-int8"} <= set(classifiers):
        q, f = report["models"]["lite0-int8"], report["models"]["lite0"]
        report["int8_over_float"] = {
            key: {b: round(q[key][b] / f[key][b], 2) for b in q[key]}
            for key in ("classify_images_per_s", "inference_images_per_s", "iraas_classify_images_per_s")
        }
        default = q["iraas_classify_share_of_matmul"]["lanes"]
        ratios = report["int8_over_float"]
        report["targets"] = {
            "iraas_classify_default_model_share_of_matmul": default,
            "share_at_least_0.45": default >= 0.45,
            # The network itself; the classifier path shares the (unchanged) decode and preprocessing.
            "int8_over_float_inference_min": min(ratios["inference_images_per_s"].values()),
            "int8_over_float_classify_min": min(ratios["classify_images_per_s"].values()),
            "int8_inference_at_least_1.5x": min(ratios["inference_images_per_s"].values()) >= 1.5,
            "int8_classify_path_at_least_1.5x": min(ratios["classify_images_per_s"].values()) >= 1.5,
            "int8_over_float_iraas_classify": ratios["iraas_classify_images_per_s"]["lanes"],
            "int8_iraas_classify_at_least_1.5x": ratios["iraas_classify_images_per_s"]["lanes"] >= 1.5,
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
