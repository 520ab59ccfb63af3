"""iraas/images/results.py: the S3 result store (on moto, provisioned from template.yaml) and its
in-memory twin keep the same contract: not found until stored, and the first answer is final. What a
test sees of the real adapter it sees of the twin, so a unit test that uses the twin tests what
production does."""

from __future__ import annotations

import pytest

from iraas import aws
from iraas.images.jobs import ImageResult, new_id
from iraas.images.results import InMemoryResultStore, ResultStore, S3ResultStore


@pytest.fixture(params=["s3", "in-memory"])
def results(request, stack) -> ResultStore:
    if request.param == "s3":
        return S3ResultStore(aws.client(stack, "s3"), stack.image_output_bucket)
    return InMemoryResultStore()


def done(request_id: str, name: str = "cat.jpg", label: str = "tabby") -> ImageResult:
    return ImageResult(id=request_id, name=name, status="done", label=label)


def test_a_result_is_found_once_stored_and_the_first_answer_is_final(results: ResultStore) -> None:
    request_id = new_id()
    assert results.find(request_id, "cat.jpg") is None

    first, second = done(request_id), done(request_id, label="tiger cat")
    assert results.put_first(first, first.to_json()) is True
    assert results.put_first(second, second.to_json()) is False

    found = results.find(request_id, "cat.jpg")
    assert found is not None and found.label == "tabby"
    assert results.find(request_id, "dog.jpg") is None  # the same id for another file is another answer
