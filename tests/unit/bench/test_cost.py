"""bench/cost.py (`make bench`'s cost step): what a million images cost on AWS by component, from the
measured figures and the dated price table; checked on numbers worked out by hand."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench import cost
from bench import run as bench_run

# Round prices, so that each expected figure can be worked out on paper.
PRICES = cost.parse_prices({
    "date": "2026-01-02",
    "region": "us-east-1",
    "prices": {
        name: {"usd": usd, "per": per, "unit": "units", "source": "https://aws.amazon.com/pricing/"}
        for name, usd, per in [
            ("api_gateway_rest_request", 3.50, 1_000_000),
            ("lambda_x86_gb_second", 0.0000166667, 1),
            ("lambda_request", 0.20, 1_000_000),
            ("sqs_standard_request", 0.40, 1_000_000),
            ("s3_put", 0.005, 1000),
            ("s3_get", 0.0004, 1000),
            ("s3_storage_gb_month", 0.023, 1),
            ("cloudwatch_logs_ingest_gb", 0.50, 1),
            ("cloudwatch_logs_storage_gb_month", 0.03, 1),
            ("public_ipv4_hour", 0.005, 1),
            ("ebs_gp3_gb_month", 0.08, 1),
            ("rekognition_detect_labels_image", 1.00, 1000),
        ]
    },
    "ec2": {"test.large": {"usd_per_hour": 0.0893, "vcpus": 2, "cpu": "a test CPU",
                           "source": "https://aws.amazon.com/ec2/pricing/on-demand/"}},
}, "test prices")
INSTANCE = PRICES.instance("test.large")
# 100 images/s per vCPU is 10 ms of CPU per image; a 1.25 s synchronous wait at 512 MB.
WORK = cost.Workload(worker_cpu_ms_per_image=10.0, sync_request_s=1.25, web_cpu_s_per_image=0.005,
                     web_memory_mb=512, image_bytes=100_000, log_bytes_per_api_call=500)


def line(lines: list[cost.Line], key: str) -> cost.Line:
    return next(one for one in lines if one.key == key)


def test_a_million_images_at_100_per_second_per_vcpu_on_two_vcpus_take_5000_instance_seconds() -> None:
    lines = cost.per_million(WORK, PRICES, INSTANCE, sync=True)
    assert line(lines, "worker").usd == pytest.approx(1_000_000 / 200 * 0.0893 / 3600)  # $0.124
    assert "test.large" in line(lines, "worker").component
    # Half of the vCPUs' time spent waiting doubles it.
    half = cost.per_million(replace(WORK, busy_share=0.5), PRICES, INSTANCE, sync=True)
    assert line(half, "worker").usd == pytest.approx(2 * 1_000_000 / 200 * 0.0893 / 3600)


def test_the_worker_extras_are_its_address_and_volume_for_those_hours_and_two_puts_every_two_seconds() -> None:
    hours = 5000 / 3600
    expected = hours * 0.005 + 8 * 0.08 * hours / 730 + 5000 / 2 * 2 * 0.005 / 1000
    assert line(cost.per_million(WORK, PRICES, INSTANCE, sync=True), "worker_extras").usd == pytest.approx(expected)


@pytest.mark.parametrize(("payload", "requests"), [(0, 1), (400, 1), (65_536, 1), (65_537, 2), (256 * 1024, 4)])
def test_sqs_bills_each_64_kib_chunk_of_a_call_as_a_request(payload: int, requests: int) -> None:
    assert cost.sqs_requests(payload) == requests


def test_a_batch_of_small_messages_is_one_request_but_a_batch_of_large_ones_a_request_per_chunk() -> None:
    assert cost.sqs_billed(1 / 8, 400) == pytest.approx(1 / 8)  # 8 messages of 400 bytes: 3.2 KB in one call
    assert cost.sqs_billed(1 / 8, 40_000) == pytest.approx(5 / 8)  # 8 of 40 kB: 320 kB, 5 chunks
    assert cost.sqs_billed(0, 40_000) == 0


def test_waiting_costs_lambda_every_second_of_the_wait_and_three_sqs_calls_on_the_web_side() -> None:
    sync = cost.per_million(WORK, PRICES, INSTANCE, sync=True)
    assert line(sync, "lambda_duration").usd == pytest.approx(1_000_000 * 0.5 * 1.25 * 0.0000166667)  # $10.42
    assert line(sync, "api").usd == pytest.approx(3.50)
    assert line(sync, "lambda_requests").usd == pytest.approx(0.20)
    # Web: send, receive the reply, delete it (3); worker, batches of 8: receive, announce and delete
    # (3/8), and one reply per image (each waiting Lambda environment has its own reply queue).
    assert line(sync, "sqs").usd == pytest.approx((3 + 3 / 8 + 1) * 0.40)
    # The input's PUT and the result's PUT; the input's GET.
    assert line(sync, "s3_requests").usd == pytest.approx(2 * 5 + 1 * 0.4)


def test_wait_0_with_one_poll_pays_a_second_api_call_and_an_s3_list_billed_like_a_put_but_no_waiting() -> None:
    async_ = cost.per_million(WORK, PRICES, INSTANCE, sync=False)
    assert line(async_, "api").usd == pytest.approx(7.00)
    assert line(async_, "lambda_requests").usd == pytest.approx(0.40)
    assert line(async_, "sqs").usd == pytest.approx((1 + 3 / 8) * 0.40)  # no reply to send, receive or delete
    assert line(async_, "s3_requests").usd == pytest.approx(3 * 5 + 2 * 0.4)  # + the poll's LIST and GET
    # The web tier's 5 ms of CPU at 512 MB's share of a vCPU (1769/512 slower), and 2 calls' 10 ms: per call.
    one_call_s = 0.005 * 1769 / 512 + 0.020
    expected = 2 * 0.5 * (round(one_call_s * 1000 + 0.5) / 1000) * 0.0000166667 * 1_000_000
    assert line(async_, "lambda_duration").usd == pytest.approx(expected, rel=1e-3)
    never = cost.per_million(replace(WORK, polls_per_image=0), PRICES, INSTANCE, sync=False)
    assert line(never, "api").usd == pytest.approx(3.50)


def test_a_request_that_carries_its_image_makes_the_worker_s_receive_cost_a_request_per_chunk() -> None:
    calls = {**cost.WORKER_CALLS, "s3.GetObject": 0.0}
    carried = replace(WORK, worker_calls=calls, request_message_bytes=60_000)
    sync = cost.per_million(carried, PRICES, INSTANCE, sync=True)
    # 8 messages of 60 kB per receive: 480 kB, 8 chunks; the web tier's send of 60 kB is one.
    assert line(sync, "sqs").usd == pytest.approx((3 + 8 / 8 + 2 / 8 + 1) * 0.40)
    assert line(sync, "s3_requests").usd == pytest.approx(2 * 5)  # no GET of the input


def test_storage_and_logs_follow_the_retention() -> None:
    lines = cost.per_million(WORK, PRICES, INSTANCE, sync=True)
    gib_months = 1_000_000 * (100_000 * 7 + cost.RESULT_BYTES * 30) / 2**30 / (365 / 12)
    assert line(lines, "s3_storage").usd == pytest.approx(gib_months * 0.023)
    gib = 1_000_000 * 500 / 2**30
    assert line(lines, "logs").usd == pytest.approx(gib * 0.50 + gib * 90 / (365 / 12) * 0.03)


def test_the_lambda_duration_is_billed_by_the_millisecond_rounded_up() -> None:
    assert cost.lambda_gb_seconds(0.0101, 1024) == pytest.approx(0.011)
    assert cost.lambda_gb_seconds(0.010, 512) == pytest.approx(0.005)


def test_the_stack_with_no_image_costs_its_scaler_and_sweeper() -> None:
    fixed = cost.fixed_per_month(cost.Fleet(), PRICES)
    minutes = 730 * 60
    scaler = line(fixed, "scaler").usd
    assert scaler == pytest.approx(minutes * 0.25 * 55 * 0.0000166667 + minutes * 0.20 / 1e6)  # $10.05
    assert line(fixed, "scaler_calls").usd == pytest.approx(minutes * 27.5 * 0.40 / 1e6 + minutes * 2 * 0.005 / 1000)
    always_on = cost.always_on_worker_per_month(WORK, PRICES, INSTANCE)
    assert always_on == pytest.approx(730 * (0.0893 + 0.005) + 8 * 0.08 + 730 * 1800 * 0.005 / 1000)


def test_iraas_costs_less_than_rekognition_above_the_volume_that_pays_its_fixed_costs() -> None:
    assert cost.break_even(11.0, 0.000027, 0.001) == pytest.approx(11.0 / 0.000973)
    assert cost.break_even(11.0, 0.002, 0.001) is None


@pytest.mark.parametrize(("vendor", "flags", "machine", "expected"), [
    ("GenuineIntel", "fpu sse avx512f avx512_vnni amx_bf16 amx_tile amx_int8", "x86_64", "c7i.large"),
    ("GenuineIntel", "fpu sse avx512f avx512_vnni", "x86_64", "c6i.large"),
    ("AuthenticAMD", "fpu sse avx2 avx512f avx512_vnni", "x86_64", "c7a.large"),
    ("AuthenticAMD", "fpu sse avx2", "x86_64", "c6a.large"),
    ("", "fp asimd", "aarch64", "c7g.large"),
])
def test_the_instance_type_is_the_one_whose_cpu_matches_the_bench_s(vendor, flags, machine, expected) -> None:
    cpuinfo = f"processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: {flags}\n\nprocessor\t: 1\nvendor_id\t: other\n"
    name, why = cost.instance_for(cpuinfo, machine)
    assert name == expected
    assert why
    cost.load_prices().instance(name)  # and the price table has it


def test_the_price_table_has_a_date_a_region_and_a_source_for_every_price_the_cost_uses() -> None:
    table = cost.load_prices()
    assert table.date and table.region == "us-east-1" and "check" in table.note
    assert table.path == "bench/prices_us_east_1.toml"
    for price in [*table.prices.values(), *table.instances.values()]:
        assert price.source.startswith("https://aws.amazon.com/")
    # Every price the arithmetic asks for is there: it runs on the real table.
    cost.per_million(WORK, table, table.instance("c7i.large"), sync=True)
    cost.fixed_per_month(cost.Fleet(), table)
    assert table["rekognition_detect_labels_image"].of(1_000_000) == pytest.approx(1000.0)


def test_a_missing_price_names_itself_and_the_file_to_add_it_to() -> None:
    with pytest.raises(cost.PriceTableError, match=r"test prices has no price 'sqs_fifo_request'.*source"):
        PRICES["sqs_fifo_request"]
    with pytest.raises(cost.PriceTableError, match=r"no instance type 'm7i.large'"):
        PRICES.instance("m7i.large")


def test_a_price_without_a_source_or_a_table_without_a_date_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "prices.toml"
    bad.write_text('region = "us-east-1"\n[prices.s3_get]\nusd = 0.0004\nper = 1000\n'
                   '[ec2."x.large"]\nusd_per_hour = 0.1\nvcpus = 2\nsource = "https://aws.amazon.com/"\n')
    with pytest.raises(cost.PriceTableError) as error:
        cost.load_prices(bad)
    assert "is not a date" in str(error.value)
    assert "price 's3_get' lacks source" in str(error.value)
    with pytest.raises(cost.PriceTableError, match="cannot read"):
        cost.load_prices(tmp_path / "none.toml")


def test_the_access_log_line_is_measured_on_the_template_s_own_format() -> None:
    from iraas.config import TEMPLATE
    from iraas.local.template import load_template

    fmt = cost.template_defaults(load_template(TEMPLATE))["access_log_format"]
    fields = set(__import__("re").findall(r"\$context\.([A-Za-z.]+)", fmt))
    assert fields and fields <= set(cost.ACCESS_LOG_SAMPLES)  # no field left to a guess
    assert 250 < cost.access_log_bytes(fmt) < 500


def test_what_the_cost_reads_from_the_code_and_the_config_matches_them() -> None:
    from iraas.images.settings import WorkerSettings
    from iraas.images.worker import HEARTBEAT_INTERVAL_S

    assert cost.HEARTBEAT_S == HEARTBEAT_INTERVAL_S
    assert cost.WORKER_CALLS["sqs.ReceiveMessage"] == 1 / WorkerSettings.batch_size
    config = json.loads(cost.CHALICE_CONFIG.read_text())
    assert (cost.function_memory_mb(config, "api_handler"), cost.function_memory_mb(config, "scale")) == (512, 256)


def report() -> dict:
    inputs = {"worker_cpu_ms_per_image": {"what": "worker's CPU per image", "value": 10.0, "unit": " ms",
                                          "from": "bench/out/worker_cpu.json"}}
    return cost.report(WORK, PRICES, INSTANCE, cost.Fleet(), date="2026-01-03", why="a test CPU",
                       cpu_model="Test CPU", inputs=inputs, measured_calls=4.9)


def test_the_figures_carry_the_instance_type_the_price_date_the_totals_and_rekognition_beside_them() -> None:
    data = report()
    text = cost.render(data)
    assert text.startswith("<!-- Generated by `make bench` (bench/cost.py)")
    assert "do not edit by hand" in text.splitlines()[0]
    assert "**test.large**" in text and "**2026-01-02**" in text and "2026-01-03" in text
    sync, async_ = (data["per_million_images"][k]["total_usd"] for k in ("sync", "async"))
    assert f"| **IRaaS on AWS** | **${sync:,.2f}** | **${async_:,.2f}** |" in text
    assert "| Rekognition DetectLabels (list price, first million a month) | $1,000 | $1,000 |" in text
    assert f"| IRaaS as a share of Rekognition | {sync / 10:.1f}% |" in text
    rows = [row for row in text.splitlines() if row.startswith("| ") and "$" in row]
    assert len(rows) == len(cost.COMPONENTS) + 2 + 6  # components, IRaaS and Rekognition, the month's lines
    assert "- worker's CPU per image: 10 ms (bench/out/worker_cpu.json)" in text
    assert data["each_further_poll_usd"] == pytest.approx(
        cost.total(cost.per_million(replace(WORK, polls_per_image=2), PRICES, INSTANCE, sync=False))
        - cost.total(cost.per_million(WORK, PRICES, INSTANCE, sync=False)), abs=1e-4)
    json.dumps(data)  # cost.json


def service_json(out: Path) -> None:
    (out / "service.json").write_text(json.dumps({
        "warm": [{"cpu_s_per_image": {"web": 0.006, "workers": 0.012}},
                 {"cpu_s_per_image": {"web": 0.008, "workers": 0.014}}],
        "warm_median": {"p50_s": 1.2, "aws_calls_per_image": 4.9},
    }))


def test_the_worker_s_cpu_comes_from_worker_cpu_then_service_then_worker(tmp_path: Path) -> None:
    with pytest.raises(cost.MissingInput, match="worker_cpu"):
        cost.worker_inputs(tmp_path)
    (tmp_path / "worker.json").write_text(json.dumps({"worker_images_per_s": 50.0}))
    ms, calls, source = cost.worker_inputs(tmp_path)
    assert (ms, calls) == (40.0, None) and "upper bound" in source["from"]
    service_json(tmp_path)
    ms, _, source = cost.worker_inputs(tmp_path)
    assert ms == pytest.approx(13.0) and "service.json" in source["from"]
    (tmp_path / "worker_cpu.json").write_text(json.dumps({
        "worker_cpu_ms_per_image": 9.5,
        "worker_aws_calls": {"per_image": 2.5, "by_operation": {"s3.GetObject": 1.0, "s3.PutObject": 1.0}}}))
    ms, calls, source = cost.worker_inputs(tmp_path)
    assert (ms, calls) == (9.5, {"s3.GetObject": 1.0, "s3.PutObject": 1.0})
    assert source["from"].startswith("bench/out/worker_cpu.json")


def test_the_step_writes_cost_json_and_the_figures_or_says_which_step_to_run(tmp_path: Path, capsys) -> None:
    figures = tmp_path / "cost-figures.md"
    assert cost.main(["--out", str(tmp_path), "--figures", str(figures)]) == 2
    assert "run `python -m bench.run --only" in capsys.readouterr().err
    service_json(tmp_path)
    assert cost.main(["--out", str(tmp_path), "--figures", str(figures)]) == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "cost.json").read_text())
    assert data["inputs"]["sync_request_s"]["value"] == 1.2
    assert data["workload"]["web_memory_mb"] == 512 and data["workload"]["input_retention_days"] == 7
    assert figures.read_text() in printed
    assert data["instance"]["name"] in figures.read_text()


def test_cost_is_the_last_step_after_those_it_reads() -> None:
    steps = list(bench_run.STEPS)
    assert steps[-1] == "cost" and bench_run.STEPS["cost"] == ["bench.cost"]
    assert {"service", "worker_cpu"} <= set(steps[:-1])
