"""One worker end to end (receive to delete) against the classifier alone and a naive loop.

``python -m bench.worker``: the template provisioned into in-process moto, ``--images`` photos
queued as the web tier queues them, then drained by
- the worker as it runs (batches of ``IRAAS_WORKER_BATCH``, parallel fetches and stores, batched
  replies and deletes),
- a naive worker (one message per receive, so one image per model call),
and the classifier alone on the same bytes (decode + preprocess + inference, batch 8).
Medians of ``--repeats`` runs after a warm-up; the in-process endpoint's own CPU is included in
both worker figures. Writes ``bench/out/worker.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import moto

from bench import OUT, SCRATCH, save_report
from harness.data import shared_data_dir
from iraas.config import TEMPLATE


def _photos(count: int) -> list[Path]:
    found = sorted((shared_data_dir() / "imagenet-sample" / "images").glob("*.JPEG"))[:count]
    if not found:
        sys.exit(f"no photos under {shared_data_dir()}; set IRAAS_TEST_DATA")
    return found


def run(images: int, repeats: int) -> dict:
    from iraas import aws
    from iraas.config import RESOURCE_ENV
    from iraas.images.jobs import ImageRequest, input_key, new_id
    from iraas.images.model.runtime import load_classifier
    from iraas.images.settings import load_image_settings
    from iraas.images.worker import Worker
    from iraas.local.provision import provision
    from iraas.local.template import load_template

    os.environ.update({**aws.local_credentials_env(), "AWS_DEFAULT_REGION": "us-east-1"})
    blobs = [(p.name, p.read_bytes()) for p in _photos(images)]
    with moto.mock_aws():
        aws.reset_clients()
        resources = provision(load_template(TEMPLATE), endpoint_url=None)
        env = {**os.environ, **{var: resources[lid] for lid, var in RESOURCE_ENV.items()},
               "IRAAS_HOME": str(SCRATCH / "worker-home")}
        env.pop("IRAAS_ENDPOINT_URL", None)
        settings = load_image_settings(env)
        classifier = load_classifier(settings.model_dir, model=settings.model)
        s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")

        def enqueue() -> None:
            for name, data in blobs:
                request_id = new_id()
                request = ImageRequest(request_id, name, settings.image_input_bucket, input_key("anonymous", request_id, name))
                s3.put_object(Bucket=request.bucket, Key=request.key, Body=data)
                sqs.send_message(QueueUrl=settings.request_queue_url, MessageBody=request.to_message())

        def drain(worker: Worker) -> float:
            enqueue()
            started = time.perf_counter()
            answered = 0
            while answered < len(blobs):
                answered += worker.poll_once(wait_s=0).answered
            return len(blobs) / (time.perf_counter() - started)

        def alone() -> float:
            started = time.perf_counter()
            data = [d for _, d in blobs]
            for i in range(0, len(data), 8):
                classifier.classify_bytes(data[i : i + 8])
            return len(data) / (time.perf_counter() - started)

        batched = Worker(settings, classifier)
        naive = Worker(dataclasses.replace(settings, worker=dataclasses.replace(settings.worker, batch_size=1)), classifier)
        alone()
        drain(batched)  # warm-up
        figures = {
            "classifier_alone_images_per_s": statistics.median(alone() for _ in range(repeats)),
            "worker_images_per_s": statistics.median(drain(batched) for _ in range(repeats)),
            "naive_worker_images_per_s": statistics.median(drain(naive) for _ in range(repeats)),
        }
    aws.reset_clients()
    figures = {k: round(v, 1) for k, v in figures.items()}
    figures["worker_share_of_classifier"] = round(
        figures["worker_images_per_s"] / figures["classifier_alone_images_per_s"], 2
    )
    figures["worker_vs_naive"] = round(figures["worker_images_per_s"] / figures["naive_worker_images_per_s"], 2)
    figures["images"] = images
    print(f"worker: {figures}", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT / "worker.json")
    args = parser.parse_args(argv)
    save_report(args.out, run(args.images, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
