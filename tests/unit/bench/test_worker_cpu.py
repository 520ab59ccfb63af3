"""bench/worker_cpu.py's floor: the worker's calls per image priced at boto3's CPU per call of their
kind, worked out by hand."""

from __future__ import annotations

import pytest

from bench.worker_cpu import boto3_floor_ms

PER_CALL = {"s3.PutObject": 1.0, "s3.GetObject": 2.0, "sqs.ReceiveMessage": 0.5}


def test_each_operation_is_priced_at_its_own_kind_of_call() -> None:
    by_operation = {"s3.PutObject": 1.0, "s3.GetObject": 0.75, "sqs.ReceiveMessage": 0.125}
    assert boto3_floor_ms(by_operation, PER_CALL) == pytest.approx(1.0 + 1.5 + 0.0625, abs=0.01)


def test_calls_not_timed_are_priced_as_a_get_on_s3_and_a_receive_on_sqs() -> None:
    by_operation = {"s3.HeadObject": 0.5, "sqs.DeleteMessageBatch": 0.25, "sqs.SendMessageBatch": 0.25}
    assert boto3_floor_ms(by_operation, PER_CALL) == pytest.approx(0.5 * 2.0 + 0.5 * 0.5, abs=0.01)


def test_no_calls_cost_nothing() -> None:
    assert boto3_floor_ms({}, PER_CALL) == 0
