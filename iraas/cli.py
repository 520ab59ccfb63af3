"""``iraas``: run the embedded stack, a worker, or classify files in-process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iraas import logs
from iraas.config import default_home, default_model_dir, load_settings
from iraas.errors import ConfigError


def cmd_up(args: argparse.Namespace) -> int:
    from iraas.local.stack import up

    home = Path(args.home) if args.home else default_home()
    return up(
        home=home,
        host=args.host,
        port=args.port,
        workers=args.workers,
        say=lambda m: print(m, flush=True),
        web_server=args.web,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from iraas.images.worker import serve

    serve(load_settings(), ready_file=args.ready_file, max_idle_s=args.max_idle)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from iraas.images.classify.command import run

    return run(args.files, as_json=args.json, model_dir=default_model_dir())


def cmd_model_build(args: argparse.Namespace) -> int:
    from iraas.images.classify.export import ensure_model

    path = ensure_model(default_model_dir(), progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iraas", description="Image Recognition as a Service")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="run the whole service on this machine (embedded AWS endpoint)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers",
        type=int,
        help="a fixed number of local workers (default: scale 0..IRAAS_MAX_WORKERS with the queue)",
    )
    p.add_argument("--home", help="state folder (default $IRAAS_HOME or ./.iraas)")
    p.add_argument(
        "--web",
        choices=["chalice", "gunicorn"],
        default="chalice",
        help="serve the web tier with chalice's local gateway (default) or gunicorn + the WSGI adapter",
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("worker", help="run one app-tier worker (what each EC2 instance runs)")
    p.add_argument("--ready-file", help="write this file once the model is warm")
    p.add_argument("--max-idle", type=float, help="stop after this many seconds without work")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("classify", help="classify image files in-process")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("model", help="manage the ONNX model")
    model_sub = p.add_subparsers(dest="model_command", required=True)
    b = model_sub.add_parser("build", help="build the ONNX file from the packaged weights (cached)")
    b.set_defaults(func=cmd_model_build)

    from iraas.hybrid.command import add_openstack_commands  # the web tier on OpenStack

    add_openstack_commands(sub)

    from iraas.classroom.cli import add_commands  # students, faces, videos: the classroom

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure()
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"iraas: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
