"""Fixtures of the image routes' tests: the web tier's test client, the stack's clients, a worker."""

from __future__ import annotations

import pytest
from chalice.test import Client

from iraas import aws
from iraas.images.worker import Worker
from tests.support.workers import polling_in_background


@pytest.fixture
def client(web_app):
    with Client(web_app.app) as client:
        yield client


@pytest.fixture
def s3(stack):
    return aws.client(stack, "s3")


@pytest.fixture
def sqs(stack):
    return aws.client(stack, "sqs")


@pytest.fixture
def running_worker(stack, classifier):
    """A worker polling in the background, as an instance of the app tier would."""
    with polling_in_background(Worker(stack, classifier)) as worker:
        yield worker
