"""What ``ps`` and ``top`` call each long-running process of IRaaS.

Under ``iraas up`` most processes are forked from a zygote and would otherwise all show its command
line (``python -m iraas.local.zygote ...``). Each entry point names itself here instead:

- ``iraas up 127.0.0.1:8000 (HOME)``: ``iraas up`` itself;
- ``iraas endpoint 127.0.0.1:PORT (HOME)``: the AWS endpoint (moto);
- ``iraas web 127.0.0.1:8000 (HOME)``: the web tier (``iraas.web.server``; gunicorn names its own);
- ``iraas zygote worker (HOME)``: the zygote the image workers are forked from;
- ``iraas worker local-1 (HOME)``: an image worker (its ``IRAAS_WORKER_ID``), forked or not;
- ``iraas zygote FaceRecognitionFunction [sqs] (HOME)``: the zygote a function's runners are forked from;
- ``iraas function FaceRecognitionFunction [sqs] (HOME)``: a runner of the function (``sqs``: of its
  SQS event), forked or not.

``HOME`` is the stack's folder (``IRAAS_HOME``), so that two stacks on one machine can be told
apart; a worker on EC2 has none. A title never grows past the process's original command line:
where the whole title does not fit, the ``(HOME)`` part is left off. That keeps
``/proc/<pid>/environ`` readable (``SPT_NOENV``; the tests and operators find a stack's processes by
its ``IRAAS_HOME`` there). The thread name (``/proc/<pid>/comm``, what ``top`` shows by default) is
the title's first 15 characters.

``setproctitle`` comes with the ``worker`` and ``local`` extras; without it (the web tier's
Lambda package) :func:`set_title` does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PREFIX = "iraas"


def stack_of(env: Mapping[str, str] | None = None) -> str | None:
    """The stack a process belongs to: its ``IRAAS_HOME``, if set."""
    return (os.environ if env is None else env).get("IRAAS_HOME") or None


def up_title(address: str) -> str:
    return f"{PREFIX} up {address}"


def endpoint_title(address: str) -> str:
    return f"{PREFIX} endpoint {address}"


def web_title(address: str) -> str:
    return f"{PREFIX} web {address}"


def worker_title(worker_id: str | None) -> str:
    """``iraas worker local-1``; ``iraas worker`` for a worker with no id of its own (on EC2)."""
    return f"{PREFIX} worker {worker_id}" if worker_id else f"{PREFIX} worker"


def function_title(function: str, source: str = "s3") -> str:
    """A function's runner: ``iraas function FaceRecognitionFunction``, and ``... sqs`` for the
    runner of its SQS event."""
    return f"{PREFIX} function {_function(function, source)}"


def zygote_title(forks: str) -> str:
    """A zygote, named by what it forks: ``worker``, or a function (see :func:`zygote_forks`)."""
    return f"{PREFIX} zygote {forks}"


def zygote_forks(function: str, source: str = "s3") -> str:
    """What a function's zygote forks, as its title says it: ``FaceRecognitionFunction [sqs]``."""
    return _function(function, source)


def _function(function: str, source: str) -> str:
    return function if source == "s3" else f"{function} {source}"


def fit(title: str, stack: str | None, room: int | None) -> str:
    """``title (stack)``; just ``title`` where that does not fit in ``room`` characters (None: any)."""
    if not stack:
        return title
    full = f"{title} ({stack})"
    return full if room is None or len(full) <= room else title


def set_title(title: str, stack: str | None = None) -> bool:
    """Show ``title`` (and the stack, where there is room) in ``ps`` and ``top``. False without
    ``setproctitle``, where nothing changes."""
    # Before setproctitle's first call: titles stay within the original command line, and
    # /proc/<pid>/environ stays intact (in this process and in children that set titles of their own,
    # gunicorn's included).
    os.environ.setdefault("SPT_NOENV", "1")
    try:
        from setproctitle import setproctitle
    except ImportError:
        return False
    setproctitle(fit(title, stack, _room()))
    return True


def _room() -> int | None:
    """How long a title this process can show: its original command line's length, less the two
    bytes setproctitle keeps; None where /proc is not there to tell."""
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return max(0, len(f.read()) - 2)
    except OSError:
        return None
