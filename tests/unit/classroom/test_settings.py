"""iraas/classroom/settings.py: the face settings are optional for the image tiers, read the
engine's tolerance and margin (its defaults unless set), and name a missing resource."""

from __future__ import annotations

import pytest

from iraas.classroom.engines import ENGINES
from iraas.classroom.settings import load_face_settings
from iraas.errors import ConfigError


def test_face_settings_read_the_tolerance_and_name_a_missing_resource(tmp_path):
    env = {"IRAAS_HOME": str(tmp_path), "IRAAS_STUDENTS_TABLE": "t", "IRAAS_FACE_TOLERANCE": "0.5"}
    settings = load_face_settings(env)
    assert (settings.students_table, settings.tolerance) == ("t", 0.5)
    assert load_face_settings({"IRAAS_HOME": str(tmp_path)}).tolerance == ENGINES["dlib"].default_tolerance
    with pytest.raises(ConfigError, match="IRAAS_VIDEO_OUTPUT_BUCKET is not set"):
        settings.require("students_table", "video_output_bucket")
    with pytest.raises(ConfigError, match="IRAAS_FACE_TOLERANCE=7"):
        load_face_settings({**env, "IRAAS_FACE_TOLERANCE": "7"})


def test_the_dlib_engine_defaults_to_0_6_and_a_margin_and_the_margin_can_be_set(tmp_path):
    assert (ENGINES["dlib"].default_tolerance, ENGINES["dlib"].default_margin) == (0.6, 0.92)
    assert ENGINES["facenet"].default_tolerance != ENGINES["dlib"].default_tolerance
    settings = load_face_settings({"IRAAS_HOME": str(tmp_path)})
    assert (settings.tolerance, settings.margin) == (0.6, 0.92)
    assert load_face_settings({"IRAAS_HOME": str(tmp_path), "IRAAS_FACE_MARGIN": "1"}).margin == 1.0
    with pytest.raises(ConfigError, match="IRAAS_FACE_MARGIN=1.5"):
        load_face_settings({"IRAAS_HOME": str(tmp_path), "IRAAS_FACE_MARGIN": "1.5"})


def test_the_detection_pixel_cap_is_4k_by_default_and_checked(tmp_path):
    home = {"IRAAS_HOME": str(tmp_path)}
    assert load_face_settings(home).max_detect_pixels == 3840 * 2160
    assert load_face_settings({**home, "IRAAS_MAX_DETECT_PIXELS": "2073600"}).max_detect_pixels == 1920 * 1080
    with pytest.raises(ConfigError, match="IRAAS_MAX_DETECT_PIXELS=1000"):
        load_face_settings({**home, "IRAAS_MAX_DETECT_PIXELS": "1000"})  # below 320 x 240: no face would be found
    with pytest.raises(ConfigError, match="IRAAS_MAX_DETECT_PIXELS"):
        load_face_settings({**home, "IRAAS_MAX_DETECT_PIXELS": "many"})
