"""Soak: a bounded stream of mixed requests through ``iraas up`` with a scaled fleet.

Phases of a fixed mix (``stream.PHASE_MIX``: good images through each route, bad images, bad and
good student imports, a video), each sent at a bounded concurrency and then left to drain; after
the warm-up and after every ``GROUP`` phases an idle gap lets the fleet scale in to zero, and in
between the workers live on from burst to burst. One worker is SIGKILLed in the middle of a batch
at a random moment. At the end: every request was answered, none twice (no id with two
answers, no request announced twice), the queues are empty, every video has its CSV, every
import is listed, and no process of the stack grew past a bound.

``IRAAS_SOAK_S`` sets how long new phases keep starting (default 60: ``make test``; ``make soak``
runs 300), from ``MIN_PHASES`` to ``MAX_PHASES``. ``IRAAS_SOAK_SEED`` replays a run: the seed
draws every photo, video and order (the same phases in the same order), and the moment of the kill
and its victim; it is printed first. The test asserts counts and bounds only; its timings go to the
printed summary.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from random import Random

import psutil
import pytest
import requests

from harness.embedded import running_stack
from harness.videos import make_classroom_video
from iraas.config import REPO_ROOT
from tests.soak import stream
from tests.soak.processes import MIB, MemoryLog, Track, busy_workers, pids_of
from tests.soak.stream import Outcome, Video

pytestmark = pytest.mark.slow

SOAK_S = float(os.environ.get("IRAAS_SOAK_S", "60"))  # how long phases keep starting
MIN_PHASES = 4  # the first is the warm-up, before memory is first sampled
MAX_PHASES = MIN_PHASES + int(SOAK_S // 2)  # the stream's bound, whatever the machine's speed
GROUP = 3  # phases back to back (workers live through them) before an idle gap that scales in to zero
CONCURRENCY = 6  # requests in flight at once
MAX_WORKERS = 3  # above the 2 cores of a small CI machine: the scaler has room to scale
DRAIN_S = 180  # the bound on a phase's drain: an answer later than this is a lost request
SCALE_IN_S = 30  # how long a gap waits for the fleet to reach zero workers
STACK_ENV = {
    "IRAAS_MAX_WORKERS": str(MAX_WORKERS),
    # Scale-in after 3 s of a lower target and 2 s idle (defaults 10 and 5), so that each gap sees it.
    "IRAAS_SCALE_IN_AFTER_S": "3",
    "IRAAS_WORKER_IDLE_S": "2",
    # The killed worker's batch comes back after 5 s instead of 60.
    "IRAAS_WORKER_VISIBILITY_S": "5",
    "IRAAS_LOCAL_FUNCTION_CONCURRENCY": "1",
}
# Memory: a process may grow by a quarter of its size after warm-up plus 30 MiB (allocator
# fragmentation, a larger batch's buffers, connection pools: measured, the long-lived ones grow by
# 1-11 MiB in `make soak`) and no more: a leak of a photo's bytes per request (~100 KiB) passes it
# within a few hundred requests, one of ~40 KiB within the ~1500 of `make soak` (the summary's
# "2nd half" column shows slower ones: growth that does not level off). moto keeps every object
# stored in it in memory, so it may grow also by what the stream stored after its first sample
# (photos, videos, results), twice over (measured: about 1.2 times).
GROWTH_FRACTION = 0.25
GROWTH_BYTES = 30 * MIB
STORED_PER_REQUEST = 4096  # beside the upload: its result object, metadata
WORKER_MIN_LIFE_S = 5.0  # a worker is compared when it lived this long between samples
ENROLLED = {"id": "1001", "name": "Barack Obama", "major": "Law", "year": "senior"}
OBAMA_CSV = "name,major,year\nBarack Obama,Law,senior\n"
NOBODY_CSV = "name,major,year\n"


def say(line: str) -> None:
    """Progress while it runs (shown with -s; in the test's captured output otherwise)."""
    print(line, flush=True)


@pytest.fixture(scope="module")
def videos(faces_dir: Path, tmp_path_factory) -> dict[str, Video]:
    folder = tmp_path_factory.mktemp("soak-videos")
    people = faces_dir / "people"
    size = (854, 480)
    return {
        "obama": Video(make_classroom_video(folder / "obama.mp4", [people / "obama/face_recognition-obama.jpg"],
                                            size, frames=4), OBAMA_CSV),
        "stranger": Video(make_classroom_video(folder / "stranger.mp4", [people / "paul_rudd/facenet-pytorch-1.jpg"],
                                               size, frames=4), NOBODY_CSV),
        "nobody": Video(make_classroom_video(folder / "nobody.mp4", [], size, frames=4), NOBODY_CSV),
    }


class Output:
    """What `iraas up` prints, read line by line (nobody else reads its pipe once it is ready)."""

    def __init__(self, process) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process) -> None:
        for line in process.stdout:
            self.lines.append(line)

    def announced(self) -> Counter:
        """Request name -> how often `iraas up` printed its answer (one line per response-queue
        message: ``  4f3c1a2b cat.jpg: tabby (0.24)``)."""
        names: Counter = Counter()
        for line in list(self.lines):
            if line.startswith("  ") and ": " in line:
                head = line[2:].split(": ", 1)[0]
                if " " in head:
                    names[head.split(" ", 1)[1]] += 1
        return names


