"""What a million images cost on AWS, by component: ``python -m bench.cost``, ``make bench``'s last step.

It multiplies what the other steps measured (their files under ``bench/out/``) by the list prices
of ``bench/prices_us_east_1.toml`` (dated, each with its source), for both ways of asking:

- ``wait`` (synchronous, the course's ``POST /``): one request that holds the web function (Lambda)
  until the answer comes back on its reply queue, so Lambda bills every second of the wait;
- ``wait=0`` (asynchronous): a quick ``202`` and the answer fetched with ``GET /v1/images/{id}``,
  one poll per image unless told otherwise; each poll is an API request, a Lambda invocation, an S3
  LIST (billed like a PUT) and an S3 GET. A pushed answer (a callback) does not exist.

and sets the total beside Rekognition DetectLabels' list price. The worker's instance time comes
from its CPU per answered image (``bench.worker_cpu``) on the EC2 type whose CPU matches the one
the bench ran on (:func:`instance_for`). It writes ``bench/out/cost.json``, prints the table, and
writes ``docs/cost-figures.md`` (included by ``docs/cost.md``; committed).

The arithmetic (:func:`per_million`, :func:`fixed_per_month`, :func:`report`, :func:`render`) is a
pure function of its arguments; reading files is left to :func:`gather` and :func:`main`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import re
import statistics
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import OUT, save_report

REPO_ROOT = Path(__file__).resolve().parent.parent
PRICES = Path(__file__).resolve().parent / "prices_us_east_1.toml"
FIGURES = REPO_ROOT / "docs" / "cost-figures.md"
CHALICE_CONFIG = REPO_ROOT / "chalice_web" / ".chalice" / "config.json"

IMAGES = 1_000_000
CHUNK_BYTES = 64 * 1024  # SQS bills each 64 KiB chunk of a request's payload as one request
LAMBDA_MB_PER_VCPU = 1769  # Lambda gives a function one vCPU's worth of CPU at 1,769 MB, less below
GIB = 2**30  # S3, CloudWatch Logs and EBS bill gigabytes of 2^30 bytes
HOURS_PER_MONTH = 730
DAYS_PER_MONTH = 365 / 12

# What the code does per call, as read from it (update with the code):
REQUEST_MESSAGE_BYTES = 400  # a request message: id, name, bucket, key, reply queue (iraas.images.jobs)
RESULT_BYTES = 700  # a result: label, wnid, confidence, top 5 (ImageResult.to_json)
HEARTBEAT_S = 2.0  # a worker PUTs its heartbeat, and its metrics while it answers, this often (iraas.images.worker)
ROOT_VOLUME_GB = 8  # the Ubuntu AMI's root volume, which worker_ami/ keeps
# The worker's AWS calls per image as iraas.images.worker makes them for requests that one web process
# waits for (bench.worker_cpu counts them; this is today's code if it has not): a batch of 8 per
# receive, the input's GET, the result's conditional PUT, one reply and one announcement per batch
# (SendMessageBatch), one DeleteMessageBatch per batch. A quick batch extends no visibility.
WORKER_CALLS = {"sqs.ReceiveMessage": 1 / 8, "s3.GetObject": 1.0, "s3.PutObject": 1.0,
                "sqs.SendMessageBatch": 2 / 8, "sqs.DeleteMessageBatch": 1 / 8}
# An AWS call's round trip from Lambda in the same region (S3 PUT, SQS send): assumed, not measured.
AWS_CALL_WAIT_S = 0.010
# The three lines Lambda logs per invocation (START, END, REPORT), as it writes them.
LAMBDA_PLATFORM_LINES = (
    "START RequestId: 6f1c2b9e-0d4a-4c3e-9b6f-2a7d8e5c1f03 Version: $LATEST\n"
    "END RequestId: 6f1c2b9e-0d4a-4c3e-9b6f-2a7d8e5c1f03\n"
    "REPORT RequestId: 6f1c2b9e-0d4a-4c3e-9b6f-2a7d8e5c1f03\tDuration: 1250.31 ms\tBilled Duration: 1251 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 181 MB\t\n"
)
# Representative values of the API access log's fields (template.yaml: Globals: Api: AccessLogSetting).
ACCESS_LOG_SAMPLES = {
    "requestId": "6f1c2b9e-0d4a-4c3e-9b6f-2a7d8e5c1f03", "requestTime": "06/Dec/2026:12:00:00 +0000",
    "identity.sourceIp": "203.0.113.10", "identity.apiKeyId": "a1b2c3d4e5", "httpMethod": "POST",
    "resourcePath": "/v1/images", "path": "/api/v1/images", "status": "200", "responseLength": "612",
    "responseLatency": "1250", "error.responseType": "-",
}
S3_PUT_CLASS = ("PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2", "CreateMultipartUpload",
                "UploadPart", "CompleteMultipartUpload")
S3_FREE = ("DeleteObject", "DeleteObjects")


# ---- the price table -------------------------------------------------------------------------


class PriceTableError(ValueError):
    """The price table is missing, malformed, or lacks a price that is asked for."""


@dataclass(frozen=True)
class Price:
    usd: float  # for `per` units
    per: float
    unit: str
    what: str
    source: str

    def of(self, quantity: float) -> float:
        """What ``quantity`` units cost, in US dollars."""
        return self.usd * quantity / self.per


@dataclass(frozen=True)
class Instance:
    name: str
    usd_per_hour: float
    vcpus: int
    cpu: str
    source: str


@dataclass(frozen=True)
class PriceTable:
    date: str
    region: str
    note: str
    prices: Mapping[str, Price]
    instances: Mapping[str, Instance]
    path: str = "bench/prices_us_east_1.toml"

    def __getitem__(self, name: str) -> Price:
        if name not in self.prices:
            raise PriceTableError(f"{self.path} has no price {name!r}: add it there, with its source URL")
        return self.prices[name]

    def instance(self, name: str) -> Instance:
        if name not in self.instances:
            raise PriceTableError(f"{self.path} has no instance type {name!r} ([ec2.\"{name}\"]): add it there, "
                                  f"with its hourly price, vCPUs and source URL")
        return self.instances[name]


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def parse_prices(data: Mapping[str, Any], path: str = "bench/prices_us_east_1.toml") -> PriceTable:
    """The table from the TOML's data; every problem found is named in one PriceTableError."""
    problems: list[str] = []
    date = data.get("date")
    try:
        datetime.date.fromisoformat(str(date))
    except ValueError:
        problems.append(f"date {date!r} is not a date (YYYY-MM-DD): say when the prices were taken")
    if not data.get("region"):
        problems.append("no region")
    prices: dict[str, Price] = {}
    for name, entry in (data.get("prices") or {}).items():
        missing = [k for k in ("usd", "per") if not _positive(entry.get(k))]
        if not str(entry.get("source", "")).startswith("https://"):
            missing.append("source (an https:// URL)")
        if missing:
            problems.append(f"price {name!r} lacks {', '.join(missing)}")
            continue
        prices[name] = Price(float(entry["usd"]), float(entry["per"]), str(entry.get("unit", "")),
                             str(entry.get("what", name)), str(entry["source"]))
    instances: dict[str, Instance] = {}
    for name, entry in (data.get("ec2") or {}).items():
        missing = [k for k in ("usd_per_hour", "vcpus") if not _positive(entry.get(k))]
        if not str(entry.get("source", "")).startswith("https://"):
            missing.append("source (an https:// URL)")
        if missing:
            problems.append(f"instance type {name!r} lacks {', '.join(missing)}")
            continue
        instances[name] = Instance(name, float(entry["usd_per_hour"]), int(entry["vcpus"]), str(entry.get("cpu", "")),
                                   str(entry["source"]))
    if problems:
        raise PriceTableError(f"{path}: " + "; ".join(problems))
    return PriceTable(str(date), str(data["region"]), str(data.get("note", "")), prices, instances, path)


