"""worker_ami/ (the AMI recipe, not a module): the systemd unit runs the same entry point as the local
workers, and the template's user data writes every setting the worker needs. (The tools that accept
them, each a process: tests/integration/worker_ami/test_ami_recipe.py.)"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from iraas.images.settings import load_image_settings
from iraas.local.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[3]
AMI = REPO_ROOT / "worker_ami"
UNIT = AMI / "iraas-worker.service"


def unit_value(key: str) -> str:
    [line] = [x for x in UNIT.read_text().splitlines() if x.startswith(f"{key}=")]
    return line.split("=", 1)[1]


def user_data() -> str:
    launch = load_template(REPO_ROOT / "template.yaml")["Resources"]["WorkerLaunchTemplate"]
    return launch["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]


def test_the_unit_runs_the_same_entry_point_as_the_local_workers():
    command = shlex.split(unit_value("ExecStart"))
    assert Path(command[0]).name == "iraas" and command[1:] == ["worker"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["iraas"] == "iraas.cli.main:main"  # what `python -m iraas.cli worker` runs locally
    assert unit_value("Restart") == "on-failure"
    assert unit_value("EnvironmentFile") == "/etc/iraas/worker.env"


def test_the_user_data_writes_every_setting_the_worker_needs_and_starts_the_unit():
    script = user_data()
    body = re.search(r"<<ENV\n(.*?)\nENV", script, re.S).group(1)
    names = [line.split("=", 1)[0] for line in body.splitlines()]
    env = {name: "1048576" if name == "IRAAS_MAX_IMAGE_BYTES" else "x" for name in names}
    env["IRAAS_HOME"] = "/nonexistent"
    settings = load_image_settings(env)  # raises if the worker would be missing a resource
    assert settings.request_queue_url == "x"
    assert "IRAAS_WORKER_ID" in names  # heartbeats name the instance the scaler may terminate
    assert "systemctl enable --now iraas-worker.service" in script
    assert "http://169.254.169.254/latest/api/token" in script  # IMDSv2, as the template requires


def test_the_user_data_fetches_a_model_from_s3_with_the_commands_own_arguments_only_when_named():
    from iraas.cli.main import build_parser, cmd_model_fetch

    script = user_data()
    [line] = [x for x in script.splitlines() if "iraas model fetch" in x]
    command = line.split("$(", 1)[1].rsplit(")", 1)[0]  # MODEL=$(...) || {
    argv = shlex.split(command.replace("${WorkerModelS3Uri}", "s3://models-of-ours/team/colours.onnx")
                       .replace("${WorkerModelSha256}", "ab" * 32).replace("${AWS::Region}", "us-east-1"))
    assert argv[0] == "IRAAS_REGION=us-east-1" and Path(argv[1]).name == "iraas"
    args = build_parser().parse_args(argv[2:])  # what `iraas model fetch` accepts, so the two cannot drift
    assert args.func is cmd_model_fetch
    assert (args.uri, args.sha256) == ("s3://models-of-ours/team/colours.onnx", "ab" * 32)
    # Only when the stack names a model; the worker is told which, and started only after it is fetched.
    assert 'if [ -n "${WorkerModelS3Uri}" ]; then' in script
    assert script.index("iraas model fetch") < script.index('echo "IRAAS_MODEL=$MODEL" >> /etc/iraas/worker.env') \
        < script.index("systemctl enable --now iraas-worker.service")
