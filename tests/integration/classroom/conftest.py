"""Fixtures for the face pipeline on in-process moto: an enrolled class and the handler."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
HANDLER = REPO_ROOT / "functions" / "face_recognition" / "handler.py"


@pytest.fixture(scope="session")
def engine(faces_dir):
    from iraas.classroom.engines import warm_engine

    return warm_engine("dlib")


@pytest.fixture
def face_settings(stack):
    from iraas.classroom.settings import load_face_settings

    return load_face_settings()


@pytest.fixture
def store(face_settings):
    from iraas.classroom.student_store import student_store

    return student_store(face_settings)


@pytest.fixture
def enrolled_class(store, engine, classroom):
    """The class's records imported and its faces enrolled, as a user does it."""
    from iraas.classroom.enrol import enrol_photos
    from iraas.classroom.students import parse_students

    store.put_students(parse_students(classroom.students))
    for name, photos in classroom.enrolled.items():
        if name != "Kit Harington":  # enrolled later by the test that needs him
            enrol_photos(store, engine, name, photos)
    return store


@pytest.fixture
def face_handler(stack, engine):
    """functions/face_recognition/handler.py loaded as Lambda loads it, with the stack's settings."""
    spec = importlib.util.spec_from_file_location("face_recognition_handler", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def transactions_copy_each_table_once(monkeypatch):
    """moto's TransactWriteItems as the embedded stack serves it (iraas/local/moto_app.py's
    ``dynamodb_transaction_copy``): each table deep-copied once per call for the rollback, not once
    per action (one transaction of 100 students on a table of 2,000 took 5 s in-process). What a
    transaction writes is moto's own; tests/integration/local/test_moto_app.py compares the two."""
    import moto.dynamodb.models as ddb_models

    from iraas.local import moto_app

    moto_app.check_dynamodb_transaction_copy()
    monkeypatch.setattr(ddb_models, "copy", moto_app._COPY)
    monkeypatch.setattr(ddb_models.DynamoDBBackend, "transact_write_items", moto_app.transact_write_items)
