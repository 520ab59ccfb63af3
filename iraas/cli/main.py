"""``iraas``: run the embedded stack, a worker, classify files, or report on a stack.

A user's mistake (a missing file, a bad port, an unknown command, a setting out of range, a
service that is not there, a student or video that is not there) is one line on stderr and a
non-zero exit, never a traceback; an unexpected error is one line too, with ``IRAAS_DEBUG=1`` to
see its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iraas import logs
from iraas.cli.arguments import checked, non_negative_seconds, port, positive_int, positive_seconds
from iraas.config import default_home
from iraas.errors import ConfigError, ServiceError, UsageError
from iraas.images.settings import default_model_dir, load_image_settings

EXIT_USAGE = 2  # argparse's own code for a usage error; also a missing input, a bad setting
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of a pipe went away (`iraas classify ... | head`)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("iraas")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


# ---- argument types: each a one-line message naming the rule ----------------------------------


def _remote_url(value: str) -> str:
    from iraas.cli.classify.remote import check_url

    return check_url(value)


def _output_file(value: str) -> str:
    from iraas.cli.classify.report import check_output_path

    return check_output_path(value)


remote_url = checked(_remote_url)
output_file = checked(_output_file)


# ---- help -------------------------------------------------------------------------------------


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's help ends with its default, unless the help already states one or there is
    nothing to state (a flag, or an option that is off unless given: its help says what it does)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        # Identity, not equality: a default of 0 is worth stating; False is a flag's "not given".
        nothing = default is None or default is False or default is argparse.SUPPRESS
        if nothing or "default" in text.lower() or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """Every ``iraas`` parser: subcommands made with ``add_parser`` are Parsers too (argparse uses
    the parent's class), so they all state their defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


# ---- commands -----------------------------------------------------------------------------


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
        fresh=args.fresh,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from iraas.images.worker import serve

    serve(load_image_settings(), ready_file=args.ready_file, max_idle_s=args.max_idle)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from iraas.cli.classify.inputs import expand_paths
    from iraas.cli.classify.report import open_output, stdout_writer

    for flag in ("concurrency", "timeout"):
        if getattr(args, flag) is not None and not args.remote:
            raise UsageError(f"--{flag} applies to --remote only")
    _quiet_http_retries()
    inputs = expand_paths(args.paths)  # a missing path stops here, before the model loads
    if not inputs.paths:
        others = f" ({inputs.skipped} other {'file' if inputs.skipped == 1 else 'files'})" if inputs.skipped else ""
        raise UsageError(f"no image files in {', '.join(args.paths)}{others}")
    # Opened first, so that a folder that does not exist is reported before a long run.
    writer = open_output(args.output) if args.output else stdout_writer(sys.stdout, args.json)
    status: int | None = None
    try:
        if args.remote:
            from iraas.cli.classify import remote

            status = remote.run(
                args.remote, inputs.paths, writer, sys.stderr,
                concurrency=args.concurrency or remote.DEFAULT_CONCURRENCY,
                timeout_s=args.timeout or remote.DEFAULT_TIMEOUT_S, skipped=inputs.skipped,
            )
        else:
            from iraas.cli.classify.command import run

            status = run(inputs.paths, args.json, default_model_dir(), writer=writer, summary=True, skipped=inputs.skipped)
    except UsageError:  # no service there: nothing was classified
        status = EXIT_USAGE
        raise
    finally:
        writer.close()
        if args.output and status == EXIT_USAGE:  # no model or no service: no file of just a header
            Path(args.output).unlink(missing_ok=True)
    if args.output and status != EXIT_USAGE:
        print(f"results in {args.output}", file=sys.stderr)
    return status


def cmd_model_build(args: argparse.Namespace) -> int:
    from iraas.images.model.export import ensure_model
    from iraas.images.model.models import default_model, is_own_model

    if is_own_model(default_model()):
        from iraas.images.model.runtime import load_classifier

        # Nothing to build: checked whole instead (its files, its graph, one run), as a worker would at its start.
        print(load_classifier(default_model_dir(), threads=1).model_path)
        return 0
    path = ensure_model(default_model_dir(), progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(path)
    return 0


def cmd_model_list(args: argparse.Namespace) -> int:
    from iraas.images.model.catalog import choices, describe
    from iraas.images.model.models import default_model

    model_dir = default_model_dir()
    try:
        current, problem = default_model(), None
    except ConfigError as exc:  # still list the choices: they are what the user is looking for
        current, problem = "", exc
    for line in describe(model_dir, choices(model_dir, current)):
        print(line)
    if problem is not None:
        raise problem
    return 0


def cmd_model_fetch(args: argparse.Namespace) -> int:
    from iraas import aws
    from iraas.config import load_aws
    from iraas.images.model.fetch import fetch_model

    where, _ = load_aws(os.environ)
    print(fetch_model(aws.client(where, "s3"), args.uri, args.sha256, Path(args.into)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from iraas.cli import status as stack_status

    _quiet_http_retries()
    status = stack_status.from_url(args.url) if args.url else stack_status.gather(load_image_settings(), os.environ)
    for line in stack_status.describe(status):
        print(line)
    return 0


CLASSIFY_HELP = """\
Classify image files: each FILE as named, each FOLDER's image files (by extension: jpg, jpeg,
png, webp, bmp, gif, tif, tiff; recursively, sorted by path, hidden ones left out).

A PATH that does not exist stops the run before anything is classified; a file that cannot be
read or decoded is reported on stderr and the run goes on. Results go to stdout (or --output);
on a terminal stderr shows a progress bar, and every run ends with a summary there.

exit status: 0 every file classified, 1 some failed, 2 a usage error, no model, or no service."""


def build_parser() -> argparse.ArgumentParser:
    from iraas.cli.classify import remote  # stdlib and urllib3 only: its defaults for the help

    parser = Parser(prog="iraas", description="Image Recognition as a Service")
    parser.add_argument("--version", action="version", version=f"iraas {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="run the whole service on this machine (embedded AWS endpoint)")
    p.add_argument("--host", default="127.0.0.1", help="address the web tier listens on")
    p.add_argument("--port", type=port, default=8000, help="port of the web tier, 1-65535")
    p.add_argument(
        "--workers",
        type=positive_int,
        help="a fixed number of local workers, 1 or more (default: scale 0..IRAAS_MAX_WORKERS with the queue)",
    )
    p.add_argument("--home", help="state folder (default: $IRAAS_HOME or ./.iraas)")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start empty: delete what the last run stored (default: keep images, results, videos, CSVs, "
        "students and queued requests in the state folder and restore them)",
    )
    p.add_argument(
        "--web",
        choices=["chalice", "gunicorn"],
        default="chalice",
        help="serve the web tier with chalice's local gateway or gunicorn + the WSGI adapter",
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("worker", help="run one app-tier worker (what each EC2 instance runs)")
    p.add_argument("--ready-file", help="write this file once the model is warm (default: none)")
    p.add_argument(
        "--max-idle", type=non_negative_seconds, metavar="SECONDS",
        help="stop after this many seconds without work (default: run until stopped)",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "classify", help="classify image files and folders, in-process or on a running service",
        description=CLASSIFY_HELP,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders of them")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print one JSON object per line instead of tab-separated text")
    shape.add_argument(
        "--output", "-o", type=output_file, metavar="FILE",
        help="write the results to FILE, one row per input, failures included: "
        ".csv (path,label,confidence,wnid,error) or .jsonl, by the suffix (default: stdout)",
    )
    p.add_argument(
        "--remote", type=remote_url, metavar="URL",
        help="send the files to the service at URL (as `iraas up` prints it) instead of classifying "
        "in this process (default: in-process)",
    )
    # Defaults None, so that either given without --remote is told apart (and refused).
    p.add_argument(
        "--concurrency", type=positive_int, metavar="N",
        help=f"with --remote: requests in flight at a time (default: {remote.DEFAULT_CONCURRENCY})",
    )
    p.add_argument(
        "--timeout", type=positive_seconds, metavar="SECONDS",
        help=f"with --remote: how long one file may wait for its answer (default: {remote.DEFAULT_TIMEOUT_S:g})",
    )
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("model", help="manage the ONNX model")
    model_sub = p.add_subparsers(dest="model_command", required=True, metavar="COMMAND")
    b = model_sub.add_parser(
        "build", help="build the IRAAS_MODEL's ONNX file from the packaged weights (cached); print its path",
        description="Build the ONNX file of the model IRAAS_MODEL names (default lite0-int8) from the packaged "
        "weights, once, into the model folder (IRAAS_MODEL_DIR), and print its path. A model of your own "
        "(IRAAS_MODEL=/path/to/NAME.onnx) is not built: it is checked (its files, its graph, one run) as a "
        "worker checks it at its start, and its path printed.",
    )
    b.set_defaults(func=cmd_model_build)
    b = model_sub.add_parser(
        "list", help="the models IRAAS_MODEL can name: the built-in ones and your own in the model folder",
        description="List the built-in models (whether each is built) and the models of your own in the model "
        "folder (IRAAS_MODEL_DIR: each NAME.onnx with its NAME.labels.txt), marking the one IRAAS_MODEL names.",
    )
    b.set_defaults(func=cmd_model_list)
    b = model_sub.add_parser(
        "fetch", help="download a model of your own from S3, checked against its sha256 (the workers' start)",
        description="Download s3://bucket/prefix/NAME.onnx, its NAME.labels.txt and NAME.json if there is one, "
        "into FOLDER, and print the .onnx's path for IRAAS_MODEL. An .onnx whose sha256 is not the one given "
        "is refused and nothing is installed (exit status 2). What the workers' user data runs "
        "(template.yaml: WorkerModelS3Uri, WorkerModelSha256).",
    )
    b.add_argument("uri", metavar="S3_URI", help="s3://bucket/prefix/NAME.onnx")
    b.add_argument("--sha256", required=True, metavar="HEX", help="the .onnx's sha256 (sha256sum NAME.onnx)")
    b.add_argument("--into", required=True, metavar="FOLDER", help="where to put the files (made if missing)")
    b.set_defaults(func=cmd_model_fetch)

    p = sub.add_parser(
        "status", help="the stack's resources, queue depths, workers and recent throughput",
        description="Report on the stack the settings name: IRAAS_* variables, else the running "
        "`iraas up` found through $IRAAS_HOME or ./.iraas/stack.json. With --url, ask a running "
        "web tier instead (GET /v1/stats, and GET /v1/metrics where it has it).",
    )
    p.add_argument("--url", type=remote_url, help="a running web tier to ask (default: read the stack itself)")
    p.set_defaults(func=cmd_status)

    from iraas.cli.openstack import add_openstack_commands  # the web tier on OpenStack

    add_openstack_commands(sub)

    from iraas.cli.classroom import add_commands  # students, faces, videos: the classroom

    add_commands(sub)
    return parser


def _command_name(args: argparse.Namespace) -> str | None:
    """``classify``, ``videos submit``: what the messages of a command start with."""
    command = getattr(args, "command", None)
    sub = getattr(args, f"{command}_command", None)
    return f"{command} {sub}" if command and sub else command


def _quiet_http_retries() -> None:
    # urllib3 logs a warning for each retried connection; the command's own message says it once.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def _say(command: str | None, message: str) -> None:
    print(f"iraas{' ' + command if command else ''}: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure()
    command = _command_name(args)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # the user asked; nothing to explain
    except UsageError as exc:
        _say(command, str(exc))
        return EXIT_USAGE
    except ConfigError as exc:
        _say(command, f"configuration error: {exc}")
        return EXIT_USAGE
    except ServiceError as exc:  # the use case's own words: no such student, no such video, not yet
        _say(command, exc.message)
        return 1
    except BrokenPipeError:
        # Python would complain again flushing stdout at exit; point it at nothing first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a file or folder that cannot be opened, an address that cannot be used
        where = f"{exc.filename}: " if exc.filename else ""
        _say(command, f"{where}{exc.strerror or exc}")
        return 1
    except Exception as exc:
        if os.environ.get("IRAAS_DEBUG"):
            raise
        name = type(exc).__name__
        if type(exc).__module__.startswith(("botocore", "boto3")):  # AWS said no, or is not there
            _say(command, f"AWS: {exc}")
        else:
            _say(command, f"unexpected {name}: {exc} (run with IRAAS_DEBUG=1 for the traceback)")
        return 1