class Fleet:
    """Counts the local workers (processes below the workers' zygote) every quarter second: how
    often the fleet grew from zero and shrank back to it, and every worker pid seen."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.seen: set[int] = set()
        self.scale_outs = 0
        self.scale_ins_to_zero = 0
        self.most = 0
        self.running = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            with contextlib.suppress(psutil.Error):
                pids = pids_of(self.root_pid, "worker")
                now = len(pids)
                if now and not self.running:
                    self.scale_outs += 1
                if self.running and not now:
                    self.scale_ins_to_zero += 1
                self.running, self.most = now, max(self.most, now)
                self.seen.update(pids)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def wait_until(condition, timeout_s: float, poll_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


def queue_urls(resources: dict[str, str]) -> dict[str, str]:
    """The stack's queues (requests, dead letters, responses, the face function's events and failures)."""
    return {label: url for label, url in resources.items() if url.startswith("http")}


def queue_depths(sqs, urls: dict[str, str]) -> dict[str, int]:
    """Messages in each queue: visible + in flight + delayed."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    depths = {}
    for label, url in urls.items():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        depths[label] = sum(int(attributes.get(n, 0)) for n in names)
    return depths


def kill_a_busy_worker(home: Path, root_pid: int, rng: Random, timeout_s: float = 3) -> int | None:
    """SIGKILL a worker in the middle of a batch (drawn by ``rng`` among the busy ones); its pid,
    or None if none was at work within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = busy_workers(home, root_pid)
        if busy:
            pid = rng.choice(busy)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.02)
    return None


def dead_letters(sqs, url: str) -> list[str]:
    """The request ids in the dead-letter queue (read, and left there)."""
    ids: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not messages:
            return ids
        for message in messages:
            try:
                ids.append(str(json.loads(message["Body"]).get("id")))
            except (ValueError, AttributeError):
                ids.append(f"(not a request: {message['Body'][:40]!r})")


def enrol(url: str, faces_dir: Path) -> None:
    """Barack Obama's record and face, so that the obama video's CSV names him."""
    response = requests.post(f"{url}/v1/students", json=[ENROLLED], timeout=30)
    assert response.status_code == 200, response.text
    photo = (faces_dir / "people" / "obama" / "face_recognition-obama2.jpg").read_bytes()
    response = requests.post(f"{url}/v1/students/Barack%20Obama/photos", data=photo,
                             headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert response.status_code == 202, response.text
    enrolment = response.json()["enrolment"]
    outcome: dict = {}

    def enrolled() -> bool:
        answer = requests.get(f"{url}/v1/enrolments/{enrolment}", timeout=30)
        outcome.update(answer.json())
        return answer.status_code != 202

    assert wait_until(enrolled, 180, 0.5), "no enrolment outcome within 180 s"
    assert outcome.get("status") == "enrolled", outcome


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def allowed_growth(track: Track) -> int:
    bound = int(GROWTH_FRACTION * track.start) + GROWTH_BYTES
    if track.part == "moto":
        bound += 2 * track.stored_since
    return bound


def summary(items: list[Outcome], memory: MemoryLog, fleet: Fleet,
            killed: int | None, seed: int, started: float) -> str:
    phases = len({i.phase for i in items})
    lines = [f"soak summary (seed {seed}, {phases} phases, {len(items)} requests, {time.monotonic() - started:.0f} s):",
             f"  {'kind':<18}{'sent':>6}{'answered':>10}{'4xx':>6}{'p50 s':>8}{'p90 s':>8}"]
    for kind in stream.PHASE_MIX:
        of_kind = [i for i in items if i.kind == kind]
        answered = [i for i in of_kind if i.final_status is not None]
        refused = sum(1 for i in answered if 400 <= (i.final_status or 0) < 500 and i.final_status != 422)
        latencies = [i.latency_s for i in answered if i.latency_s is not None]
        p50 = f"{percentile(latencies, 0.5):.2f}" if latencies else "-"
        p90 = f"{percentile(latencies, 0.9):.2f}" if latencies else "-"
        lines.append(f"  {kind:<18}{len(of_kind):>6}{len(answered):>10}{refused:>6}{p50:>8}{p90:>8}")
    lines.append(f"  fleet: up to {fleet.most} workers, {fleet.scale_outs} scale-outs from zero, "
                 f"{fleet.scale_ins_to_zero} scale-ins to zero, {len(fleet.seen)} worker processes; "
                 f"SIGKILLed worker {killed}")
    lines.append(f"  {'process':<22}{'samples':>8}{'lived s':>9}{'RSS start MiB':>15}{'end MiB':>9}"
                 f"{'growth MiB':>12}{'bound MiB':>11}{'2nd half MiB':>14}   (moto's bound counts what was stored in it)")
    tracks = memory.compared(1)
    workers = [t for t in tracks if t.part == "worker"]
    compared = [t for t in workers if t.lived_s >= WORKER_MIN_LIFE_S]
    # The workers that lived long enough to be compared, the one that grew most first; the others counted.
    compared.sort(key=lambda t: t.growth - allowed_growth(t), reverse=True)
    for track in [t for t in tracks if t.part != "worker"] + compared[:3]:
        lines.append(f"  {track.part + ' ' + str(track.pid):<22}{len(track.samples):>8}{track.lived_s:>9.0f}"
                     f"{track.start / MIB:>15.1f}{track.end / MIB:>9.1f}{track.growth / MIB:>12.1f}"
                     f"{allowed_growth(track) / MIB:>11.1f}{track.late_growth / MIB:>14.1f}"
                     + (f"   stored {track.stored_since / MIB:.1f} MiB" if track.part == "moto" else ""))
    lines.append(f"  workers: {len(workers)} sampled, {len(compared)} lived {WORKER_MIN_LIFE_S:.0f} s or more and were "
                 f"compared (above: the {min(3, len(compared))} nearest their bound)")
    return "\n".join(lines)


@pytest.mark.timeout(int(600 + 4 * SOAK_S))
def test_a_mixed_stream_with_scaling_and_a_killed_worker_is_answered_exactly_once(
    model_path, imagenet_sample, faces_dir, videos
):
    seed = int(os.environ.get("IRAAS_SOAK_SEED") or Random().randrange(1_000_000))
    rng = Random(seed)
    # Not under pytest's tmp_path, which a later pytest run prunes: a failed run's logs stay here.
    home = REPO_ROOT / "build" / "soak" / f"seed-{seed}"
    shutil.rmtree(home, ignore_errors=True)
    say(f"\nsoak: seed {seed} (replay with IRAAS_SOAK_SEED={seed}), phases of {sum(stream.PHASE_MIX.values())} "
        f"requests for {SOAK_S:.0f} s, stack home {home}")
    photos = [p.path for p in imagenet_sample]
    killer = Random(seed + 1)  # its own draws, so that the phases are the same however the kill went
    kill_at_s = killer.uniform(0.15, 0.6) * SOAK_S  # after warm-up, and well before the end
    started = time.monotonic()
    with running_stack(home, STACK_ENV, workers=None) as stack:
        output = Output(stack.process)
        root = stack.process.pid
        url = stack.url
        fleet = Fleet(root)
        memory = MemoryLog(root)
        sqs = stack.client("sqs")
        request_queue, dlq = stack.resources["RequestQueue"], stack.resources["RequestDeadLetterQueue"]
        enrol(url, faces_dir)
        say(f"soak: stack ready, Barack Obama enrolled ({time.monotonic() - started:.0f} s)")

        items: list[Outcome] = []
        stored = 0  # bytes the stream has stored in moto: accepted uploads and their results
        killed: int | None = None
        stream_started = time.monotonic()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            for phase in range(MAX_PHASES):
                if phase >= MIN_PHASES and time.monotonic() - stream_started >= SOAK_S:
                    break
                batch = stream.build_phase(phase, rng, photos, videos)
                keys = [f"soak-{seed}-{phase}-{n}" for n in range(len(batch))]
                phase_started = time.monotonic()
                dlq_before = queue_depths(sqs, {"dlq": dlq})["dlq"]
                futures = [pool.submit(stream.send, url, item, key) for item, key in zip(batch, keys, strict=True)]
                mid_phase = None
                if phase:  # not during warm-up: the workers of this burst, at work, a second into it
                    mid_phase = threading.Timer(1.0, memory.sample, args=(stored,))
                    mid_phase.start()
                if phase and killed is None and time.monotonic() - stream_started >= kill_at_s:
                    time.sleep(killer.uniform(0, 0.5))
                    killed = kill_a_busy_worker(home, root, killer)
                    say(f"soak: phase {phase + 1}: SIGKILLed worker {killed}" if killed else
                        f"soak: phase {phase + 1}: no worker at work to kill; trying in the next phase")

                def settled(b: list[Outcome] = batch, before: int = dlq_before) -> bool:
                    """All answered, or what is left is in the dead-letter queue (it never comes back)."""
                    if stream.poll(url, b) == 0:
                        return True
                    waiting = [i for i in b if i.final_status is None]
                    depth = queue_depths(sqs, {"q": request_queue, "dlq": dlq})
                    return (all(i.kind in stream.IMAGE_KINDS for i in waiting) and depth["q"] == 0
                            and depth["dlq"] - before >= len(waiting))

                def drained_now(fs: list = futures) -> bool:
                    """Every send returned, and then every request settled. The sends are looked at
                    first: a send still under way (a retry between its two POSTs) has no id yet, and
                    a look at the requests made before it returned would pass it over."""
                    sent = all(f.done() for f in fs)
                    return settled() and sent

                # Requests queued (202) are looked for while the others still wait for their replies.
                drained = wait_until(drained_now, DRAIN_S, 0.25)
                for future in futures:
                    future.result()  # send() records its exceptions; anything else is the test's own bug
                drained = drained and all(i.final_status is not None for i in batch)
                burst_s = time.monotonic() - phase_started
                if not drained:
                    stuck = [(i.name, i.id) for i in batch if i.final_status is None]
                    say(f"soak: phase {phase + 1}: not answered: {stuck}; queues "
                        f"{queue_depths(sqs, queue_urls(stack.resources))}")
                if mid_phase is not None:
                    mid_phase.join()
                items += batch
                stored += sum(len(i.body) + STORED_PER_REQUEST for i in batch if i.status in (200, 202))
                memory.sample(stored)
                answered = sum(1 for i in batch if i.final_status is not None)
                # An idle gap, long enough for scale-in to zero, after the warm-up and after every
                # GROUP phases; otherwise the next burst comes at once, and the workers live on.
                gap = phase == 0 or phase % GROUP == GROUP - 1
                scaled_in = gap and wait_until(lambda: not pids_of(root, "worker"), SCALE_IN_S, 0.25)
                time.sleep(rng.uniform(0, 1.5) if gap else rng.uniform(0.1, 0.5))
                moto = [t.end for t in memory.tracks.values() if t.part == "moto"]
                fleet_now = "scaled in to 0" if scaled_in else "no gap" if not gap else "NOT SCALED IN"
                elapsed = time.monotonic() - stream_started
                say(f"soak: phase {phase + 1} ({elapsed:.0f}/{SOAK_S:.0f} s): {answered}/{len(batch)} answered in {burst_s:.1f} s"
                    f"{'' if drained else ' (NOT ALL ANSWERED)'}; {len(fleet.seen)} workers so far, "
                    f"{fleet_now}; moto RSS {moto[-1] / MIB:.0f} MiB")

        # The end: every queue drained (the response queue by iraas up's printer).
        urls = queue_urls(stack.resources)
        live = {label: u for label, u in urls.items() if u != dlq}  # dead letters do not drain
        wait_until(lambda: not any(queue_depths(sqs, live).values()), 30, 0.5)
        depths = queue_depths(sqs, urls)
        time.sleep(1.5)  # the last announcements reach the output
        memory.sample(stored)
        fleet.stop()
        finals = {i.id: stream.get_result(url, i.id) for i in items if i.kind in stream.IMAGE_KINDS and i.id}
        listed = {s["name"] for s in requests.get(f"{url}/v1/students", timeout=30).json()["students"]}
        announced = output.announced()
        dead = dead_letters(sqs, dlq)
        (home / "logs" / "iraas-up.out").write_text("".join(output.lines))
        say(summary(items, memory, fleet, killed, seed, started))

    # Every request got an answer: none hung, none was lost.
    unanswered = [(i.kind, i.name, i.status, i.error) for i in items if i.final_status is None or i.error]
    assert not unanswered, f"{len(unanswered)} requests not answered (seed {seed}, logs in {home / 'logs'}): {unanswered[:10]}"
    # Good images: answered with a label, through every route.
    for item in items:
        if item.kind == "course":
            assert item.final_status == 200, (item.name, item.final_status, item.final)
            if isinstance(item.final, str):
                stem, label = item.final.split(":", 1)
                assert stem == item.name.rsplit(".", 1)[0] and label, item.final
            else:  # answered later by id, as a result
                assert item.final.get("status") == "done", item.final
        elif item.kind in stream.IMAGE_KINDS:
            assert item.final_status == 200 and item.final.get("status") == "done", (item.name, item.final)
    # No duplicates: ids are one per request, and each has one answer, the same wherever it is read.
    ids = [i.id for i in items if i.kind in stream.IMAGE_KINDS + ("video",) and i.id]
    assert len(ids) == len(set(ids)), f"two requests got the same id (seed {seed})"
    for item in items:
        if item.id in finals:
            status, final = finals[item.id]
            assert (status, final) == (item.final_status, item.final), f"{item.id} answered twice differently"
    accepted_names = [i.name for i in items if i.kind in stream.IMAGE_KINDS + stream.BAD_IMAGE_KINDS
                      and i.final_status in (200, 422)]
    twice = {name: n for name, n in announced.items() if n > 1}
    assert not twice, f"announced more than once (seed {seed}): {twice}"
    assert set(announced) <= set(accepted_names), set(announced) - set(accepted_names)
    # A worker that dies between storing an answer and announcing it loses the announcement (never
    # the answer); only the killed worker's one batch can.
    unannounced = set(accepted_names) - set(announced)
    assert len(unannounced) <= 8, sorted(unannounced)
    # Bad inputs: a clear refusal, or a recorded failed result; never a label.
    for item in items:
        if item.kind in stream.REFUSALS:
            status, code = stream.REFUSALS[item.kind]
            if item.final_status == 422:
                assert item.accepted and item.final.get("status") == "failed", (item.name, item.final)
            else:
                assert (item.final_status, item.final["error"]["code"]) == (status, code), (item.name, item.final)
    # Videos: each its CSV; imports: each listed.
    for item in items:
        if item.kind == "video":
            assert (item.final_status, item.final) == (200, item.expect), (item.name, item.final)
        if item.kind == "students":
            assert item.final["imported"] == len(item.expect) and set(item.expect) <= listed, item.name
    # Queues empty: requests, dead letters, responses, the face function's events and its failures.
    assert not any(depths.values()), f"messages left in queues: {depths}; dead letters {dead}"
    # The fleet scaled out and in, and the kill happened while a worker worked.
    assert killed is not None, "no worker was at work to kill in any phase"
    assert fleet.scale_outs >= 2 and fleet.scale_ins_to_zero >= 1, vars(fleet)
    # Memory: each process that lived long enough stayed within its bound.
    grown = []
    for track in memory.compared(2):
        if track.part == "worker" and track.lived_s < WORKER_MIN_LIFE_S:
            continue
        if track.growth > allowed_growth(track):
            grown.append(f"{track.part} {track.pid}: {track.growth / MIB:.1f} MiB > {allowed_growth(track) / MIB:.1f} MiB")
    assert not grown, f"memory grew past its bound (seed {seed}): {grown}"
    if not os.environ.get("IRAAS_SOAK_KEEP"):
        shutil.rmtree(home, ignore_errors=True)  # passed: nothing to look at
