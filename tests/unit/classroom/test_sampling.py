"""Sampling a video: one frame per sample time, the right one, whichever way it is decoded.

The videos here show their own frame number (ten black or white blocks, one bit each), so a sample
says exactly which frame it is: every strategy must give the frame on screen at each sample time,
"all" and "seek" exactly, the skipping ones within one frame interval.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from iraas.classroom.frames import UnreadableVideo
from iraas.classroom.sampling import (
    STRATEGIES,
    Sample,
    check_duration,
    choose_strategy,
    probe,
    sample_frames,
    sample_times,
)

FPS = 10
BITS = 10  # frame numbers up to 1023
SIZE = (160, 96)
EXACT = ("all", "seek")

# x264 settings: keyframes every second on the grid; x264's defaults (one keyframe in a short video);
# keyframes every 1.3 s (off the grid); three non-reference B-frames in a row (no B-pyramid).
VARIANTS = {
    "keyframes-1s": {"g": "10", "keyint_min": "10", "x264-params": "scenecut=0:b-adapt=0"},
    "x264-default": {"x264-params": "b-adapt=0"},
    "keyframes-1.3s": {"g": "13", "keyint_min": "13", "x264-params": "scenecut=0:b-adapt=0"},
    "no-b-pyramid": {"g": "40", "x264-params": "b-adapt=0:b-pyramid=none"},
}


def counting_frame(n: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A frame whose blocks spell ``n`` in binary (5 across, 2 down; white is 1)."""
    width, height = size
    frame = np.full((height, width, 3), 40, np.uint8)
    bw, bh = width // 5, height // 2
    for bit in range(BITS):
        if n >> bit & 1:
            row, col = divmod(bit, 5)
            frame[row * bh:(row + 1) * bh, col * bw:(col + 1) * bw] = 230
    return frame


def frame_number(rgb: np.ndarray) -> int:
    height, width = rgb.shape[:2]
    bw, bh = width / 5, height / 2
    n = 0
    for bit in range(BITS):
        row, col = divmod(bit, 5)
        y, x = int((row + 0.5) * bh), int((col + 0.5) * bw)
        if rgb[y - 2:y + 3, x - 2:x + 3].mean() > 135:
            n |= 1 << bit
    return n


def make_counting_video(path: Path, frames: int, options: dict[str, str] | None = None, codec: str = "libx264",
                        size: tuple[int, int] = SIZE, fps: int = FPS, faststart: bool = False) -> Path:
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"} if faststart else None) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "veryfast", **(options or {})} if codec == "libx264" else (options or {})
        for n in range(frames):
            frame = av.VideoFrame.from_ndarray(counting_frame(n, size), format="rgb24")
            frame.pts = n
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sampling")
    made = {name: make_counting_video(folder / f"{name}.mp4", 125, options) for name, options in VARIANTS.items()}
    made["mpeg4"] = make_counting_video(folder / "mpeg4.mp4", 125, {"g": "12", "bf": "2", "b": "2M"}, codec="mpeg4")
    return made


def numbers(samples: list[Sample]) -> list[tuple[float, int]]:
    return [(s.t, frame_number(s.rgb)) for s in samples]


def test_the_counting_video_reads_back_every_frame_number(videos):
    with av.open(str(videos["x264-default"])) as container:
        assert [frame_number(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)] == list(range(125))


