"""Fixtures shared by the test tiers: the shared photos, the model, and a moto stack."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import moto  # noqa: F401 - must be imported before any boto3 client is created
import pytest

from harness.data import shared_data_dir
from harness.videos import make_classroom_video
from tests.support.web import load_app_module

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = shared_data_dir()


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
    from iraas.images.model.export import ensure_model
    from iraas.images.settings import default_model_dir

    return ensure_model(default_model_dir())


@pytest.fixture(scope="session")
def classifier(model_path: Path):
    from iraas.images.model.runtime import Classifier

    return Classifier(model_path, threads=0)


@pytest.fixture
def public_key(tmp_path: Path) -> Path:
    """An OpenStack operator's SSH public key, as a file (the deploy's tests)."""
    from tests.support.openstack import write_public_key

    return write_public_key(tmp_path)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from iraas.aws import local_credentials_env

    for name, value in {**local_credentials_env(), "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def stack(aws_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """template.yaml provisioned into moto in-process; yields the image service's checked settings."""
    from iraas import aws
    from iraas.config import RESOURCE_ENV
    from iraas.images.settings import load_image_settings
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
        # A developer's shell may have them.
        for name in ("IRAAS_API_KEY", "IRAAS_OPEN_COURSE_ENDPOINT", "IRAAS_WEBHOOK_SECRET", "IRAAS_CALLBACK_ALLOW"):
            monkeypatch.delenv(name, raising=False)
        yield load_image_settings()
        aws.reset_clients()


@pytest.fixture
def web_app(stack):
    """chalice_web/app.py loaded fresh (it is a Chalice project, not a package), on the moto stack."""
    module = load_app_module()
    yield module
    if module.service.cache_info().currsize:  # its threads, and its reply queue while the stack still exists
        module.service().close()


# ---- the classroom face pipeline ------------------------------------------------------------

FACES_DIR = DATA_DIR / "faces"

# Who is enrolled in the face tests (name -> enrolment photos) and which other photo of the same
# person goes into the videos, so that a video never shows the very photo that was enrolled.
ENROLLED = {
    "Barack Obama": ["obama/face_recognition-obama2.jpg", "obama/face_recognition-obama3.jpg"],
    "Joe Biden": ["biden/face_recognition-biden.jpg"],
    "Kit Harington": ["kit_harington/face_recognition-john1.jpeg"],
}
IN_VIDEO = {
    "Barack Obama": "obama/face_recognition-obama.jpg",
    "Joe Biden": "biden/face_recognition-biden2.jpg",
    "Kit Harington": "kit_harington/face_recognition-johnsnow_test1.jpg",
    "stranger": "paul_rudd/facenet-pytorch-1.jpg",  # never enrolled
}
STUDENTS = [
    {"id": "1001", "name": "Barack Obama", "major": "Law", "year": "senior"},
    {"id": "1002", "name": "Joe Biden", "major": "History, Politics", "year": 4},
    {"id": "1003", "name": "Kit Harington", "major": "Drama", "year": "junior"},
]


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES_DIR / "people").is_dir():
        pytest.skip(f"shared face photos not found at {FACES_DIR}; set IRAAS_TEST_DATA to its parent")
    pytest.importorskip("dlib", reason="the faces extra is not installed (pip install -e '.[faces]')")
    return FACES_DIR


@pytest.fixture(scope="session")
def classroom_videos(faces_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """one, two, nobody, unknown: short classroom videos whose first frame shows exactly that."""
    folder = tmp_path_factory.mktemp("classroom-videos")
    people = faces_dir / "people"
    return {
        "one": make_classroom_video(folder / "one.mp4", [people / IN_VIDEO["Barack Obama"]]),
        "two": make_classroom_video(
            folder / "two.mp4", [people / IN_VIDEO["Barack Obama"], people / IN_VIDEO["Joe Biden"]]
        ),
        "nobody": make_classroom_video(folder / "nobody.mp4", []),
        "unknown": make_classroom_video(folder / "unknown.mp4", [people / IN_VIDEO["stranger"]]),
        "kit": make_classroom_video(folder / "kit.mp4", [people / IN_VIDEO["Kit Harington"]]),
    }


EXPECTED_CSV = {
    "one": "name,major,year\nBarack Obama,Law,senior\n",
    "two": 'name,major,year\nBarack Obama,Law,senior\nJoe Biden,"History, Politics",4\n',
    "nobody": "name,major,year\n",
    "unknown": "name,major,year\n",
    "kit": "name,major,year\nKit Harington,Drama,junior\n",
}


@dataclass(frozen=True)
class Classroom:
    enrolled: dict[str, list[Path]]  # name -> enrolment photos
    students: list[dict]  # the course's records format
    videos: dict[str, Path]
    expected_csv: dict[str, str]


@pytest.fixture(scope="session")
def classroom(faces_dir: Path, classroom_videos: dict[str, Path]) -> Classroom:
    people = faces_dir / "people"
    return Classroom(
        enrolled={name: [people / p for p in photos] for name, photos in ENROLLED.items()},
        students=STUDENTS,
        videos=classroom_videos,
        expected_csv=EXPECTED_CSV,
    )
