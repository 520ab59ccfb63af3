"""A model of one's own from S3, fetched at a worker's start and checked against the sha256 the
stack names (``iraas model fetch``, run by the workers' user data: template.yaml's
``WorkerModelS3Uri`` and ``WorkerModelSha256``).

``s3://bucket/prefix/NAME.onnx`` comes with ``NAME.labels.txt`` beside it and, optionally,
``NAME.json`` (:mod:`.own`). The .onnx is hashed as it streams in; a file whose sha256 is not the
one given is thrown away and nothing is installed, so a worker never serves a model that the stack
did not name. The files are fetched and checked in a folder of their own, then renamed into
place, the .onnx last. Only the .onnx is pinned by its hash: its labels and settings are read as
the bucket holds them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from iraas import aws
from iraas.errors import ConfigError

from .models import OWN_SUFFIX
from .own import LABELS_SUFFIX, SETTINGS_SUFFIX, labels_file, load_own_model, settings_file

_S3_URI = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
# What S3 answers for an object that is not there: NoSuchKey where the reader may list the bucket,
# AccessDenied where it may not (the workers' role may read these three objects and list nothing).
_ABSENT = frozenset({"NoSuchKey", "404", "NotFound", "AccessDenied", "403"})


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/prefix/NAME.onnx``; ConfigError if it is not one."""
    match = _S3_URI.fullmatch(uri)
    name = PurePosixPath(match["key"]).name if match else ""
    if match is None or not name.endswith(OWN_SUFFIX) or name == OWN_SUFFIX:
        raise ConfigError(f"{uri!r} is not the S3 URI of a model: s3://bucket/prefix/NAME{OWN_SUFFIX}")
    return match["bucket"], match["key"]


def fetch_model(s3: Any, uri: str, sha256: str, into: Path) -> Path:
    """Download the model at ``uri`` (and its labels and settings) into the folder ``into``; returns
    the path of its .onnx there. ConfigError, installing nothing, when the .onnx's sha256 is not
    ``sha256``, its labels are missing, or the files do not read as a model (:func:`.own.load_own_model`;
    the graph is checked when the worker loads it)."""
    expected = sha256.strip().lower()
    if not _SHA256.fullmatch(expected):
        raise ConfigError(f"{sha256!r} is not a sha256: 64 hexadecimal digits (sha256sum NAME{OWN_SUFFIX})")
    bucket, key = parse_s3_uri(uri)
    stem = key.removesuffix(OWN_SUFFIX)
    into.mkdir(parents=True, exist_ok=True)
    # Everything is fetched and checked in a folder of its own, then renamed into place, the .onnx last.
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=into))
    try:
        staged = staging / PurePosixPath(key).name
        digest = _download(s3, bucket, key, staged)
        if digest is None:
            raise ConfigError(f"{uri}: no such object (or the workers' role may not read it)")
        if digest != expected:
            raise ConfigError(
                f"{uri}: its sha256 is {digest}, not {expected} as the stack names it (WorkerModelSha256); not using it"
            )
        if _download(s3, bucket, stem + LABELS_SUFFIX, labels_file(staged)) is None:
            raise ConfigError(f"{uri}: no s3://{bucket}/{stem}{LABELS_SUFFIX} beside it (one label per line)")
        has_settings = _download(s3, bucket, stem + SETTINGS_SUFFIX, settings_file(staged)) is not None
        load_own_model(staged)
        target = into / staged.name
        os.replace(labels_file(staged), labels_file(target))
        if has_settings:
            os.replace(settings_file(staged), settings_file(target))
        else:  # none in S3: none from an earlier fetch either
            settings_file(target).unlink(missing_ok=True)
        os.replace(staged, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _download(s3: Any, bucket: str, key: str, path: Path) -> str | None:
    """Stream ``s3://bucket/key`` into ``path``, readable by all (the worker runs as a user of its own);
    returns its sha256, or None if there is no such object."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if aws.error_code(exc) in _ABSENT:
            return None
        raise
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            digest.update(chunk)
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    path.chmod(0o644)
    return digest.hexdigest()
