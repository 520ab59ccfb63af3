"""End to end: `iraas up` with a webhook secret POSTs each answer to its callback once, signed, and a
callback its receiver did not take survives a restart of `iraas up` and is delivered after it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from harness.embedded import running_stack
from iraas.callbacks.signing import verify
from tests.support.receiver import receiving

pytestmark = pytest.mark.slow

SECRET = "end-to-end-callback-secret-0123"


def test_a_callback_is_posted_once_and_one_not_taken_is_delivered_after_a_restart(
    tmp_path: Path, model_path, photo
) -> None:
    home = tmp_path / "home"
    env = {"IRAAS_WEBHOOK_SECRET": SECRET, "IRAAS_CALLBACK_RETRY_BASE_S": "1", "IRAAS_LOCAL_FUNCTION_CONCURRENCY": "1"}
    with receiving([503] * 1000) as receiver:
        with running_stack(home, env, workers=1) as stack:
            first = requests.post(
                f"{stack.url}/v1/images?wait=60&name=first.jpg&callback={receiver.url}", data=photo.path.read_bytes(),
                headers={"Content-Type": "image/jpeg"}, timeout=90,
            )
            assert first.status_code == 200, first.text
            receiver.wait_for(2, timeout_s=60)  # the first try and a retry, both refused with a 503
        receiver.statuses.clear()  # the receiver is fixed while iraas up is stopped: 200 from now on
        refused = len(receiver.deliveries)

        with running_stack(home, env, workers=1) as stack:
            deliveries = receiver.wait_for(refused + 1, timeout_s=90)  # the kept job, after the restart
            second = requests.post(
                f"{stack.url}/v1/images?wait=60&name=second.jpg&callback={receiver.url}", data=photo.path.read_bytes(),
                headers={"Content-Type": "image/jpeg"}, timeout=90,
            )
            assert second.status_code == 200, second.text
            deliveries = receiver.wait_for(refused + 2, timeout_s=60)
            time.sleep(3)  # a repeat would come within its retry delay
            deliveries = list(receiver.deliveries)
            stats = requests.get(f"{stack.url}/v1/stats", timeout=10).json()

    answers = {answer["id"]: answer for answer in (first.json(), second.json())}
    ids = [d.headers["iraas-delivery"] for d in deliveries]
    assert ids == [first.json()["id"]] * (refused + 1) + [second.json()["id"]]  # exactly one taken per answer
    for delivery in deliveries:
        assert json.loads(delivery.body) == answers[delivery.headers["iraas-delivery"]]
        assert verify(SECRET.encode(), delivery.body, delivery.headers["iraas-signature"])
    assert stats["callbacks"] == {"pending": 0, "failed": 0}
