"""Listing students reads the table page by page, counts each one's faces, and stops at its bounds.

StudentStore is real; DynamoDB is the edge, faked as a low-level client whose scan answers in pages.
"""

from __future__ import annotations

from typing import Any

from iraas.classroom.student_store import DynamoStudentStore as StudentStore


class PagedScan:
    """A table of ``count`` students (student 3 has two faces), ``per_page`` items a Scan page."""

    def __init__(self, count: int, per_page: int) -> None:
        self.items = [
            {"name": {"S": f"S{n:03}"}, "id": {"S": str(n)}, "major": {"S": "Law"}, "year": {"S": "1"},
             **({"faces": {"BS": [b"a" * 512, b"b" * 512]}} if n == 3 else {})}
            for n in reversed(range(count))  # a Scan's order is not the names'
        ]
        self.per_page = per_page
        self.calls: list[dict] = []

    def scan(self, **kwargs: Any) -> dict:
        self.calls.append(kwargs)
        start = kwargs.get("ExclusiveStartKey", {"i": 0})["i"]
        page: dict = {"Items": self.items[start:start + self.per_page]}
        if start + self.per_page < len(self.items):
            page["LastEvaluatedKey"] = {"i": start + self.per_page}
        return page


def test_every_page_is_read_and_the_students_come_sorted_with_their_face_counts():
    db = PagedScan(count=10, per_page=3)

    listed, truncated = StudentStore(db, "Students").summaries(limit=100)

    assert [s.name for s in listed] == [f"S{n:03}" for n in range(10)] and not truncated
    assert [s.faces for s in listed if s.faces] == [2] and listed[3].name == "S003"
    assert len(db.calls) == 4 and all(c["ConsistentRead"] for c in db.calls)
    assert "faces" in str(db.calls[0]["ProjectionExpression"])  # counted here, never answered


def test_the_listing_stops_at_its_limit_or_its_pages_and_says_so():
    db = PagedScan(count=10, per_page=3)
    listed, truncated = StudentStore(db, "Students").summaries(limit=4)
    assert (len(listed), truncated, len(db.calls)) == (4, True, 2)

    db = PagedScan(count=10, per_page=3)
    listed, truncated = StudentStore(db, "Students").summaries(limit=100, max_pages=2)
    assert (len(listed), truncated, len(db.calls)) == (6, True, 2)