def load_prices(path: Path = PRICES) -> PriceTable:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PriceTableError(f"cannot read the price table {path}: {exc}") from None
    try:
        shown = str(path.relative_to(REPO_ROOT))
    except ValueError:
        shown = str(path)
    return parse_prices(data, shown)


# ---- the arithmetic ----------------------------------------------------------------------------


def sqs_requests(payload_bytes: float) -> int:
    """What SQS bills for one call: each 64 KiB chunk of its payload is a request, and a call is at
    least one (a batch of 10 small messages is one request; one 256 KiB message is four)."""
    return max(1, math.ceil(payload_bytes / CHUNK_BYTES))


def sqs_billed(calls_per_image: float, payload_bytes_per_image: float) -> float:
    """Billed SQS requests per image of an operation made ``calls_per_image`` times per image,
    carrying ``payload_bytes_per_image`` in all (spread evenly over its calls)."""
    if calls_per_image <= 0:
        return 0.0
    return calls_per_image * sqs_requests(payload_bytes_per_image / calls_per_image)


def lambda_gb_seconds(seconds: float, memory_mb: int) -> float:
    """One invocation's billed GB-seconds: its duration rounded up to the millisecond, at its memory."""
    return memory_mb / 1024 * math.ceil(round(seconds * 1000, 6)) / 1000


@dataclass(frozen=True)
class Workload:
    """What an image takes, as a bench run measured it and as the code makes its calls."""

    worker_cpu_ms_per_image: float  # the worker process's CPU (all its threads) per answered image
    sync_request_s: float  # a synchronous request's latency: how long the web function waits, billed
    web_cpu_s_per_image: float  # the web tier's CPU per image, on one of the bench's cores
    web_memory_mb: int = 512
    image_bytes: float = 100_000  # mean upload: stored in S3 for the inputs' retention
    worker_calls: Mapping[str, float] = field(default_factory=lambda: dict(WORKER_CALLS))
    request_message_bytes: float = REQUEST_MESSAGE_BYTES  # with any image bytes a message carries
    result_bytes: float = RESULT_BYTES
    polls_per_image: float = 1.0  # GET /v1/images/{id} per image on the asynchronous path
    aws_call_wait_s: float = AWS_CALL_WAIT_S
    busy_share: float = 1.0  # of the instance's vCPU time spent on the worker (1: a queue that never runs dry)
    heartbeat_s: float = HEARTBEAT_S
    root_volume_gb: float = ROOT_VOLUME_GB
    log_bytes_per_api_call: float = 0.0  # the access log's line and Lambda's START/END/REPORT
    input_retention_days: float = 7
    result_retention_days: float = 30
    log_retention_days: float = 90


