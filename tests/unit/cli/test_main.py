"""The `iraas` command line (iraas/cli/main.py) as a user meets it: --version, help that states
defaults, and every mistake one line on stderr with a non-zero exit, never a traceback.

(Mistakes that need a port, a stack or a service that is not there: tests/integration/cli/test_main.py.)"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from harness.embedded import free_port
from iraas.cli import main as cli
from iraas.config import RESOURCE_ENV
from tests.support.cli import run


def error_lines(err: str) -> list[str]:
    """stderr without argparse's usage block."""
    lines, in_usage = [], False
    for line in err.splitlines():
        if line.startswith("usage:"):
            in_usage = True
        elif in_usage and line.startswith(" "):
            continue
        else:
            in_usage = False
            lines.append(line)
    return lines


@pytest.fixture
def no_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No IRAAS_* resource variables and an empty IRAAS_HOME: nothing is configured."""
    for var in [*RESOURCE_ENV.values(), "IRAAS_ENDPOINT_URL", "IRAAS_DEBUG"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IRAAS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_version_prints_the_package_version(capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert re.fullmatch(r"iraas \d+\.\d+\.\S+\n", out)


def _parsers(parser: argparse.ArgumentParser, name: str = "iraas"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_of_every_command_has_help_and_its_help_states_the_default() -> None:
    missing_help, missing_default = [], []
    for name, parser in _parsers(cli.build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction | argparse._VersionAction):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                missing_help.append(label)
            # A flag's default is "not given"; a required option has none.
            elif (
                action.option_strings
                and not isinstance(action, argparse._StoreTrueAction)
                and not action.required
                and "default" not in formatter._expand_help(action)
            ):
                missing_default.append(label)
    assert missing_help == []
    assert missing_default == []


def test_the_up_help_shows_each_default(capsys) -> None:
    code, out, _ = run(capsys, "up", "--help")
    text = " ".join(out.split())
    assert code == 0
    for shown in ["(default: 127.0.0.1)", "(default: 8000)", "(default: chalice)", "(default: scale 0..IRAAS_MAX_WORKERS"]:
        assert shown in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "--port", "99999"], "iraas up: error: argument --port: 99999 is not a port; use 1-65535"),
        (["up", "--port", "0"], "iraas up: error: argument --port: 0 is not a port; use 1-65535"),
        (["up", "--port", "http"], "iraas up: error: argument --port: 'http' is not a whole number"),
        (["up", "--workers", "-1"], "iraas up: error: argument --workers: -1 must be 1 or more"),
        (["up", "--workers", "0"], "iraas up: error: argument --workers: 0 must be 1 or more"),
        (["worker", "--max-idle", "-5"], "iraas worker: error: argument --max-idle: -5 must be 0 seconds or more"),
        (["classify", "--remote", "h:1", "--concurrency", "0", "x.jpg"],
         "iraas classify: error: argument --concurrency: 0 must be 1 or more"),
        (["classify", "--remote", "ftp://h/", "x.jpg"],
         "iraas classify: error: argument --remote: 'ftp://h/' is not an http:// or https:// URL"),
        (["classify", "--output", "results.txt", "x.jpg"],
         "iraas classify: error: argument --output/-o: 'results.txt' must end in .csv or .jsonl (the suffix chooses the format)"),
        (["videos", "submit", "v.mp4", "--wait", "0"],
         "iraas videos submit: error: argument --wait: 0 must be more than 0 seconds"),
        (["openstack", "deploy", "--cloud", "c", "--ssh-cidr", "1.2.3.4/32", "--source-url", "u", "--port", "70000"],
         "iraas openstack deploy: error: argument --port: 70000 is not a port; use 1-65535"),
    ],
)
def test_a_bad_option_value_is_one_line_under_the_usage_and_exit_2(capsys, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert error_lines(err) == [message]


def test_an_unknown_command_is_one_line_naming_the_commands(capsys) -> None:
    code, _, err = run(capsys, "clasify", "cat.jpg")
    assert code == 2
    (line,) = error_lines(err)
    assert line.startswith("iraas: error: argument COMMAND: invalid choice: 'clasify' (choose from ")
    assert "'classify'" in line and "'status'" in line


def test_no_command_at_all_is_a_usage_error(capsys) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert error_lines(err) == ["iraas: error: the following arguments are required: COMMAND"]


def test_classify_a_path_that_does_not_exist_stops_before_the_model_loads(capsys, monkeypatch, tmp_path) -> None:
    from iraas.cli.classify import command

    monkeypatch.setattr(command, "run", lambda *a, **k: pytest.fail("the model was loaded"))
    (tmp_path / "cat.jpg").write_bytes(b"x")
    code, out, err = run(capsys, "classify", str(tmp_path / "cat.jpg"), str(tmp_path / "typo"))
    assert code == 2
    assert out == ""
    assert err == f"iraas classify: {tmp_path / 'typo'}: no such file or directory\n"


def test_classify_a_folder_without_images_says_so(capsys, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run(capsys, "classify", str(tmp_path))
    assert code == 2
    assert err == f"iraas classify: no image files in {tmp_path} (1 other file)\n"


@pytest.mark.parametrize("option", [["--concurrency", "4"], ["--timeout", "10"]])
def test_remote_only_options_without_remote_are_refused(capsys, tmp_path, option) -> None:
    (tmp_path / "cat.jpg").write_bytes(b"x")
    code, _, err = run(capsys, "classify", *option, str(tmp_path / "cat.jpg"))
    assert code == 2
    assert err == f"iraas classify: {option[0]} applies to --remote only\n"


def test_classify_json_and_output_together_are_refused(capsys) -> None:
    code, _, err = run(capsys, "classify", "--json", "--output", "r.csv", "x.jpg")
    assert code == 2
    assert error_lines(err) == ["iraas classify: error: argument --output/-o: not allowed with argument --json"]


def test_videos_submit_a_missing_file_is_one_line_before_any_setting_is_read(capsys, no_stack) -> None:
    code, _, err = run(capsys, "videos", "submit", "/nonexistent.mp4")
    assert code == 2
    assert err == "iraas videos submit: /nonexistent.mp4: no such file\n"


def test_status_with_nothing_configured_says_how_to_start_a_stack(capsys, no_stack) -> None:
    code, out, err = run(capsys, "status")
    assert code == 2
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("iraas status: configuration error: IRAAS_IMAGE_INPUT_BUCKET is not set")
    assert "iraas up" in line


def test_an_unexpected_error_is_one_line_unless_iraas_debug_asks_for_the_traceback(capsys, monkeypatch) -> None:
    from iraas.images.model import export

    def broken(*args, **kwargs):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(export, "ensure_model", broken)
    monkeypatch.delenv("IRAAS_DEBUG", raising=False)
    code, _, err = run(capsys, "model", "build")
    assert code == 1
    assert err == "iraas model build: unexpected RuntimeError: the disk caught fire (run with IRAAS_DEBUG=1 for the traceback)\n"
    monkeypatch.setenv("IRAAS_DEBUG", "1")
    with pytest.raises(RuntimeError, match="caught fire"):
        cli.main(["model", "build"])


def test_ctrl_c_exits_130_quietly(capsys, monkeypatch) -> None:
    from iraas.images.model import export

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "ensure_model", interrupted)
    code, out, err = run(capsys, "model", "build")
    assert (code, out, err) == (130, "", "")


def test_a_file_that_cannot_be_written_is_one_line(capsys, tmp_path) -> None:
    (tmp_path / "cat.jpg").write_bytes(b"x")
    target = tmp_path / "no-such-folder" / "results.csv"
    code, _, err = run(capsys, "classify", str(tmp_path / "cat.jpg"), "--output", str(target))
    assert code == 1
    assert err == f"iraas classify: {target}: No such file or directory\n"


def test_up_with_a_bad_key_says_so_in_one_line_before_starting_anything(capsys, tmp_path, monkeypatch):
    import signal

    monkeypatch.setenv("IRAAS_API_KEY", "too-short")
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = cli.main(["up", "--port", str(free_port()), "--home", str(tmp_path)])  # a free port: checked first
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    out, err = capsys.readouterr()
    assert code == 2
    assert err == "iraas up: configuration error: IRAAS_API_KEY: key 1 of 1 has 9 characters; a key has 16 to 256 " \
        "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'` makes one)\n"
    assert not (tmp_path / "stack.json").exists()
