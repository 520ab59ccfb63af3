"""iraas/local/durable/capture.py: the state capture's fit to the installed moto; it refuses to run on
a moto whose funnels moved."""

from __future__ import annotations

import pytest

from iraas.local.durable import capture


def test_the_funnels_fit_the_pinned_moto() -> None:
    capture.check_funnels()


def test_a_funnel_that_lost_a_parameter_stops_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    funnel = capture.FUNNELS[0]
    moved = capture.Funnel(funnel.owner, funnel.method, ("bucket", "key"), funnel.note)
    monkeypatch.setattr(capture, "FUNNELS", (moved, *capture.FUNNELS[1:]))
    with pytest.raises(capture.CaptureError, match="has no parameter 'bucket'"):
        capture.check_funnels()


def test_a_funnel_that_is_gone_stops_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = capture.Funnel(capture.FUNNELS[0].owner, "put_object_v2", ("bucket_name",), capture.FUNNELS[0].note)
    monkeypatch.setattr(capture, "FUNNELS", (gone,))
    with pytest.raises(capture.CaptureError, match="put_object_v2 is gone"):
        capture.check_funnels()
