"""The web tier stays light: no ML engines in its imports (nor in those of the face pipeline's web
side and its CLI) or its Lambda package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "onnxruntime", "onnx", "numpy", "cv2", "dlib")


def test_importing_the_web_tier_loads_no_heavy_engine():
    code = (
        "import json, sys\n"
        "from tests.support.web import load_app_module\n"
        "load_app_module()\n"
        "import iraas.images.worker, iraas.images.service, iraas.images.results, iraas.images.model\n"
        "import iraas.classroom.service, iraas.classroom.settings, iraas.classroom.enrolments, iraas.scaling.scaler\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert json.loads(out.stdout) == []


def test_the_web_side_of_the_face_pipeline_imports_no_heavy_engine():
    code = (
        "import json, sys\n"
        "import iraas.classroom.service, iraas.classroom.students, iraas.classroom.keys, iraas.cli.classroom, iraas.cli\n"
        "import iraas.classroom.enrolments\n"
        "print(json.dumps(sorted(m for m in ('numpy', 'cv2', 'dlib', 'torch') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


# The classroom page's requests, on moto in the same process: what they run must stay light too
# (a lazy import inside a use case would not show in the import test above).
_CLASSROOM_REQUESTS = """
import io, json, os, sys
from pathlib import Path
import moto
from chalice.test import Client
from PIL import Image
from iraas import aws
from iraas.config import RESOURCE_ENV
from iraas.local.provision import provision
from iraas.local.template import load_template
from tests.support.web import load_app_module

with moto.mock_aws():
    resources = provision(load_template(Path("template.yaml")), endpoint_url=None, region="us-east-1")
    os.environ.update({var: resources[logical_id] for logical_id, var in RESOURCE_ENV.items()})
    app = load_app_module().app
    photo = io.BytesIO()
    Image.new("RGB", (32, 32)).save(photo, "JPEG")
    with Client(app) as client:
        students = [{"id": 1, "name": "Ada", "major": "Maths", "year": 2}]
        statuses = [
            client.http.post("/v1/students", headers={"Content-Type": "application/json"}, body=json.dumps(students)),
            client.http.get("/v1/students"),
            client.http.post("/v1/students/Ada/photos", headers={"Content-Type": "image/jpeg"}, body=photo.getvalue()),
            client.http.get("/v1/enrolments/" + "0" * 32),
            client.http.delete("/v1/students/Ada"),
        ]
    print(json.dumps({"statuses": [r.status_code for r in statuses],
                      "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def test_the_classroom_routes_run_without_loading_a_face_engine(tmp_path):
    from iraas.aws import local_credentials_env

    env = {**os.environ, **local_credentials_env(), "AWS_DEFAULT_REGION": "us-east-1", "IRAAS_HOME": str(tmp_path)}
    env.pop("IRAAS_ENDPOINT_URL", None)
    code = f"HEAVY = {HEAVY!r}\n" + _CLASSROOM_REQUESTS
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == {"statuses": [200, 200, 202, 202, 200], "heavy": []}


@pytest.mark.slow
def test_make_package_gives_a_small_lambda_package_with_the_shared_package(tmp_path):
    """`make package`: chalice's template merged with template.yaml, linted, and a light zip."""
    out = tmp_path / "package"
    subprocess.run(["make", "--no-print-directory", "package", f"PACKAGE_DIR={out}"], cwd=REPO_ROOT, check=True)

    with zipfile.ZipFile(out / "deployment.zip") as zf:
        names = zf.namelist()
        size = sum(info.file_size for info in zf.infolist())
    assert "app.py" in names and "chalicelib/classroom.py" in names
    assert "iraas/images/service.py" in names and "iraas/images/jobs.py" in names
    assert "iraas/images/model/imagenet_class_index.json" in names
    # Benchmarks and test helpers live outside the package, so they never ship.
    assert not [n for n in names if n.split("/")[0] in ("bench", "tests") or "bench" in n.split("/")[-1]]
    assert not [n for n in names if n.split("/")[0] in HEAVY or n.endswith((".onnx", ".pth"))]
    assert size < 20 * 1024 * 1024, f"the web tier's package is {size} bytes unzipped"

    template = yaml.load((out / "sam.yaml").read_text(), Loader=yaml.SafeLoader)
    resources = template["Resources"]
    # chalice's function and template.yaml's resources are one stack; the function gets the
    # resource names through Globals and the least-privilege role defined in template.yaml.
    assert {"APIHandler", "RestAPI", "ImageInputBucket", "RequestQueue"} <= resources.keys()
    # API Gateway answers a path no route matches with the project's JSON 404, not its own 403.
    not_found = template["Globals"]["Api"]["GatewayResponses"]["MISSING_AUTHENTICATION_TOKEN"]
    assert not_found["StatusCode"] == 404 and '"not_found"' in not_found["ResponseTemplates"]["application/json"]
    # Every route but the health check, the page and the API's description needs an API key of the
    # usage plan SAM adds, and the web tier and the face function have a bound on how many run at once.
    paths = resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    keyless = {(path, method) for path, entries in paths.items() for method, spec in entries.items() if "security" not in spec}
    assert keyless == {("/v1/healthz", "get"), ("/", "get"), ("/assets/{name}", "get"), ("/openapi.json", "get")}
    assert template["Globals"]["Api"]["Auth"]["UsagePlan"]["CreateUsagePlan"] == "PER_API"
    assert template["Globals"]["Function"]["ReservedConcurrentExecutions"] == {"Ref": "ApiReservedConcurrency"}
    assert "ReservedConcurrentExecutions" not in resources["APIHandler"]["Properties"]  # so the Globals' value applies
    assert resources["FaceRecognitionFunction"]["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "FaceReservedConcurrency"}
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["IRAAS_REQUEST_QUEUE_URL"] == {"Ref": "RequestQueue"}
    statements = resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert all(statement["Resource"] != "*" for statement in statements)
    # `sam build` on the packaged template finds the face function's Dockerfile.
    face = resources["FaceRecognitionFunction"]["Metadata"]
    assert ((out / face["DockerContext"]).resolve() / face["Dockerfile"]).is_file()
    # The scaler runs every minute, one invocation at a time, with its own least-privilege role.
    scale = resources["Scale"]["Properties"]
    assert scale["Role"] == {"Fn::GetAtt": ["ScaleRole", "Arn"]} and scale["ReservedConcurrentExecutions"] == 1
    assert resources["ScaleRole"]["Properties"]["Policies"][0]["PolicyName"] == "ScaleRolePolicy"
    # So does the sweeper of idle reply queues, every 5 minutes.
    sweep = resources["SweepReplies"]["Properties"]
    assert sweep["Role"] == {"Fn::GetAtt": ["SweepRepliesRole", "Arn"]} and sweep["ReservedConcurrentExecutions"] == 1
    assert sweep["Events"]["SweepRepliesEvent"]["Properties"]["Schedule"] == "rate(5 minutes)"
    assert resources["SweepRepliesRole"]["Properties"]["Policies"][0]["PolicyName"] == "SweepRepliesRolePolicy"
