"""Serve ``chalice_web/`` the way ``chalice local`` does, with a listen backlog for bursts.

``chalice local`` listens with Python's default backlog of 5, so a burst of 100 clients (what
the course's load generator sends) sees refused or retried connections. This runs the same
chalice local gateway with a deeper backlog. Usage: ``python -m iraas.local.web --port 8000``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chalice.local import LocalDevServer, ThreadedHTTPServer

from iraas.chalice_project import ProjectRequestHandler, load_chalice_project
from iraas.paths import CHALICE_PROJECT


class BurstReadyServer(ThreadedHTTPServer):
    request_queue_size = 256


def make_server(host: str, port: int, project_dir: Path = CHALICE_PROJECT, stage: str = "dev") -> LocalDevServer:
    app, config = load_chalice_project(project_dir, stage)
    return LocalDevServer(app, config, host, port, handler_cls=ProjectRequestHandler, server_cls=BurstReadyServer)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--project-dir", type=Path, default=CHALICE_PROJECT)
    args = parser.parse_args(argv)
    make_server(args.host, args.port, args.project_dir).serve_forever()


if __name__ == "__main__":
    main()
