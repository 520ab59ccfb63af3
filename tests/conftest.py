"""Fixtures shared by the test tiers: the shared photos, the model, and a moto stack."""

from __future__ import annotations

import csv
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import moto  # noqa: F401 - must be imported before any boto3 client is created

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("IRAAS_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    wnid: str
    class_index: int
    label: str


@pytest.fixture(scope="session")
def imagenet_sample() -> list[LabelledPhoto]:
    """The 500 labelled ImageNet photos of the shared data (skips if it is absent)."""
    folder = DATA_DIR / "imagenet-sample"
    if not (folder / "labels.csv").is_file():
        pytest.skip(f"shared test data not found at {folder}; set IRAAS_TEST_DATA to its parent")
    images = folder / "images" if (folder / "images").is_dir() else folder
    with open(folder / "labels.csv", newline="") as f:
        return [
            LabelledPhoto(images / row["file"], row["wnid"], int(row["class_index"]), row["label"])
            for row in csv.DictReader(f)
        ]


@pytest.fixture(scope="session")
def photo(imagenet_sample: list[LabelledPhoto]) -> LabelledPhoto:
    """One real photo the classifier gets right (a tench)."""
    return next(p for p in imagenet_sample if p.class_index == 0)


@pytest.fixture(scope="session")
def model_path() -> Path:
    from iraas.classify.export import ensure_model
    from iraas.config import default_model_dir

    return ensure_model(default_model_dir())


@pytest.fixture(scope="session")
def classifier(model_path: Path):
    from iraas.classify.runtime import Classifier

    return Classifier(model_path, threads=0)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def stack(aws_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """template.yaml provisioned into moto in-process; yields the checked Settings."""
    from iraas import aws
    from iraas.config import RESOURCE_ENV, load_settings
    from iraas.local.provision import provision
    from iraas.local.template import load_template

    with moto.mock_aws():
        aws.reset_clients()
        resources = provision(
            load_template(REPO_ROOT / "template.yaml"), endpoint_url=None, region="us-east-1"
        )
        for logical_id, var in RESOURCE_ENV.items():
            monkeypatch.setenv(var, resources[logical_id])
        monkeypatch.setenv("IRAAS_HOME", str(tmp_path / "home"))
        monkeypatch.delenv("IRAAS_ENDPOINT_URL", raising=False)
        yield load_settings()
        aws.reset_clients()


@pytest.fixture
def web_app(stack):
    """chalice_web/app.py loaded fresh (it is a Chalice project, not a package), on the moto stack."""
    spec = importlib.util.spec_from_file_location(
        "iraas_chalice_web_app", REPO_ROOT / "chalice_web" / "app.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
