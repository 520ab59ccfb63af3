"""iraas/classroom/engines/__init__.py: the optional facenet engine fails clearly, saying how to
install it, and never downloads anything."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.mark.skipif(importlib.util.find_spec("facenet_pytorch") is not None, reason="facenet-pytorch is installed")
def test_the_facenet_engine_says_how_to_install_it_and_never_downloads():
    pytest.importorskip("numpy")
    from iraas.classroom.engines import load_engine
    from iraas.classroom.engines.base import EngineUnavailable

    with pytest.raises(EngineUnavailable, match="facenet-pytorch, which is not installed by default"):
        load_engine("facenet", "/nonexistent/weights.pt")
