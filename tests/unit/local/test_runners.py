"""iraas/local/runners.py: a function's cap of runners is its setting, else the usable cores, and
how long an extra runner stays idle."""

from __future__ import annotations

from iraas.local.runners import concurrency, idle_s


def test_the_cap_is_the_setting_else_the_usable_cores() -> None:
    assert concurrency({}, cores=2) == 2
    assert concurrency({"IRAAS_LOCAL_FUNCTION_CONCURRENCY": "5"}, cores=2) == 5
    assert concurrency({"IRAAS_LOCAL_FUNCTION_CONCURRENCY": "0"}, cores=2) == 1
    assert idle_s({}) == 10.0 and idle_s({"IRAAS_LOCAL_FUNCTION_IDLE_S": "2.5"}) == 2.5
