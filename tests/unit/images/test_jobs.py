"""iraas/images/jobs.py, keys, names and the message schema: user input never steers a key outside its prefix."""

from __future__ import annotations

import base64
import json

import pytest

from iraas.images.jobs import (
    CARRY_LIMIT,
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


def small_request(**fields) -> ImageRequest:
    request_id = new_id()
    return ImageRequest(request_id, "cat.jpg", "bucket", input_key("anonymous", request_id, "cat.jpg"),
                        reply_to="https://sqs.us-east-1.amazonaws.com/123456789012/iraas-reply-0f3c", **fields)


def test_a_small_image_rides_in_its_message_within_the_first_billed_64_kib():
    request = small_request()
    image = bytes(range(256)) * 100  # 25,600 bytes
    carried = request.carrying(image)
    assert carried.carried_image() == image
    assert len(carried.to_message()) <= CARRY_LIMIT == 64 * 1024
    assert ImageRequest.from_message(carried.to_message()) == carried
    # The largest image that fits leaves the message at the limit, or a few bytes under (base64 comes in fours).
    room = CARRY_LIMIT - len(request.to_message()) - len(',"image_b64":""')
    largest = room // 4 * 3
    assert CARRY_LIMIT - 3 <= len(request.carrying(b"x" * largest).to_message()) <= CARRY_LIMIT
    assert request.carrying(b"x" * (largest + 1)) == request  # over: it points at the input only
    assert 47_000 < largest < 49_000


def test_ten_carrying_messages_fit_one_send_message_batch():
    from iraas.queues import BATCH_LIMIT

    assert CARRY_LIMIT * BATCH_LIMIT <= 1024 * 1024  # SendMessageBatch's limit on the sum of its messages


def test_a_message_without_an_image_is_read_as_before_and_points_at_its_input():
    request = small_request()
    message = json.loads(request.to_message())
    assert "image_b64" not in message  # the schema is v1 still: an older worker reads it
    parsed = ImageRequest.from_message(json.dumps(message))
    assert parsed.image_b64 is None and parsed.carried_image() is None


@pytest.mark.parametrize("garbled", ["not base64!", "QUJ", "QUJD\u00e9", "QUJDRA==QUJD"])
def test_garbled_carried_bytes_are_malformed_never_a_crash(garbled):
    body = json.dumps({**json.loads(small_request().to_message()), "image_b64": json.loads(f'"{garbled}"')})
    request = ImageRequest.from_message(body)  # the request stands: its failure is recorded under its id
    with pytest.raises(MalformedRequest, match="not base64"):
        request.carried_image()


@pytest.mark.parametrize("value", [123, ["QUJD"], {"b": "QUJD"}, True])
def test_carried_bytes_that_are_not_a_string_make_the_message_malformed(value):
    body = json.dumps({**json.loads(small_request().to_message()), "image_b64": value})
    with pytest.raises(MalformedRequest, match="image_b64"):
        ImageRequest.from_message(body)


def test_carried_bytes_are_standard_base64():
    image = b"\xff\xd8\xff\xe0" + bytes(range(200))
    carried = small_request().carrying(image)
    assert carried.image_b64 == base64.b64encode(image).decode("ascii")


def test_a_request_asking_for_top_keeps_it_through_the_queue_and_one_that_does_not_carries_no_field():
    asking = small_request(top=12)
    assert ImageRequest.from_message(asking.to_message()).top == 12
    assert "top" not in json.loads(small_request().to_message())


@pytest.mark.parametrize("top", [0, 21, "5", 2.5, True, [5]])
def test_a_top_outside_one_to_twenty_makes_the_message_malformed(top):
    data = json.loads(small_request().to_message())
    with pytest.raises(MalformedRequest):
        ImageRequest.from_message(json.dumps({**data, "top": top}))


def test_an_answer_lists_top_only_when_its_request_asked():
    class Ranked:
        def to_dict(self, top=None):
            data = {"label": "tabby", "wnid": "n02123045", "confidence": 0.5, "top5": [{"label": "tabby"}] * 5}
            if top is not None:
                data["top"] = [{"label": "tabby"}] * top
            return data

    asked = ImageResult.done(small_request(top=7), Ranked())
    assert len(asked.public()["top"]) == 7 and ImageResult.from_json(asked.to_json()) == asked
    assert "top" not in ImageResult.done(small_request(), Ranked()).public()


def test_an_answer_from_a_model_without_wordnet_ids_leaves_wnid_out_and_lists_what_it_has():
    from iraas.images.model.runtime import Classification, Prediction

    ranked = tuple(Prediction(label, None, confidence, i) for i, (label, confidence) in
                   enumerate([("poppy", 0.7), ("fern", 0.2), ("sky", 0.1)]))
    answer = ImageResult.done(small_request(top=10), Classification(ranked))
    public = answer.public()
    assert "wnid" not in public  # left out, not null
    assert public["label"] == "poppy" and [p["label"] for p in public["top5"]] == ["poppy", "fern", "sky"]
    assert all("wnid" not in p for p in public["top5"] + public["top"]) and len(public["top"]) == 3
    assert ImageResult.from_json(answer.to_json()) == answer
    # An ImageNet model's answer keeps its wnid where it was.
    imagenet = ImageResult.done(small_request(), Classification((Prediction("tabby", "n02123045", 0.9, 281),)))
    assert list(imagenet.public())[:6] == ["id", "name", "status", "label", "wnid", "confidence"]