@dataclass(frozen=True)
class Line:
    key: str
    component: str
    usd: float  # per million images
    detail: str


COMPONENTS = {
    "api": "API Gateway (REST API) requests",
    "lambda_requests": "web function (Lambda) requests",
    "lambda_duration": "web function (Lambda) duration",
    "sqs": "SQS requests",
    "s3_requests": "S3 requests (PUT, LIST, GET)",
    "s3_storage": "S3 storage",
    "worker": "worker instance time",
    "worker_extras": "worker's public IPv4 address, root volume, heartbeats",
    "logs": "CloudWatch Logs",
}


def _n(value: float) -> str:
    """A count or a measure for the reader: whole thousands with commas, else 3 significant digits."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def worker_seconds_per_image(work: Workload, instance: Instance) -> float:
    """Instance seconds per image: its CPU time spread over the instance's vCPUs (one bench vCPU
    taken for one instance vCPU), at the share of the time the worker keeps them busy."""
    return work.worker_cpu_ms_per_image / 1000 / instance.vcpus / work.busy_share


def web_call_s(work: Workload, calls: int) -> float:
    """A short web invocation (``wait=0``'s POST, or a poll): the web tier's CPU at the function's
    share of a vCPU, plus the round trips of its AWS calls (assumed)."""
    slower = max(1.0, LAMBDA_MB_PER_VCPU / work.web_memory_mb)
    return work.web_cpu_s_per_image * slower + calls * work.aws_call_wait_s


def _s3_split(calls: Mapping[str, float]) -> tuple[float, float]:
    """(PUT-class, GET-class) S3 requests per image among ``calls`` (``s3.<Operation>``: count)."""
    put = get = 0.0
    for op, count in calls.items():
        service, _, name = op.partition(".")
        if service != "s3" or name in S3_FREE:
            continue
        if name in S3_PUT_CLASS:
            put += count
        else:
            get += count
    return put, get


def _worker_sqs(work: Workload, sync: bool) -> tuple[float, float]:
    """(calls, billed requests) per image of the worker's SQS calls on AWS, from its counted calls
    (made for requests that one web process waits for, so one reply call per batch).

    On Lambda each waiting request is its own execution environment with its own reply queue, so a
    batch's replies are one call each; with ``wait=0`` nobody waits, and there is no reply call."""
    calls = dict(work.worker_calls)
    receives = calls.get("sqs.ReceiveMessage", 0.0)
    sends = calls.get("sqs.SendMessageBatch", 0.0) + calls.get("sqs.SendMessage", 0.0)
    billed = total = 0.0
    for op, count in calls.items():
        service, _, name = op.partition(".")
        if service != "sqs" or name.startswith("Send"):
            continue
        payload = work.request_message_bytes if name == "ReceiveMessage" else 0.0
        total += count
        billed += sqs_billed(count, payload)
    # The sends: replies (one call per batch as counted) and announcements, each result's bytes.
    others = max(0.0, sends - receives)  # announcements (and any other send) per image
    if others:
        total += others
        billed += sqs_billed(others, work.result_bytes)
    replies = 1.0 if sync else 0.0
    total += replies
    billed += sqs_billed(replies, work.result_bytes * replies)
    return total, billed


def per_million(work: Workload, prices: PriceTable, instance: Instance, sync: bool) -> list[Line]:
    """The cost of a million images by component, for ``wait`` (``sync``) or ``wait=0`` with
    ``work.polls_per_image`` polls."""
    polls = 0.0 if sync else work.polls_per_image
    gets = 1.0 + polls  # API requests and Lambda invocations per image
    mem = work.web_memory_mb
    lines: list[Line] = []

    def add(key: str, usd: float, detail: str, component: str | None = None) -> None:
        lines.append(Line(key, component or COMPONENTS[key], usd, detail))

    add("api", prices["api_gateway_rest_request"].of(IMAGES * gets),
        "1 request per image" + (f" + {_n(polls)} GET poll" if polls else ""))
    add("lambda_requests", prices["lambda_request"].of(IMAGES * gets),
        "1 invocation per image" + (f" + {_n(polls)} per poll" if polls else ""))
    if sync:
        gb_s = lambda_gb_seconds(work.sync_request_s, mem)
        detail = f"{_n(work.sync_request_s)} s at {mem} MB per image: it waits for the answer"
    else:
        post, poll = web_call_s(work, 2), web_call_s(work, 2)
        gb_s = lambda_gb_seconds(post, mem) + polls * lambda_gb_seconds(poll, mem)
        detail = (f"{_n(post)} s at {mem} MB per POST (the web tier's CPU at Lambda's share of a vCPU, and "
                  f"2 AWS calls' round trips) + {_n(poll)} s per poll")
    add("lambda_duration", prices["lambda_x86_gb_second"].of(IMAGES * gb_s), detail,
        f"{COMPONENTS['lambda_duration']} at {mem} MB")

    # SQS: the web tier sends the request; waiting, it receives its reply and deletes it.
    web_calls = 1.0 + (2.0 if sync else 0.0)
    web_billed = sqs_billed(1.0, work.request_message_bytes) + (
        sqs_billed(1.0, work.result_bytes) + sqs_billed(1.0, 0) if sync else 0.0)
    worker_calls, worker_billed = _worker_sqs(work, sync)
    add("sqs", prices["sqs_standard_request"].of(IMAGES * (web_billed + worker_billed)),
        f"{_n(web_billed + worker_billed)} billed requests per image from {_n(web_calls + worker_calls)} calls: "
        f"web tier {_n(web_calls)} (send" + (", receive and delete the reply" if sync else "") + "), worker "
        f"{_n(worker_calls)} (receive, " + ("reply, " if sync else "") + "delete; announcements where counted)")
    put, get = _s3_split(work.worker_calls)
    put += 1.0 + polls  # the web tier's PUT of the input; a poll's LIST finds the request's name
    get += polls  # and its GET reads the result (or finds none yet, billed all the same)
    add("s3_requests", prices["s3_put"].of(IMAGES * put) + prices["s3_get"].of(IMAGES * get),
        f"{_n(put)} PUT/LIST and {_n(get)} GET per image")
    gb_months = IMAGES * (work.image_bytes * work.input_retention_days
                          + work.result_bytes * work.result_retention_days) / GIB / DAYS_PER_MONTH
    add("s3_storage", prices["s3_storage_gb_month"].of(gb_months),
        f"inputs of {_n(work.image_bytes / 1000)} kB for {_n(work.input_retention_days)} days, results for "
        f"{_n(work.result_retention_days)} days")

    seconds = worker_seconds_per_image(work, instance)
    hours = IMAGES * seconds / 3600
    add("worker", hours * instance.usd_per_hour,
        f"{_n(work.worker_cpu_ms_per_image)} ms of CPU per image on {instance.vcpus} vCPUs: "
        f"{_n(1 / seconds)} images/s, {_n(hours)} instance-hours", f"{COMPONENTS['worker']} ({instance.name})")
    puts = IMAGES * seconds / work.heartbeat_s * 2  # a heartbeat and the metrics window, each tick
    extras = (prices["public_ipv4_hour"].of(hours)
              + prices["ebs_gp3_gb_month"].of(work.root_volume_gb * hours / HOURS_PER_MONTH)
              + prices["s3_put"].of(puts))
    add("worker_extras", extras, f"for {_n(hours)} hours; {_n(puts)} S3 PUTs (2 every {_n(work.heartbeat_s)} s)")
    log_bytes = IMAGES * gets * work.log_bytes_per_api_call
    add("logs", prices["cloudwatch_logs_ingest_gb"].of(log_bytes / GIB)
        + prices["cloudwatch_logs_storage_gb_month"].of(log_bytes / GIB * work.log_retention_days / DAYS_PER_MONTH),
        f"{_n(gets * work.log_bytes_per_api_call)} bytes per image (API access log, Lambda's lines), kept "
        f"{_n(work.log_retention_days)} days (storage counted uncompressed: at most)")
    return lines


def total(lines: list[Line]) -> float:
    return sum(line.usd for line in lines)


@dataclass(frozen=True)
class Fleet:
    """The parts that cost whatever the volume (template.yaml, chalice_web/.chalice/config.json)."""

    scaler_memory_mb: int = 256
    scaler_run_s: float = 55.0  # each scheduled invocation keeps scaling this long, every minute
    scaler_tick_s: float = 2.0  # a queue-depth read each tick
    status_refresh_s: float = 30.0  # the fleet's status PUT at least this often
    sweeper_memory_mb: int = 128
    sweeper_every_s: float = 300.0
    sweeper_run_s: float = 1.0  # at most (a LIST of queues)
    log_bytes_per_invocation: float = 0.0


def fixed_per_month(fleet: Fleet, prices: PriceTable) -> list[Line]:
    """What the stack costs a month with no image at all: the scaler and the reply-queue sweeper."""
    minutes = HOURS_PER_MONTH * 60
    scaler_gb_s = minutes * lambda_gb_seconds(fleet.scaler_run_s, fleet.scaler_memory_mb)
    reads = minutes * fleet.scaler_run_s / fleet.scaler_tick_s
    status_puts = minutes * math.ceil(fleet.scaler_run_s / fleet.status_refresh_s)
    sweeps = HOURS_PER_MONTH * 3600 / fleet.sweeper_every_s
    invocations = minutes + sweeps
    return [
        Line("scaler", f"scaler (Lambda, {fleet.scaler_memory_mb} MB, {_n(fleet.scaler_run_s)} s of every minute)",
             prices["lambda_x86_gb_second"].of(scaler_gb_s) + prices["lambda_request"].of(minutes),
             f"{_n(scaler_gb_s)} GB-s and {_n(minutes)} invocations"),
        Line("scaler_calls", "scaler's queue reads and fleet status",
             prices["sqs_standard_request"].of(reads) + prices["s3_put"].of(status_puts),
             f"{_n(reads)} GetQueueAttributes (one every {_n(fleet.scaler_tick_s)} s), {_n(status_puts)} S3 PUTs"),
        Line("sweeper", f"reply-queue sweeper (Lambda, {fleet.sweeper_memory_mb} MB, every "
             f"{_n(fleet.sweeper_every_s / 60)} minutes)",
             prices["lambda_x86_gb_second"].of(sweeps * lambda_gb_seconds(fleet.sweeper_run_s, fleet.sweeper_memory_mb))
             + prices["lambda_request"].of(sweeps) + prices["sqs_standard_request"].of(sweeps),
             f"{_n(sweeps)} invocations of at most {_n(fleet.sweeper_run_s)} s, a ListQueues each"),
        Line("fixed_logs", "their CloudWatch Logs",
             prices["cloudwatch_logs_ingest_gb"].of(invocations * fleet.log_bytes_per_invocation / GIB),
             f"{_n(invocations)} invocations' START/END/REPORT lines"),
    ]


def always_on_worker_per_month(work: Workload, prices: PriceTable, instance: Instance) -> float:
    """One worker kept running a month (``IRAAS_MIN_WORKERS=1``; the template's default scales to
    zero): the instance, its address and volume, and its heartbeat every ``heartbeat_s``."""
    return (HOURS_PER_MONTH * (instance.usd_per_hour + prices["public_ipv4_hour"].of(1))
            + prices["ebs_gp3_gb_month"].of(work.root_volume_gb)
            + prices["s3_put"].of(HOURS_PER_MONTH * 3600 / work.heartbeat_s))


def break_even(fixed_usd: float, own_per_image: float, rekognition_per_image: float) -> float | None:
    """Images a month above which IRaaS costs less than Rekognition; None if it never does."""
    if own_per_image >= rekognition_per_image:
        return None
    return fixed_usd / (rekognition_per_image - own_per_image)


# ---- the instance type that matches the bench's CPU --------------------------------------------


def instance_for(cpuinfo: str, machine: str = "x86_64") -> tuple[str, str]:
    """The EC2 type (2 vCPUs, compute-optimised) whose CPU matches the one ``/proc/cpuinfo``
    describes, and why: an Intel Xeon with AMX is a c7i, without it a c6i; an AMD EPYC with AVX-512 a
    c7a (Genoa), without it a c6a (Milan); Arm a c7g. Unknown: the template's default, c7i.large."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    vendor = fields.get("vendor_id", "")
    if machine in ("aarch64", "arm64"):
        return "c7g.large", "an Arm CPU: Graviton3"
    if vendor == "GenuineIntel":
        if "amx_tile" in flags:
            return "c7i.large", "an Intel Xeon with AMX: 4th generation (Sapphire Rapids), as in c7i"
        return "c6i.large", "an Intel Xeon without AMX: taken for 3rd generation (Ice Lake), as in c6i"
    if vendor == "AuthenticAMD":
        if "avx512f" in flags:
            return "c7a.large", "an AMD EPYC with AVX-512: 4th generation (Genoa), as in c7a"
        return "c6a.large", "an AMD EPYC without AVX-512: 3rd generation (Milan), as in c6a"
    return "c7i.large", "a CPU not recognised: the template's default WorkerInstanceType"


# ---- one report, and its Markdown --------------------------------------------------------------


def access_log_bytes(fmt: str) -> int:
    """Bytes of one API access log line in ``fmt`` (the template's AccessLogSetting Format) with
    representative values; a field not in ACCESS_LOG_SAMPLES counts as ``-``."""
    line = re.sub(r"\$context\.([A-Za-z.]+)", lambda m: ACCESS_LOG_SAMPLES.get(m.group(1), "-"), fmt)
    return len(line.encode()) + 1


def report(work: Workload, prices: PriceTable, instance: Instance, fleet: Fleet, *, date: str, why: str,
           cpu_model: str, inputs: Mapping[str, Mapping[str, Any]], measured_calls: float | None = None,
           note: str = "") -> dict[str, Any]:
    """``bench/out/cost.json``: both paths by component, Rekognition's price beside them, what the
    stack costs a month whatever the volume, and where IRaaS starts to cost less."""
    rekognition = prices["rekognition_detect_labels_image"].of(IMAGES)
    paths = {"sync": per_million(work, prices, instance, sync=True),
             "async": per_million(work, prices, instance, sync=False)}
    one_more = per_million(replace(work, polls_per_image=work.polls_per_image + 1), prices, instance, sync=False)
    fixed = fixed_per_month(fleet, prices)
    always_on = always_on_worker_per_month(work, prices, instance)
    cheaper = min(total(paths["sync"]), total(paths["async"])) / IMAGES
    per_image = rekognition / IMAGES
    return {
        "date": date,
        "note": note,
        "cpu_model": cpu_model,
        "instance": {**asdict(instance), "why": why},
        "prices": {"file": prices.path, "date": prices.date, "region": prices.region, "note": prices.note},
        "inputs": {k: dict(v) for k, v in inputs.items()},
        "workload": {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in asdict(work).items()},
        "per_million_images": {
            name: {"lines": [asdict(line) for line in lines], "total_usd": round(total(lines), 4)}
            for name, lines in paths.items()
        },
        "each_further_poll_usd": round(total(one_more) - total(paths["async"]), 4),
        "rekognition_detect_labels_usd": rekognition,
        "fixed_per_month": {"lines": [asdict(line) for line in fixed], "total_usd": round(total(fixed), 4)},
        "one_worker_always_on_per_month_usd": round(always_on, 2),
        "break_even_images_per_month": {
            "scaling_to_zero": break_even(total(fixed), cheaper, per_image),
            "one_worker_always_on": break_even(total(fixed) + always_on, cheaper, per_image),
        },
        "aws_calls_per_image_measured": measured_calls,
    }


def _usd(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 0.01:
        return f"${value:,.2f}"
    return f"${value:.1g}"


def _count(value: float | None) -> str:
    return "never" if value is None else f"about {value:,.0f}"


def render(data: Mapping[str, Any]) -> str:
    """``docs/cost-figures.md``: the Markdown ``docs/cost.md`` includes."""
    inst, prices = data["instance"], data["prices"]
    paths = data["per_million_images"]
    sync, async_ = paths["sync"], paths["async"]
    polls = data["workload"]["polls_per_image"]
    rek = data["rekognition_detect_labels_usd"]
    lines = [
        "<!-- Generated by `make bench` (bench/cost.py) from bench/out/ and bench/prices_us_east_1.toml: do not "
        "edit by hand. `python -m bench.cost` writes it again from the files the last run left. -->",
        "",
        f"*Figures from one `make bench` run on {data['date']} ({data['cpu_model']}), priced for "
        f"**{inst['name']}** workers ({inst['why']}; {inst['vcpus']} vCPUs, ${inst['usd_per_hour']} an hour), with "
        f"the {prices['region']} on-demand list prices of **{prices['date']}** (`{prices['file']}`): "
        f"{prices['note']}.*",
    ]
    if data.get("note"):
        lines += ["", f"*{data['note']}*"]
    lines += [
        "",
        f"| per million images | `wait` (synchronous) | `wait=0`, {polls:g} GET poll{'s' if polls != 1 else ''} |",
        "|---|--:|--:|",
    ]
    for s, a in zip(sync["lines"], async_["lines"], strict=True):
        lines.append(f"| {s['component']} | {_usd(s['usd'])} | {_usd(a['usd'])} |")
    lines += [
        f"| **IRaaS on AWS** | **{_usd(sync['total_usd'])}** | **{_usd(async_['total_usd'])}** |",
        f"| Rekognition DetectLabels (list price, first million a month) | {_usd(rek)} | {_usd(rek)} |",
        f"| IRaaS as a share of Rekognition | {100 * sync['total_usd'] / rek:.1f}% | "
        f"{100 * async_['total_usd'] / rek:.1f}% |",
        "",
        f"Each further poll of an image on `wait=0` adds {_usd(data['each_further_poll_usd'])} per million images.",
        "",
        "How each is counted, `wait` / `wait=0`:",
        "",
    ]
    for s, a in zip(sync["lines"], async_["lines"], strict=True):
        same = s["detail"] == a["detail"]
        lines.append(f"- **{s['component']}**: {s['detail']}" + ("" if same else f" / {a['detail']}") + ".")
    fixed = data["fixed_per_month"]
    lines += ["", "Whatever the volume, per month:", "", "| what | per month | counted |", "|---|--:|---|"]
    lines += [f"| {f['component']} | {_usd(f['usd'])} | {f['detail']} |" for f in fixed["lines"]]
    lines += [
        f"| **the stack with no image** | **{_usd(fixed['total_usd'])}** | the fleet scales to zero workers |",
        f"| one worker kept running (`IRAAS_MIN_WORKERS=1`) | {_usd(data['one_worker_always_on_per_month_usd'])} | "
        f"{inst['name']}, its address, volume and heartbeats, 730 hours |",
        "",
    ]
    even = data["break_even_images_per_month"]
    lines.append(f"IRaaS costs less than Rekognition above {_count(even['scaling_to_zero'])} images a month as "
                 f"deployed (scaling to zero), above {_count(even['one_worker_always_on'])} with one worker "
                 f"always running.")
    lines += ["", "Inputs:", ""]
    lines += [f"- {v['what']}: {v['value']:g}{v.get('unit', '')} ({v['from']})" for v in data["inputs"].values()]
    measured = data.get("aws_calls_per_image_measured")
    if measured is not None:
        lines.append(f"- AWS calls per image that `bench.service` counted on the embedded stack (its threaded web "
                     f"tier, the scaler and heartbeats included): {measured:g}")
    return "\n".join(lines) + "\n"


# ---- reading what the other steps wrote --------------------------------------------------------


class MissingInput(RuntimeError):
    """A figure the cost needs was not measured: the message says which step measures it."""


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _warm(service: Mapping[str, Any], role: str) -> float | None:
    """The median over the warm bursts of ``role``'s CPU seconds per image (bench.service)."""
    values = [v for run in service.get("warm") or [] if (v := _num((run.get("cpu_s_per_image") or {}).get(role)))]
    return statistics.median(values) if values else None


def _input(what: str, value: float, source: str, unit: str = "") -> dict[str, Any]:
    return {"what": what, "value": round(value, 6), "unit": unit, "from": source}


def worker_inputs(out: Path) -> tuple[float, dict[str, float] | None, dict[str, Any]]:
    """The worker's CPU ms per image and its AWS calls per image by operation (None: not counted),
    with the input's description: from ``worker_cpu.json``, else ``service.json``'s workers, else
    ``worker.json`` (an upper bound)."""
    wc = _load(out / "worker_cpu.json")
    calls = (wc.get("worker_aws_calls") or {}).get("by_operation")
    calls = {k: float(v) for k, v in calls.items() if _num(v) is not None} if isinstance(calls, dict) else None
    if (ms := _num(wc.get("worker_cpu_ms_per_image"))) is not None:
        source = "bench/out/worker_cpu.json: one fixed worker's process, per answered image"
        return ms, calls, _input("worker's CPU per image", ms, source, " ms")
    if (s := _warm(_load(out / "service.json"), "workers")) is not None:
        source = ("bench/out/service.json: the workers' CPU per image in the warm bursts; "
                  "bench/out/worker_cpu.json had no worker_cpu_ms_per_image")
        return 1000 * s, calls, _input("worker's CPU per image", 1000 * s, source, " ms")
    worker = _load(out / "worker.json")
    rate, cpus = _num(worker.get("worker_images_per_s")), _num(worker.get("cpus"))
    if rate:
        cpus = cpus or 2.0
        source = (f"bench/out/worker.json: {cpus:g} cores / its images per second, the in-process endpoint "
                  "included (an upper bound); neither worker_cpu.json nor service.json had the figure")
        return 1000 * cpus / rate, calls, _input("worker's CPU per image", 1000 * cpus / rate, source, " ms")
    raise MissingInput("no figure for the worker's CPU per image: run `python -m bench.run --only worker_cpu` "
                       "(or service)")


def template_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    params = template.get("Parameters") or {}

    def default(name: str, fallback: Any) -> Any:
        return (params.get(name) or {}).get("Default", fallback)

    api = ((template.get("Globals") or {}).get("Api") or {}).get("AccessLogSetting") or {}
    return {
        "input_retention_days": float(default("InputRetentionDays", 7)),
        "result_retention_days": float(default("ResultRetentionDays", 30)),
        "log_retention_days": float(default("LogRetentionDays", 90)),
        "worker_instance_type": str(default("WorkerInstanceType", "c7i.large")),
        "access_log_format": str(api.get("Format", "")),
    }


def function_memory_mb(config: Mapping[str, Any], function: str, stage: str = "dev") -> int:
    """A chalice function's memory size: its own setting, else the stage's, else chalice's 128."""
    settings = (config.get("stages") or {}).get(stage) or {}
    own = (settings.get("lambda_functions") or {}).get(function) or {}
    return int(own.get("lambda_memory_size") or settings.get("lambda_memory_size") or config.get(
        "lambda_memory_size") or 128)


def photo_bytes(count: int = 200) -> tuple[float, str]:
    """Mean bytes of the photos bench.service sends (its first ``count``)."""
    try:
        from harness.data import shared_data_dir

        found = sorted((shared_data_dir() / "imagenet-sample" / "images").glob("*.JPEG"))[:count]
    except Exception:  # noqa: BLE001 - no shared data: a round figure, said so
        found = []
    if not found:
        return 100_000.0, "no shared photos found: a round 100 kB"
    return statistics.mean(p.stat().st_size for p in found), f"the first {len(found)} photos bench.service sends"


def gather(out: Path = OUT) -> tuple[Workload, Fleet, dict[str, dict[str, Any]], float | None, str]:
    """The workload, the fleet, the inputs' descriptions, bench.service's AWS calls per image and the
    template's worker type, from bench/out/, template.yaml and the web tier's chalice config."""
    from iraas.config import TEMPLATE
    from iraas.images.settings import WorkerSettings
    from iraas.local.template import load_template
    from iraas.scaling.policy import ScalingConfig
    from iraas.scaling.settings import ScalingSettings

    worker_ms, calls, worker_input = worker_inputs(out)
    service = _load(out / "service.json")
    wait = _num((service.get("warm_median") or {}).get("p50_s"))
    web = _warm(service, "web")
    if wait is None or web is None:
        raise MissingInput("no latency or web tier CPU per image in bench/out/service.json: run "
                           "`python -m bench.run --only service`")
    defaults = template_defaults(load_template(TEMPLATE))
    config = json.loads(CHALICE_CONFIG.read_text())
    memory = function_memory_mb(config, "api_handler")
    image, image_from = photo_bytes()
    log_bytes = access_log_bytes(defaults["access_log_format"]) + len(LAMBDA_PLATFORM_LINES.encode())
    batch = WorkerSettings.batch_size
    if calls is None:
        calls = {**WORKER_CALLS, "sqs.ReceiveMessage": 1 / batch, "sqs.SendMessageBatch": 2 / batch,
                 "sqs.DeleteMessageBatch": 1 / batch}
        calls_from = f"as iraas.images.worker makes them (batches of {batch}); bench.worker_cpu did not count them"
    else:
        calls_from = "bench/out/worker_cpu.json: counted with botocore's event hooks"
    # A request that carries its image (no GET of the input) carries at most a first 64 KiB chunk.
    inline = max(0.0, 1.0 - calls.get("s3.GetObject", 1.0)) * CHUNK_BYTES
    work = Workload(
        worker_cpu_ms_per_image=worker_ms, sync_request_s=wait, web_cpu_s_per_image=web, web_memory_mb=memory,
        image_bytes=image, worker_calls=calls, request_message_bytes=REQUEST_MESSAGE_BYTES + inline,
        log_bytes_per_api_call=log_bytes, input_retention_days=defaults["input_retention_days"],
        result_retention_days=defaults["result_retention_days"], log_retention_days=defaults["log_retention_days"],
    )
    fleet = Fleet(
        scaler_memory_mb=function_memory_mb(config, "scale"), scaler_run_s=ScalingSettings.scaler_invocation_s,
        scaler_tick_s=ScalingConfig.tick_s, sweeper_memory_mb=function_memory_mb(config, "sweep_replies"),
        log_bytes_per_invocation=len(LAMBDA_PLATFORM_LINES.encode()),
    )
    inputs = {
        "worker_cpu_ms_per_image": worker_input,
        "worker_calls_per_image": _input(
            "the worker's AWS calls per image", sum(calls.values()),
            f"{calls_from}: " + ", ".join(f"{op} {_n(n)}" for op, n in calls.items())),
        "sync_request_s": _input("a synchronous request's latency (the web function's billed wait)", wait,
                                 "bench/out/service.json: the warm bursts' median p50 (100 at once on the bench "
                                 "machine; a lone request on a warm fleet waits less)", " s"),
        "web_cpu_ms_per_image": _input("the web tier's CPU per image", 1000 * web,
                                       "bench/out/service.json: the warm bursts' median, web process", " ms"),
        "web_memory_mb": _input("the web function's memory", memory, "chalice_web/.chalice/config.json", " MB"),
        "image_bytes": _input("mean upload", image, image_from, " bytes"),
        "log_bytes_per_api_call": _input("bytes logged per API call", log_bytes,
                                         "template.yaml's access log format with typical values, and Lambda's "
                                         "START/END/REPORT lines"),
    }
    measured = _num((service.get("warm_median") or {}).get("aws_calls_per_image"))
    return work, fleet, inputs, measured, defaults["worker_instance_type"]


def write(data: Mapping[str, Any], out: Path = OUT, figures: Path = FIGURES) -> list[Path]:
    save_report(out / "cost.json", dict(data))
    figures.parent.mkdir(parents=True, exist_ok=True)
    figures.write_text(render(data))
    return [out / "cost.json", figures]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the other steps' files are, and cost.json goes")
    parser.add_argument("--figures", type=Path, default=FIGURES, help="the Markdown to write (docs/cost-figures.md)")
    parser.add_argument("--prices", type=Path, default=PRICES)
    parser.add_argument("--polls", type=float, default=1.0, help="GET polls per image on wait=0 (default 1)")
    parser.add_argument("--note", default="", help="a line to print under the table's heading")
    parser.add_argument("--print", action="store_true", help="print the table only; write nothing")
    args = parser.parse_args(argv)
    try:
        prices = load_prices(args.prices)
        work, fleet, inputs, measured, default_type = gather(args.out)
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
        name, why = instance_for(cpuinfo, platform.machine())
        if name != default_type:
            why += f" (the template deploys {default_type} unless WorkerInstanceType says otherwise)"
        from bench.run import cpu_model

        data = report(replace(work, polls_per_image=args.polls), prices, prices.instance(name), fleet,
                      date=datetime.date.today().isoformat(), why=why, cpu_model=cpu_model(), inputs=inputs,
                      measured_calls=measured, note=args.note)
    except (PriceTableError, MissingInput) as exc:
        print(f"bench.cost: {exc}", file=sys.stderr)
        return 2
    print(render(data), end="")
    if not args.print:
        for path in write(data, args.out, args.figures):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
