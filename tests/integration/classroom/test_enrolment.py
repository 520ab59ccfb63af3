"""Enrolment as a user does it: `iraas students import`, `iraas faces enroll/import-encodings`, HTTP."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from chalice.test import Client

from iraas.classroom.gallery import from_bytes
from iraas.cli.main import main

pytestmark = pytest.mark.slow


def test_students_import_and_faces_enroll_from_the_command_line(stack, store, classroom, tmp_path, capsys):
    records = tmp_path / "students.json"
    records.write_text(json.dumps(classroom.students))
    assert main(["students", "import", str(records)]) == 0
    photos = [str(p) for p in classroom.enrolled["Barack Obama"]]
    assert main(["faces", "enroll", "Barack Obama", *photos]) == 0
    assert main(["faces", "enroll", "Barack Obama", *photos]) == 0  # again: still two descriptors

    out = capsys.readouterr().out
    assert "imported 3 students" in out and "(3 new, 0 changed, 0 unchanged)" in out
    assert {n: len(f) for n, f in store.faces().items()} == {"Barack Obama": 2}
    assert store.records(["Barack Obama", "Joe Biden"])["Joe Biden"].major == "History, Politics"
    # Importing the records again keeps the enrolled faces, and writes nothing: nothing changed.
    assert main(["students", "import", str(records)]) == 0
    assert "(0 new, 0 changed, 3 unchanged)" in capsys.readouterr().out
    assert len(store.faces()["Barack Obama"]) == 2


def test_a_photo_with_two_faces_cannot_enrol_one_person(stack, store, faces_dir, capsys):
    assert main(["faces", "enroll", "Barack Obama", str(faces_dir / "group" / "face_recognition-two_people.jpg")]) == 1
    assert "found 2 faces" in capsys.readouterr().err
    assert store.faces() == {}


def test_a_bad_students_file_is_refused_with_the_reason(stack, tmp_path, capsys):
    records = tmp_path / "students.json"
    records.write_text(json.dumps([{"id": 1, "name": "Ada"}]))
    assert main(["students", "import", str(records)]) == 1
    assert "student 0 lacks major, year" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["pickle", "json", "npz"])
def test_a_face_recognition_encoding_file_is_imported(stack, store, tmp_path, fmt, capsys):
    rng = np.random.default_rng(1)
    vectors = [rng.normal(0, 0.1, 128) for _ in range(3)]
    names = ["Barack Obama", "Barack Obama", "Joe Biden"]
    path = tmp_path / f"encodings.{fmt}"
    if fmt == "pickle":  # what face_recognition's example scripts write
        path.write_bytes(pickle.dumps({"encoding": vectors, "name": names}))
    elif fmt == "json":
        path.write_text(json.dumps({"encoding": [v.tolist() for v in vectors], "name": names}))
    else:
        with open(path, "wb") as f:
            np.savez(f, name=np.array(names), encoding=np.stack(vectors))

    assert main(["faces", "import-encodings", str(path)]) == 0

    faces = store.faces()
    assert {n: len(f) for n, f in faces.items()} == {"Barack Obama": 2, "Joe Biden": 1}
    assert np.allclose(from_bytes(faces["Joe Biden"][0]), vectors[2], atol=1e-6)
    assert capsys.readouterr().out == "Barack Obama\t2\nJoe Biden\t1\n"


def test_an_encoding_file_that_would_run_code_is_refused_and_nothing_runs(stack, store, tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w').write('x')",))

    path = tmp_path / "encodings.pickle"
    path.write_bytes(pickle.dumps({"name": ["x"], "encoding": [Exploit()]}))

    assert main(["faces", "import-encodings", str(path)]) == 1
    assert "builtins.eval" in capsys.readouterr().err
    assert not marker.exists()
    assert store.faces() == {}


def test_students_and_videos_over_http(stack, web_app, store, face_settings, classroom):
    from iraas import aws

    with Client(web_app.app) as client:
        answer = client.http.post("/v1/students", headers={"Content-Type": "application/json"},
                                  body=json.dumps(classroom.students))
        assert (answer.status_code, answer.json_body) == (200, {"imported": 3, "new": 3, "changed": 0, "unchanged": 0})
        bad = client.http.post("/v1/students", headers={"Content-Type": "application/json"}, body=b"[{}]")
        assert bad.status_code == 400 and bad.json_body["error"]["code"] == "invalid_students"

        video = classroom.videos["one"].read_bytes()
        answer = client.http.post("/v1/videos?name=../../Room 7.mp4", headers={"Content-Type": "video/mp4"}, body=video)
        assert answer.status_code == 202
        video_id = answer.json_body["video"]
        assert answer.json_body == {"video": video_id, "name": "../../Room 7.mp4", "csv": "Room 7.csv", "status": "queued",
                                    "attendance": f"/v1/videos/{video_id}/attendance"}
        assert answer.headers["Location"] == f"/v1/videos/{video_id}/csv"
        key = f"videos/anonymous/{video_id}.mp4"  # no keys configured: the one anonymous caller
        stored = aws.client(face_settings, "s3").get_object(Bucket=face_settings.video_input_bucket, Key=key)
        assert stored["Body"].read() == video

        assert client.http.get(f"/v1/videos/{video_id}/csv").status_code == 404  # not processed yet
        aws.client(face_settings, "s3").put_object(
            Bucket=face_settings.video_output_bucket, Key=f"videos/anonymous/{video_id}.csv", Body=b"name,major,year\n"
        )
        answer = client.http.get(f"/v1/videos/{video_id}/csv")
        assert (answer.status_code, answer.body) == (200, b"name,major,year\n")
        assert answer.headers["Content-Disposition"] == f'attachment; filename="{video_id}.csv"'  # no name kept

        notvideo = client.http.post("/v1/videos?name=x.exe", headers={"Content-Type": "video/mp4"}, body=b"x")
        assert notvideo.status_code == 400 and notvideo.json_body["error"]["code"] == "not_a_video"
