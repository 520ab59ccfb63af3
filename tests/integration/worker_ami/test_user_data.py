"""The workers' user data (template.yaml's launch template) run by bash as an instance runs it at boot,
with a model of one's own in S3 (the embedded endpoint, moto): fetched with `iraas model fetch`,
named to the worker and the worker started when its sha256 is the one the stack names; the worker
not started, with a line that says why, when it is not.

What an instance has and a test machine has not is stood in for: the metadata service (curl),
systemd (systemctl) and syslog (logger) are scripts that write down how they were called, and the
paths under /etc and /opt point into a temporary folder."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from iraas.aws import local_credentials, local_credentials_env
from iraas.local.motoserver import MotoServer
from iraas.local.template import load_template
from tests.support.own_model import COLOURS, onnx_helpers, png, write_own_model

REPO_ROOT = Path(__file__).resolve().parents[3]
BUCKET = "models-of-ours"
URI = f"s3://{BUCKET}/team/colours.onnx"
STUBS = {
    "curl": 'echo "i-0123456789abcdef0"',
    "systemctl": 'echo "$@" >> "$CALLS"',
    "logger": 'echo "logger $*" >> "$CALLS"; echo "$*" >&2',
}


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The embedded endpoint with a model of one's own in a bucket; (endpoint URL, the .onnx's sha256)."""
    onnx_helpers()
    source = write_own_model(tmp_path_factory.mktemp("source"))
    with MotoServer() as moto:
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto.url, **local_credentials())
        s3.create_bucket(Bucket=BUCKET)
        for path in (source, source.with_suffix(".labels.txt")):
            s3.put_object(Bucket=BUCKET, Key=f"team/{path.name}", Body=path.read_bytes())
        yield moto.url, hashlib.sha256(source.read_bytes()).hexdigest()


def boot(tmp_path: Path, endpoint: str, uri: str, sha256: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the user data as the stack renders it with these parameters; returns the run and the calls file."""
    launch = load_template(REPO_ROOT / "template.yaml")["Resources"]["WorkerLaunchTemplate"]
    script = launch["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    values = {"WorkerModelS3Uri": uri, "WorkerModelSha256": sha256, "AWS::Region": "us-east-1"}
    script = re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: values.get(m[1], f"<{m[1]}>"), script)
    script = (script.replace("/etc/iraas", str(tmp_path / "etc/iraas"))
              .replace("/opt/iraas/venv/bin/iraas", f"{sys.executable} -m iraas.cli")
              .replace("/opt/iraas/own-model", str(tmp_path / "opt/iraas/own-model")))
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    calls = tmp_path / "calls"
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "CALLS": str(calls), "IRAAS_ENDPOINT_URL": endpoint,
           "IRAAS_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO_ROOT), **local_credentials_env()}
    done = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    return done, calls


def worker_env(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "etc/iraas/worker.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def test_a_model_whose_sha256_matches_is_fetched_named_to_the_worker_and_served(tmp_path, bucket) -> None:
    endpoint, sha256 = bucket
    done, calls = boot(tmp_path, endpoint, URI, sha256)
    assert done.returncode == 0, done.stderr
    model = tmp_path / "opt/iraas/own-model/colours.onnx"
    assert worker_env(tmp_path)["IRAAS_MODEL"] == str(model)
    assert calls.read_text() == "enable --now iraas-worker.service\n"
    # What the worker then loads from that environment answers with the model's own labels.
    from iraas.images.model.runtime import load_classifier

    classifier = load_classifier(Path("/nonexistent"), threads=1, model=worker_env(tmp_path)["IRAAS_MODEL"],
                                 runtime="onnxruntime")
    (answer,) = classifier.classify_bytes([png(COLOURS["poppy"])])
    assert answer.best.label == "poppy"  # type: ignore[union-attr]


def test_a_model_whose_sha256_differs_leaves_the_worker_stopped_and_says_why(tmp_path, bucket) -> None:
    endpoint, sha256 = bucket
    wrong = hashlib.sha256(b"the model the stack meant").hexdigest()
    done, calls = boot(tmp_path, endpoint, URI, wrong)
    assert done.returncode == 1
    assert f"iraas model fetch: configuration error: {URI}: its sha256 is {sha256}, not {wrong}" in done.stderr
    assert f"the worker is not started: the model {URI} was refused" in done.stderr
    assert "systemctl" not in calls.read_text() and "enable" not in calls.read_text()  # only the logger line
    assert "IRAAS_MODEL" not in worker_env(tmp_path)
    assert not any((tmp_path / "opt/iraas/own-model").iterdir())


def test_without_a_model_from_s3_the_worker_starts_on_the_amis_model(tmp_path, bucket) -> None:
    endpoint, _ = bucket
    done, calls = boot(tmp_path, endpoint, "", "")
    assert done.returncode == 0, done.stderr
    assert "IRAAS_MODEL" not in worker_env(tmp_path) and not (tmp_path / "opt").exists()
    assert calls.read_text() == "enable --now iraas-worker.service\n"
