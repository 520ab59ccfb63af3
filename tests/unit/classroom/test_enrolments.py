"""iraas/classroom/enrolments.py: the student's name travels with an enrolment photo in its ASCII
metadata, whatever the name."""

from __future__ import annotations

import pytest

from iraas.classroom.enrolments import student_metadata, student_of


@pytest.mark.parametrize("name", ["Barack Obama", "Zoë Ångström", "李小龍", "\U0001d518" * 200, "a/b\n=?"])
def test_the_students_name_travels_in_the_photos_ascii_metadata(name):
    metadata = student_metadata(name)
    assert student_of(metadata) == name
    assert all(value.isascii() and len(key) + len(value) < 2048 for key, value in metadata.items())
    assert student_of({}) is None and student_of({"student": "%%%"}) is None
