"""Put the state file's data back into a freshly provisioned moto, before it serves anything."""

from __future__ import annotations

import datetime

import moto.sqs.models as sqs_models

from iraas.local.durable import Restored
from iraas.local.durable.capture import Scope, dynamodb_backend, s3_backend, sqs_backend
from iraas.local.durable.store import StateStore


def restore(store: StateStore, scope: Scope) -> tuple[Restored, dict[str, dict[str, int]]]:
    """Load everything in ``store`` that belongs to ``scope``; return the counts and, per queue, the
    messages put back with their receive counts (what the store holds from now on). Objects come
    back without firing their bucket's event notifications: the events they caused are queued
    messages, restored as they were."""
    objects = items = messages = 0
    gone_objects: list[tuple[str, str]] = []
    gone_items: list[tuple[str, str]] = []
    gone_messages: list[tuple[str, str]] = []
    s3 = s3_backend(scope)
    for obj in store.objects():
        if obj.bucket not in scope.buckets:
            gone_objects.append((obj.bucket, obj.key))
            continue
        key = s3.put_object(obj.bucket, obj.key, obj.body, disable_notification=True)
        key.set_metadata(dict(obj.metadata))
        key.last_modified = datetime.datetime.fromtimestamp(obj.last_modified, datetime.UTC).replace(tzinfo=None)
        objects += 1
    dynamodb = dynamodb_backend(scope)
    for item in store.items():
        if item.table not in scope.tables:
            gone_items.append((item.table, item.key))
            continue
        dynamodb.put_item(item.table, item.item)
        items += 1
    sqs = sqs_backend(scope)
    ids: dict[str, dict[str, int]] = {}
    for stored in store.messages():
        queue = sqs.queues.get(stored.queue) if stored.queue in scope.queues else None
        if queue is None:  # also a reply queue of a web process that is gone
            gone_messages.append((stored.queue, stored.id))
            continue
        message = sqs_models.Message(stored.id, stored.body)
        message.message_attributes = stored.attributes
        message.sent_timestamp = stored.sent_timestamp  # type: ignore[assignment]
        message.approximate_receive_count = stored.receive_count
        message.group_id = stored.group_id
        message.deduplication_id = stored.deduplication_id
        queue.add_message(message)  # visible at once, as after its visibility timeout
        ids.setdefault(stored.queue, {})[stored.id] = stored.receive_count
        messages += 1
    with store.transaction() as tx:  # what cannot come back is not kept either
        for bucket, key in gone_objects:
            tx.delete_object(bucket, key)
        for table, key in gone_items:
            tx.delete_item(table, key)
        for queue_name, message_id in gone_messages:
            tx.delete_message(queue_name, message_id)
    dropped = len(gone_objects) + len(gone_items) + len(gone_messages)
    return Restored(objects, items, messages, dropped), ids
