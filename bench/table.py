"""The README's benchmark table, from ``bench/out/bench.json``: ``python -m bench.table``."""

from __future__ import annotations

import json
import sys
from typing import Any

from bench import OUT

MODELS = ("lite0-int8", "lite0", "lite2")


def _get(data: Any, *path: str, default: Any = "n/a") -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _cpu_split(cs: dict) -> str:
    if "skipped" in cs or "role_share" not in cs:
        return f"not measured: {cs.get('skipped', 'no bench.cpu_split figures')}"
    share = cs["role_share"]

    def pct(v: float) -> str:
        return f"{100 * v:.0f}%"

    return (f"{pct(share.get('endpoint', 0))} / {pct(share.get('web', 0))} / {pct(share.get('workers', 0))} "
            f"({pct(cs.get('workers_model_share', 0))}) / {pct(share.get('load generator', 0))} / {pct(share.get('idle', 0))}")


def rows(report: dict) -> list[tuple[str, str]]:
    c, w, s, f, m, fs, cs = (
        report.get(k) or {}
        for k in ("classifier", "worker", "service", "faces", "moto_calls", "faces_at_scale", "cpu_split")
    )
    models = c.get("models", {})

    def rate(model: str, what: str) -> str:
        return " / ".join(str(round(v)) for v in _get(models, model, what, default={}).values())

    cold, warm, thousand = s.get("cold_median", {}), s.get("warm_median", {}), s.get("thousand", {})
    out = [
        ("numpy FP32 matmul (same run)", f"{c.get('matmul_fp32_gflops')} GFLOP/s"),
        ("classifier path, images/s at batch 1 / 8 / 32: lite0-int8 (default)", rate("lite0-int8", "classify_images_per_s")),
        ("... lite0 (float) / lite2", f"{rate('lite0', 'classify_images_per_s')}  /  {rate('lite2', 'classify_images_per_s')}"),
        ("inference alone, images/s at batch 1 / 8 / 32: int8 / float",
         f"{rate('lite0-int8', 'inference_images_per_s')}  /  {rate('lite0', 'inference_images_per_s')}"),
        ("`iraas classify` loop, share of the matmul rate: int8 / float / lite2 (0.77 GFLOP per Lite0 image)",
         " / ".join(str(_get(models, k, "iraas_classify_share_of_matmul", "lanes")) for k in MODELS)),
        ("`iraas classify` loop, images/s, int8 / float: one batch per core side by side (as it runs) / one batch at a time",
         f"{_get(models, 'lite0-int8', 'iraas_classify_images_per_s', 'lanes')} / "
         f"{_get(models, 'lite0', 'iraas_classify_images_per_s', 'lanes')}  /  "
         f"{_get(models, 'lite0-int8', 'iraas_classify_images_per_s', 'one_batch_at_a_time')} / "
         f"{_get(models, 'lite0', 'iraas_classify_images_per_s', 'one_batch_at_a_time')}"),
        ("onnxruntime threads spinning between runs over sleeping (the default), images/s: int8 / float, "
         "batch 1 / batches of 16 one at a time",
         " / ".join(f"{_get(models, k, 'spinning_over_sleeping', 'batch_1')}, "
                    f"{_get(models, k, 'spinning_over_sleeping', 'one_batch_at_a_time')}" for k in MODELS[:2])),
        ("int8 over float: `iraas classify` / classifier path at batch 1, 8, 32 / inference at batch 1, 8, 32",
         f"{_get(c, 'int8_over_float', 'iraas_classify_images_per_s', 'lanes')} / "
         f"{', '.join(map(str, _get(c, 'int8_over_float', 'classify_images_per_s', default={}).values()))} / "
         f"{', '.join(map(str, _get(c, 'int8_over_float', 'inference_images_per_s', default={}).values()))}"),
        ("one worker end to end (receive to delete, in-process endpoint) / classifier alone / naive loop, images/s",
         f"{w.get('worker_images_per_s')} / {w.get('classifier_alone_images_per_s')} / {w.get('naive_worker_images_per_s')}"),
        ("100 concurrent course-style requests, fresh stack (no worker running): whole burst, p50 / p90 / p99",
         f"{cold.get('total_s')} s, {cold.get('p50_s')} / {cold.get('p90_s')} / {cold.get('p99_s')} s"),
        ("... warm stack", f"{warm.get('total_s')} s, {warm.get('p50_s')} / {warm.get('p90_s')} / {warm.get('p99_s')} s"),
        ("1,000 requests, 100 at a time: total, images/s, share of the classifier alone, errors, announced twice",
         f"{thousand.get('total_s')} s, {thousand.get('images_per_s')}/s, {thousand.get('share_of_classifier')}, "
         f"{thousand.get('errors')}, {thousand.get('announced_twice')}"),
        ("a request sent just after the fleet scaled in to zero (3 tries)", f"{s.get('after_scale_in_s')} s"),
        ("AWS calls per image (endpoint's log, scaler and heartbeats included): cold / warm",
         f"{cold.get('aws_calls_per_image')} / {warm.get('aws_calls_per_image')}"),
        ("CPU seconds per image by process, warm burst",
         ", ".join(f"{k} {v}" for k, v in _get(s, "warm", default=[{}])[-1].get("cpu_s_per_image", {}).items())),
        ("share of both cores while 1,000 requests are served (perf): endpoint / web / workers (the classifier's "
         "own work in them) / load generator / idle",
         _cpu_split(cs)),
        ("endpoint CPU per call, plain moto / patched (mix, 100 queued)",
         f"{_get(m, 'plain_over_patched', 'mix')}x less patched"),
        ("CPU ms per call (mix): the endpoint as `iraas up` runs it (keeping its state) / boto3 on the caller's side",
         f"{_get(m, 'results', 'durable', 'mix', 'server_cpu_ms_per_call')} / "
         f"{_get(m, 'results', 'durable', 'mix', 'client_cpu_ms_per_call')}"),
        ("face pipeline, first frame to CSV, two students, 480p / 720p / 1080p",
         " / ".join(f"{_get(f, 'per_video', r, 'first_frame_to_csv_ms')} ms" for r in ("480p", "720p", "1080p"))),
        ("face pipeline, a warm single-student 720p video, S3 event (handler invocation) to CSV",
         f"{_get(f, 'per_video', '720p_single_face', 'invocation_ms')} ms"),
        ("face function cold start (imports, settings, models, warm-up)", f"{_get(f, 'cold_start', 'handler_init_ms')} ms"),
        ("classroom at course scale: 100 uploads of 8 clips, first upload to last CSV, CSVs right",
         f"{fs.get('first_upload_to_last_csv_s')} s, {fs.get('csvs_right')} / {fs.get('uploads')}"),
        ("face runner start to ready: forked from the preloaded zygote / a fresh interpreter",
         f"{_get(fs, 'runner_start_to_ready', 'forked_ms', 'median')} / "
         f"{_get(fs, 'runner_start_to_ready', 'spawned_ms', 'median')} ms"),
    ]
    return out


def main() -> int:
    report = json.loads((OUT / "bench.json").read_text())
    print("| what | figure |\n|---|---|")
    for what, figure in rows(report):
        print(f"| {what} | {figure} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
