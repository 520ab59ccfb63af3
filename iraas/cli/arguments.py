"""argparse types shared by the ``iraas`` commands: each refuses a bad value in one line."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


def checked(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a function that raises ValueError with a message: argparse prints
    ``argument --port: 99999 is not a port; use 1-65535`` under the usage and exits with 2."""

    def convert(value: str) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = check.__name__  # argparse names the type in some messages
    return convert


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


def _number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


@checked
def port(value: str) -> int:
    """A TCP port, 1-65535."""
    number = _integer(value)
    if not 1 <= number <= 65535:
        raise ValueError(f"{number} is not a port; use 1-65535")
    return number


@checked
def positive_int(value: str) -> int:
    """A whole number >= 1."""
    number = _integer(value)
    if number < 1:
        raise ValueError(f"{number} must be 1 or more")
    return number


@checked
def positive_seconds(value: str) -> float:
    """A number of seconds > 0."""
    number = _number(value)
    if number <= 0:
        raise ValueError(f"{value} must be more than 0 seconds")
    return number


@checked
def non_negative_seconds(value: str) -> float:
    """A number of seconds >= 0."""
    number = _number(value)
    if number < 0:
        raise ValueError(f"{value} must be 0 seconds or more")
    return number
