"""iraas/local/durable/store.py: the state file keeps objects' bytes and metadata and the queues'
message order, and a file of another kind is refused, saying what to do."""

from __future__ import annotations

import pytest

from iraas.local.durable.store import StateError, StateStore, StoredMessage, StoredObject


def test_the_store_keeps_bytes_metadata_and_message_order(tmp_path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    with store.transaction() as tx:
        tx.put_object(StoredObject("b", "k", b"\x00\xff", {"Content-Type": "image/png"}, 1.5))
        for i in (3, 1, 2):
            tx.put_message(StoredMessage("q", f"m{i}", f"body {i}", {"bin": {"BinaryValue": b"\x01"}}, 10, 0))
    store.close()
    again = StateStore(tmp_path / "state.sqlite")
    assert [(o.key, o.body, o.metadata) for o in again.objects()] == [("k", b"\x00\xff", {"Content-Type": "image/png"})]
    messages = list(again.messages())
    assert [m.id for m in messages] == ["m3", "m1", "m2"]  # the order they were queued in
    assert messages[0].attributes == {"bin": {"BinaryValue": b"\x01"}}


def test_a_state_file_of_another_kind_is_refused_with_what_to_do(tmp_path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match="--fresh"):
        StateStore(path)
