"""iraas/images/jobs.py, keys, names and the message schema: user input never steers a key outside its prefix."""

from __future__ import annotations

import json

import pytest

from iraas.images.jobs import (
    ImageRequest,
    ImageResult,
    MalformedRequest,
    id_for_idempotency_key,
    input_key,
    input_prefix,
    is_valid_id,
    name_from_input_key,
    new_id,
    result_key,
    safe_name,
    stem,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("cat.jpg", "cat.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\photos\\my cat.JPG", "my_cat.JPG"),
        ("..", "image"),
        (".hidden.png", "hidden.png"),
        ("", "image"),
        (None, "image"),
        ("ünïcödé ☃.png", "n_c_d_.png"),
    ],
)
def test_file_names_are_reduced_to_a_safe_base_name(given, expected):
    assert safe_name(given) == expected


def test_long_names_keep_their_extension():
    name = safe_name("x" * 300 + ".jpeg")
    assert len(name) == 100 and name.endswith(".jpeg")


def test_stem_drops_the_extension_as_the_course_answer_does():
    assert stem("test_00.JPEG") == "test_00"
    assert stem("noext") == "noext"


def test_keys_are_built_from_ids_and_reject_anything_else():
    request_id = new_id()
    assert input_key("kaaaa", request_id, "../x/cat.jpg") == f"inputs/kaaaa/{request_id}/cat.jpg"
    assert result_key(request_id, "../a b.jpg") == f"results/a_b.jpg/{request_id}.json"
    assert name_from_input_key("kaaaa", request_id, input_key("kaaaa", request_id, "a b.jpg")) == "a_b.jpg"
    assert name_from_input_key("kaaaa", request_id, f"inputs/kaaaa/{new_id()}/a.jpg") is None
    for bad in ("../results", "A" * 32, "", request_id + "0"):
        with pytest.raises(ValueError):
            result_key(bad, "cat.jpg")


def test_an_input_is_found_only_under_the_caller_who_made_it():
    request_id = new_id()
    assert name_from_input_key("kbbbb", request_id, input_key("kaaaa", request_id, "cat.jpg")) is None
    for bad in ("", "..", "a/b", "k.1", "x" * 81):  # never a segment that leaves the caller's folder
        with pytest.raises(ValueError):
            input_prefix(bad, request_id)


def test_a_message_may_only_point_at_its_own_input_and_name_a_reply_queue():
    request_id = new_id()
    key = input_key("kaaaa", request_id, "cat.jpg")
    request = ImageRequest(request_id, "cat.jpg", "bucket", key, reply_to="https://q/1/r")
    assert ImageRequest.from_message(request.to_message()) == request
    for elsewhere in (input_key("kaaaa", request_id, "dog.jpg"), f"inputs/{request_id}/cat.jpg",
                      f"inputs/../{request_id}/cat.jpg", f"inputs/a/b/{request_id}/cat.jpg"):
        with pytest.raises(MalformedRequest, match="not the input of request"):
            ImageRequest.from_message(ImageRequest(request_id, "cat.jpg", "bucket", elsewhere).to_message())


def test_the_same_idempotency_key_gives_the_same_id_for_the_same_caller_only():
    assert id_for_idempotency_key("order-1", "kaaaa") == id_for_idempotency_key("order-1", "kaaaa")
    assert id_for_idempotency_key("order-1", "kaaaa") != id_for_idempotency_key("order-2", "kaaaa")
    assert id_for_idempotency_key("order-1", "kaaaa") != id_for_idempotency_key("order-1", "kbbbb")
    assert is_valid_id(id_for_idempotency_key("order-1", "anonymous"))
    for bad in ("", "has space", "x" * 129):
        with pytest.raises(ValueError):
            id_for_idempotency_key(bad, "kaaaa")
    with pytest.raises(ValueError):
        id_for_idempotency_key("order-1", "")


def test_a_request_survives_the_queue_round_trip():
    request_id = new_id()
    request = ImageRequest(request_id, "cat.jpg", "bucket", input_key("anonymous", request_id, "cat.jpg"))
    assert ImageRequest.from_message(request.to_message()) == request


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"v": 2, "id": "0" * 32}),
        json.dumps({"v": 1, "id": "0" * 32, "name": "x"}),
        json.dumps({"v": 1, "id": "zz", "name": "x", "bucket": "b", "key": "inputs/zz/x"}),
        json.dumps({"v": 1, "id": "0" * 32, "name": "x", "bucket": "b", "key": f"inputs/k1/{'1' * 32}/x"}),
    ],
)
def test_anything_else_on_the_queue_is_malformed(body):
    with pytest.raises(MalformedRequest):
        ImageRequest.from_message(body)


def test_results_serialise_without_fields_that_do_not_apply():
    failed = ImageResult.failed(new_id(), "x.jpg", "undecodable", "broken")
    data = json.loads(failed.to_json())
    assert data["status"] == "failed" and "label" not in data and "top5" not in data
    assert ImageResult.from_json(failed.to_json()) == failed
    assert "completed_at" not in failed.public()
