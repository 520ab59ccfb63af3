"""gunicorn settings for the web tier (``gunicorn --config openstack/gunicorn.conf.py``).

Every value is explicit; the ones an operator tunes come from the environment (the systemd unit's
EnvironmentFile on Nova, ``iraas up --web gunicorn`` locally). Command-line flags override them.
"""

import os
import tempfile
from pathlib import Path

# GET /metrics adds up every worker process's request counts (prometheus-client's multiprocess
# mode, iraas/web/prometheus.py): each process writes them under this folder, a fresh one per start.
# Set first, in the master, before anything imports prometheus-client (which picks its value class
# on import): the iraas import below, and the worker class gunicorn loads from this file.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="iraas-prometheus-"))

from iraas.web.admission import load_web_limits  # noqa: E402 - after the variable above

# Load openstack/wsgi.py by path: this folder goes on sys.path, the repository root does not,
# so `import openstack` still finds openstacksdk.
chdir = str(Path(__file__).resolve().parent)
wsgi_app = "wsgi:application"

bind = [os.environ.get("IRAAS_WEB_BIND", "127.0.0.1:8000")]
# Threads, not processes, carry the concurrency: a request mostly waits on S3 (`?wait=` polls for
# its result up to IRAAS_MAX_WAIT_S), so one thread per in-flight request is cheap. gthread with the
# web tier's limits (iraas/web/gthread.py): header and body deadlines, each request admitted on its
# headers (key, body size) before its body is read, and a connection over the cap answered 503.
worker_class = "iraas.web.gthread.BoundedThreadWorker"
# Per worker process (IRAAS_WEB_MAX_CONNECTIONS, with the other IRAAS_WEB_* limits: iraas/web/admission.py).
worker_connections = load_web_limits().max_connections
workers = int(os.environ.get("IRAAS_WEB_PROCESSES", "2"))
threads = int(os.environ.get("IRAAS_WEB_THREADS", "32"))
backlog = 2048  # bursts of 100 clients queue instead of being refused

# gthread workers heartbeat from their main thread, so `timeout` only kills a stuck process;
# it stays above the longest wait (30 s) plus an upload.
timeout = int(os.environ.get("IRAAS_WEB_TIMEOUT_S", "60"))
graceful_timeout = int(os.environ.get("IRAAS_WEB_GRACEFUL_S", "35"))  # let `?wait=30` requests finish
keepalive = 5

# Request-line and header bounds; the body by its route's limit (IRAAS_MAX_IMAGE_BYTES, IRAAS_MAX_BATCH_BYTES).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("IRAAS_WEB_LOG_LEVEL", "info")
proc_name = "iraas-web"
# No gunicornc control socket: it would default to one shared path in $HOME, and nothing uses it.
control_socket_disable = True


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """A worker process that exits: its live gauges go (counters are kept in the sum)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """An orderly stop for each worker: on SIGTERM gunicorn stops its accepting and lets the requests
    in flight finish within ``graceful_timeout``; the requests still waiting for a result after
    IRAAS_WEB_DRAIN_S seconds (default: 5 s less than that) are answered 503 with Retry-After
    (``iraas/web/drain.py``; their images stay queued and are answered at their id)."""
    import signal

    from iraas.web import drain

    drain_s = float(os.environ.get("IRAAS_WEB_DRAIN_S", max(1, worker.cfg.graceful_timeout - 5)))
    gunicorns_own = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):  # noqa: ANN001, ANN202
        drain.begin(drain_s)
        if callable(gunicorns_own):
            gunicorns_own(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
