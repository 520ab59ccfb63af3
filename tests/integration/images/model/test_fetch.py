"""iraas/images/model/fetch.py and ``iraas model fetch``: a model of one's own from S3 (moto), as a
worker's user data fetches it at its start: installed when its .onnx's sha256 is the one the stack
names, refused (and nothing installed) when it is not, or when its labels are missing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest

from iraas import aws
from iraas.errors import ConfigError
from iraas.images.model.fetch import fetch_model, parse_s3_uri
from tests.support.cli import run
from tests.support.own_model import onnx_helpers, write_own_model

BUCKET = "models-of-our-own"
URI = f"s3://{BUCKET}/team/colours.onnx"


@pytest.fixture
def s3(aws_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A bucket holding a model of one's own (its .onnx, labels and JSON) under team/."""
    onnx_helpers()
    monkeypatch.setenv("IRAAS_HOME", str(tmp_path / "home"))  # no running stack's endpoint
    monkeypatch.delenv("IRAAS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        aws.reset_clients()
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        source = write_own_model(tmp_path / "source", settings={"input_size": 224, "resize": 240})
        for path in (source, source.with_suffix(".labels.txt"), source.with_suffix(".json")):
            client.put_object(Bucket=BUCKET, Key=f"team/{path.name}", Body=path.read_bytes())
        yield client
    aws.reset_clients()


def sha256_of(s3: Any, key: str = "team/colours.onnx") -> str:
    return hashlib.sha256(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).hexdigest()


def test_a_model_whose_sha256_matches_is_installed_with_its_labels_and_settings(s3: Any, tmp_path: Path) -> None:
    into = tmp_path / "own-model"
    path = fetch_model(s3, URI, sha256_of(s3).upper(), into)  # as sha256sum prints it, or in capitals
    assert path == into / "colours.onnx"
    assert sorted(p.name for p in into.iterdir()) == ["colours.json", "colours.labels.txt", "colours.onnx"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256_of(s3)
    assert (into / "colours.labels.txt").read_text() == "sky\nfern\npoppy\n"
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in into.iterdir())  # the worker's user reads them


def test_a_model_whose_sha256_differs_is_refused_and_nothing_is_installed(s3: Any, tmp_path: Path) -> None:
    into = tmp_path / "own-model"
    wrong = hashlib.sha256(b"another model").hexdigest()
    with pytest.raises(ConfigError) as caught:
        fetch_model(s3, URI, wrong, into)
    assert str(caught.value) == (
        f"{URI}: its sha256 is {sha256_of(s3)}, not {wrong} as the stack names it (WorkerModelSha256); not using it"
    )
    assert list(into.iterdir()) == []  # not even a part of a file


def test_a_changed_object_is_refused_over_the_model_fetched_before(s3: Any, tmp_path: Path) -> None:
    into = tmp_path / "own-model"
    expected = sha256_of(s3)
    fetch_model(s3, URI, expected, into)
    before = (into / "colours.onnx").read_bytes()
    s3.put_object(Bucket=BUCKET, Key="team/colours.onnx", Body=before + b"\0")  # someone replaced it
    with pytest.raises(ConfigError, match="its sha256 is"):
        fetch_model(s3, URI, expected, into)
    assert (into / "colours.onnx").read_bytes() == before


def test_labels_are_required_and_settings_optional(s3: Any, tmp_path: Path) -> None:
    into = tmp_path / "own-model"
    s3.delete_object(Bucket=BUCKET, Key="team/colours.json")
    into.mkdir()
    (into / "colours.json").write_text('{"input_size": 299}')  # an earlier fetch's settings
    fetch_model(s3, URI, sha256_of(s3), into)
    assert not (into / "colours.json").exists()  # the defaults now, as in S3
    s3.delete_object(Bucket=BUCKET, Key="team/colours.labels.txt")
    with pytest.raises(ConfigError, match=rf"^{URI}: no s3://{BUCKET}/team/colours.labels.txt beside it"):
        fetch_model(s3, URI, sha256_of(s3), tmp_path / "again")


def test_files_that_do_not_read_as_a_model_are_refused(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="team/colours.json", Body=b'{"mean": [123.7, 116.3, 103.5]}')
    with pytest.raises(ConfigError, match=r"colours.json: mean is \[123.7, 116.3, 103.5\]"):
        fetch_model(s3, URI, sha256_of(s3), tmp_path / "own-model")
    assert list((tmp_path / "own-model").iterdir()) == []


@pytest.mark.parametrize("uri", ["s3://b/x.onnx", f"https://{BUCKET}/colours.onnx", f"s3://{BUCKET}/colours.pt",
                                 f"s3://{BUCKET}/team/.onnx"])
def test_an_address_that_is_no_models_is_refused(uri: str) -> None:
    with pytest.raises(ConfigError, match="is not the S3 URI of a model"):
        parse_s3_uri(uri)


def test_iraas_model_fetch_prints_the_path_or_one_line_and_status_2(s3: Any, tmp_path: Path, capsys) -> None:
    into = tmp_path / "own-model"
    assert run(capsys, "model", "fetch", URI, "--sha256", sha256_of(s3), "--into", str(into)) == (
        0, f"{into / 'colours.onnx'}\n", "")
    code, out, err = run(capsys, "model", "fetch", URI, "--sha256", "0" * 64, "--into", str(tmp_path / "other"))
    assert (code, out) == (2, "")
    assert err == f"iraas model fetch: configuration error: {URI}: its sha256 is {sha256_of(s3)}, not {'0' * 64} " \
        "as the stack names it (WorkerModelSha256); not using it\n"
    code, _, err = run(capsys, "model", "fetch", f"s3://{BUCKET}/team/missing.onnx", "--sha256", "0" * 64,
                       "--into", str(tmp_path / "other"))
    assert code == 2 and err.endswith("missing.onnx: no such object (or the workers' role may not read it)\n")