@pytest.mark.parametrize("variant", [*VARIANTS, "mpeg4"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_sample_shows_the_frame_on_screen_at_its_time(videos, variant, strategy):
    stats: dict = {}
    got = numbers(list(sample_frames(videos[variant], 1.0, strategy=strategy, stats=stats)))
    # 125 frames at 10 fps: 12.5 s, so the last sample is at 12 s (the video is not a multiple of every_s).
    assert [t for t, _ in got] == [float(k) for k in range(13)]
    for t, n in got:
        if stats["strategy"] in EXACT:
            assert n == round(t * FPS), (t, n)
        else:
            assert abs(n - t * FPS) <= 1, (t, n)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sample_times_between_frames_give_the_last_frame_at_or_before_them(videos, strategy):
    stats: dict = {}
    got = numbers(list(sample_frames(videos["keyframes-1.3s"], 0.75, strategy=strategy, stats=stats)))
    assert [t for t, _ in got] == [k * 0.75 for k in range(17)]  # 0 .. 12.0 < 12.5
    for t, n in got:
        on_screen = int(t * FPS + 1e-9)  # 0.75 s: frame 7 (0.7 s) is on screen until 0.8 s
        assert (n == on_screen) if stats["strategy"] in EXACT else abs(n - t * FPS) <= 1, (t, n)


@pytest.mark.parametrize("variant", ["keyframes-1s", "x264-default", "keyframes-1.3s"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_samples_of_segments_together_are_the_samples_of_the_whole(videos, variant, strategy):
    whole = numbers(list(sample_frames(videos[variant], 1.0, strategy=strategy)))
    parts = [numbers(list(sample_frames(videos[variant], 1.0, start, end, strategy=strategy)))
             for start, end in ((0, 4), (4, 7.5), (7.5, None))]
    assert [s for part in parts for s in part] == whole
    assert [t for t, _ in parts[1]] == [4.0, 5.0, 6.0, 7.0]


def test_a_segment_past_the_end_has_no_samples_and_end_s_is_exclusive(videos):
    assert list(sample_frames(videos["keyframes-1s"], 1.0, start_s=20.0)) == []
    assert [s.t for s in sample_frames(videos["keyframes-1s"], 1.0, 2.0, 5.0)] == [2.0, 3.0, 4.0]


def test_skipping_strategies_decode_fewer_frames_and_auto_takes_the_cheapest(videos):
    decoded = {}
    for strategy in ("all", "nonref", "keyframes", "auto"):
        stats: dict = {}
        list(sample_frames(videos["keyframes-1s"], 1.0, strategy=strategy, stats=stats))
        decoded[strategy] = stats["decoded"]
        if strategy == "auto":
            assert stats["strategy"] == "keyframes"
    assert decoded["all"] >= 120  # up to the last sample (12 s), not the frames after it
    assert decoded["nonref"] < 0.7 * decoded["all"]
    assert decoded["keyframes"] <= 14  # one keyframe a second, 12.5 s
    assert decoded["auto"] == decoded["keyframes"]
    stats = {}
    list(sample_frames(videos["x264-default"], 1.0, stats=stats))
    assert stats["strategy"] == "nonref"  # one keyframe in the whole video: nothing to seek to


def test_choose_strategy_follows_the_keyframes():
    times = [float(t) for t in range(60)]
    on_the_grid = [float(t) for t in range(61)]
    assert choose_strategy(times, on_the_grid, fps=30) == "keyframes"
    assert choose_strategy(times, [0.0, 8.3, 16.6, 25.0, 33.3, 41.6, 50.0, 58.3], fps=30) == "nonref"
    assert choose_strategy(times, [0.0], fps=30, b_frames=False) == "all"
    # A sample a minute in a video with a keyframe every 2 s: seek and decode a second's frames.
    assert choose_strategy([0.0, 60.0, 120.0], [2.0 * k for k in range(90)], fps=30) == "seek"
    assert choose_strategy(times, None, fps=30) == "nonref"


def test_max_side_scales_the_frames_down_keeping_the_aspect(tmp_path):
    video = make_counting_video(tmp_path / "wide.mp4", 4, size=(640, 360))
    small = next(sample_frames(video, 1.0, max_side=160))
    assert small.rgb.shape == (90, 160, 3) and small.rgb.dtype == np.uint8
    assert frame_number(small.rgb) == 0
    full = next(sample_frames(video, 1.0, max_side=1000))
    assert full.rgb.shape == (360, 640, 3)
    assert next(sample_frames(video, 1.0)).rgb.shape == (360, 640, 3)


def test_a_sample_every_frame_gives_every_frame(videos):
    got = numbers(list(sample_frames(videos["x264-default"], 1 / FPS, 2.0, 4.0, strategy="all")))
    assert [n for _, n in got] == list(range(20, 40))


def test_probe_describes_a_video(videos):
    info = probe(videos["keyframes-1s"], max_pixels=SIZE[0] * SIZE[1], max_duration_s=13)
    assert (info.width, info.height, info.fps, info.frames) == (160, 96, 10.0, 125)
    assert info.duration_s == pytest.approx(12.5)
    assert info.keyframe_interval_s == pytest.approx(1.0)
    assert probe(videos["keyframes-1.3s"], 10**6, 60).keyframe_interval_s == pytest.approx(1.3)
    assert probe(videos["x264-default"], 10**6, 60).keyframe_interval_s is None  # one keyframe


@pytest.mark.parametrize(("make", "reason"), [
    (lambda p: Image.new("RGB", (64, 48), (9, 99, 199)).save(p, format="JPEG"), "still image"),
    (lambda p: Image.new("L", (8000, 5000), 128).save(p, format="JPEG"), "still image"),
    (lambda p: Image.new("RGB", (64, 48)).save(p, format="PNG"), "still image"),
    (lambda p: p.write_text("name,major,year\nnot a video\n"), "cannot read it as a video"),
    (lambda p: p.write_bytes(b""), "cannot read it as a video"),
    (lambda p: make_counting_video(p, 1), "1 frame"),
])
def test_probe_refuses_what_is_not_a_video(tmp_path, make, reason):
    path = tmp_path / "lecture.avi"
    make(path)
    with pytest.raises(UnreadableVideo, match=reason):
        probe(path, max_pixels=50_000_000, max_duration_s=7200)


def test_probe_refuses_frames_over_max_pixels_and_a_duration_over_the_limit(videos):
    with pytest.raises(UnreadableVideo, match="160x96 exceed 15359 pixels"):
        probe(videos["keyframes-1s"], max_pixels=160 * 96 - 1, max_duration_s=7200)
    with pytest.raises(UnreadableVideo, match="over the limit of 12 s"):
        probe(videos["keyframes-1s"], max_pixels=10**6, max_duration_s=12)
    with pytest.raises(UnreadableVideo, match="No such file"):
        probe(Path("/nonexistent/lecture.mp4"), 10**6, 60)


def test_the_first_frames_probe_takes_any_length_and_skips_the_keyframes_and_the_duration_is_checked_after(videos):
    info = probe(videos["keyframes-1s"], max_pixels=10**6, keyframes=False)
    assert (info.frames, info.duration_s, info.keyframe_interval_s) == (125, 12.5, None)
    assert check_duration(info, 12.5) is info
    with pytest.raises(UnreadableVideo, match="it lasts 12.5 s, over the limit of 12 s"):
        check_duration(info, 12)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_cut_off_upload_gives_its_samples_up_to_the_cut_then_says_so(tmp_path, strategy):
    whole = make_counting_video(tmp_path / "whole.mp4", 300, VARIANTS["keyframes-1s"], faststart=True)  # index first
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    got = []
    with pytest.raises(UnreadableVideo, match="it is cut off"):
        for sample in sample_frames(cut, 1.0, strategy=strategy):
            got.append((sample.t, frame_number(sample.rgb)))
    assert 5 <= len(got) < 30
    assert all(abs(n - t * FPS) <= 1 for t, n in got)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_corrupt_packets_are_skipped_as_a_player_does(tmp_path, strategy):
    video = make_counting_video(tmp_path / "whole.mp4", 300, VARIANTS["keyframes-1s"], faststart=True)
    data = bytearray(video.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = np.random.default_rng(7).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    video.write_bytes(bytes(data))
    stats: dict = {}
    got = numbers(list(sample_frames(video, 1.0, strategy=strategy, stats=stats)))
    assert [t for t, _ in got] == [float(k) for k in range(30)] and stats["corrupt_packets"] > 0
    assert sum(abs(n - t * FPS) <= 1 for t, n in got) >= 20  # FFmpeg conceals the damaged stretch


def test_a_file_object_is_read_as_a_path_is(videos):
    path = videos["keyframes-1.3s"]
    data = io.BytesIO(path.read_bytes())  # as an object in S3 read by range
    assert probe(data, 10**6, 60) == probe(path, 10**6, 60)
    assert numbers(list(sample_frames(data, 1.0, 3.0, 6.0))) == numbers(list(sample_frames(path, 1.0, 3.0, 6.0)))


def test_sample_times_are_the_global_grid():
    assert list(sample_times(1.0, 0, 3)) == [0.0, 1.0, 2.0]
    assert list(sample_times(1.0, 0.5, 3.5)) == [1.0, 2.0, 3.0]
    assert list(sample_times(0.1, 0.3, 0.6)) == [0.3, 0.4, 0.5]
    assert list(sample_times(2.5, 0, 12.5)) == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert list(sample_times(1.0, 0, 60)) + list(sample_times(1.0, 60, 120)) == list(sample_times(1.0, 0, 120))
    with pytest.raises(ValueError):
        list(sample_times(0, 0, 1))


def test_an_unknown_strategy_is_refused(videos):
    with pytest.raises(ValueError, match="strategy"):
        list(sample_frames(videos["keyframes-1s"], 1.0, strategy="fastest"))
