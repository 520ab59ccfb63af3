"""Videos over HTTP are their caller's: two clients with their own API keys, the real face handler
between upload and CSV, on in-process moto."""

from __future__ import annotations

import pytest
from chalice.test import Client

from iraas import aws
from iraas.local.lambda_runner import LocalContext
from iraas.web.auth import caller_identity, load_auth_settings
from tests.support.events import s3_event
from tests.support.segments import run_segments

pytestmark = pytest.mark.slow

ALICE, BOB = "alice-key-0123456789abcdef", "bob-key-0123456789abcdef"


@pytest.fixture
def two_callers(monkeypatch, stack):
    monkeypatch.setenv("IRAAS_API_KEY", f"{ALICE},{BOB}")  # after the stack, which clears a developer's own


def post_video(client: Client, key: str | None, query: str, body: bytes, content_type: str = "video/mp4"):
    headers = {"Content-Type": content_type, **({"x-api-key": key} if key else {})}
    return client.http.post(f"/v1/videos{query}", headers=headers, body=body)


def get_csv(client: Client, key: str | None, video: str):
    return client.http.get(f"/v1/videos/{video}/csv", headers={"x-api-key": key} if key else {})


def owner(key: str) -> str:
    return caller_identity(load_auth_settings(), {"x-api-key": key}, {})


@pytest.mark.usefixtures("two_callers")
def test_a_video_and_its_csv_are_the_uploaders_alone_named_as_the_user_named_the_video(
    web_app, face_handler, face_settings, enrolled_class, classroom
):
    s3 = aws.client(face_settings, "s3")
    video = classroom.videos["two"].read_bytes()
    with Client(web_app.app) as client:
        sent = post_video(client, ALICE, "?name=Room%20101/two%20people.mp4", video)
        assert sent.status_code == 202
        answer = sent.json_body
        video_id = answer["video"]
        assert answer == {"video": video_id, "name": "Room 101/two people.mp4", "csv": "two people.csv",
                          "status": "queued", "attendance": f"/v1/videos/{video_id}/attendance"}
        assert sent.headers["Location"] == f"/v1/videos/{video_id}/csv"
        key = f"videos/{owner(ALICE)}/{video_id}.mp4"  # of the service's making; the name is metadata
        assert s3.get_object(Bucket=face_settings.video_input_bucket, Key=key)["Body"].read() == video
        assert get_csv(client, ALICE, video_id).status_code == 404  # not processed yet

        face_handler.lambda_handler(
            s3_event(face_settings.video_input_bucket, key, len(video)), LocalContext("FaceRecognitionFunction", 300)
        )

        mine = get_csv(client, ALICE, video_id)
        assert mine.status_code == 200 and mine.body.decode() == classroom.expected_csv["two"]
        assert mine.headers["Content-Disposition"] == 'attachment; filename="two people.csv"'
        assert (mine.headers["X-Content-Type-Options"], mine.headers["Cache-Control"]) == ("nosniff", "no-store")
        theirs = get_csv(client, BOB, video_id)
        assert theirs.status_code == 404 and theirs.json_body["error"]["code"] == "not_found"

        # The whole lecture's attendance, once its segment is observed: the uploader's alone too.
        path = f"/v1/videos/{video_id}/attendance"
        assert client.http.get(path, headers={"x-api-key": ALICE}).status_code == 404  # not yet
        run_segments(face_handler, face_settings)
        report = client.http.get(path, headers={"x-api-key": ALICE})
        assert report.status_code == 200 and report.json_body["video"] == "Room 101/two people.mp4"
        assert {s["name"] for s in report.json_body["students"]} == {"Barack Obama", "Joe Biden"}
        assert client.http.get(path, headers={"x-api-key": BOB}).status_code == 404
        assert client.http.get(f"/v1/videos/{video_id}/unknown/0", headers={"x-api-key": ALICE}).status_code == 404

        # The same name from another caller is another video; the first one's CSV stays as it was.
        again = post_video(client, BOB, "?name=Room%20101/two%20people.mp4", classroom.videos["one"].read_bytes())
        assert again.status_code == 202 and again.json_body["video"] != video_id
        assert get_csv(client, ALICE, video_id).body.decode() == classroom.expected_csv["two"]


def test_uploads_without_a_name_are_each_their_own_video(stack, web_app, face_settings):
    with Client(web_app.app) as client:  # no keys: loopback development, one anonymous caller
        first = post_video(client, None, "", b"one", "video/quicktime").json_body
        second = post_video(client, None, "", b"two", "video/quicktime").json_body
        assert first["video"] != second["video"]
        assert (first["name"], first["csv"]) == (None, f"{first['video']}.csv")
        s3 = aws.client(face_settings, "s3")
        listed = s3.list_objects_v2(Bucket=face_settings.video_input_bucket, Prefix="videos/anonymous/")
        assert sorted(o["Key"] for o in listed["Contents"]) == sorted(
            f"videos/anonymous/{a['video']}.mov" for a in (first, second)
        )
        untyped = post_video(client, None, "", b"x", "application/octet-stream")
        assert untyped.status_code == 400 and untyped.json_body["error"]["code"] == "not_a_video"
        assert get_csv(client, None, "not-an-id").status_code == 404
