"""One frame per sample time, decoding only what the samples need (PyAV: FFmpeg's decoders).

A lecture is long and a sample is rare: at one sample a second, a 30 fps video decodes 30 frames
for each one it uses. How the frames at the sample times are reached is a *strategy*:

- ``all``: decode every frame, in order;
- ``nonref``: the codec skips frames nothing references (``skip_frame = NONREF``: B-frames that are
  not kept as references), so about half of an x264 stream's frames are never reconstructed;
- ``keyframes``: the codec decodes keyframes only (``skip_frame = NONKEY``); right when there is a
  keyframe within a frame of each sample time (a camera's fixed spacing of one keyframe per
  ``every_s`` or less, on the grid);
- ``seek``: for each sample time, seek to the keyframe at or before it and decode forward to it
  (forward without seeking when no keyframe lies between where the decoder is and the sample).

Every strategy gives the same answer: the frame on screen at ``t`` (the last frame whose timestamp
is <= t), or, where a skipping strategy did not decode that one, the nearest decoded frame within one
frame interval. Where a skipping strategy has no decoded frame that close (keyframes off the grid,
several B-frames in a row), that sample is fetched by seeking to the keyframe before it and decoding
every frame up to it, and the skipping goes on from there: slower, never wrong. A packet the decoder
refuses is skipped as a player does (FFmpeg conceals the damage; ``stats`` counts them); a file whose
frames stop before its stated end (a cut-off upload) gives its samples up to the cut, then raises
UnreadableVideo.

``auto`` estimates, from the container's index of keyframes (read without decoding: MP4, MOV, AVI
and Matroska keep one), how many frames each strategy decodes for the requested span (a seek counted
as ``COST_SEEK`` frames, a NONREF run as ``NONREF_SHARE`` of all), and takes ``keyframes`` or
``seek`` only where that is a quarter cheaper than reading the stream through, else ``nonref`` (or
``all`` for a stream without B-frames) (:func:`choose_strategy`). In practice: ``keyframes`` when
there is a keyframe at every sample time (a fixed spacing of ``every_s`` or a divisor of it),
``seek`` when samples are sparse against the keyframe spacing (a sample a minute, keyframes every
2 s), ``nonref`` otherwise (x264's default spacing of up to 250 frames, every 8.3 s at 30 fps).

Measured (``python -m bench.attendance --decode-only``, ``bench/out/attendance.json``) on an
"Intel(R) Xeon(R) Processor" (2 cores, shared: figures vary by some 20% run to run), 2-minute
lectures from ``harness.lectures`` (30 fps, 8 people arriving, x264 with B-frames), ``every_s = 1``,
full-size RGB samples; seconds of video sampled per second of wall clock (median of 3):

| keyframes                     | size  |  all | nonref | keyframes | seek | auto (picks)      |
|-------------------------------|-------|------|--------|-----------|------|-------------------|
| every 1 s                     | 480p  |   83 |    112 |       206 |  201 | 199 (keyframes)   |
| every 1 s                     | 720p  |   45 |     65 |       122 |  112 | 123 (keyframes)   |
| every 1 s                     | 1080p |   22 |     34 |        72 |   58 |  72 (keyframes)   |
| x264 default (mean 7.7 s)     | 480p  |  111 |    158 |        57 |  116 | 155 (nonref)      |
| x264 default (mean 7.7 s)     | 720p  |   62 |     98 |        39 |   67 |  99 (nonref)      |
| x264 default (mean 7.7 s)     | 1080p |   31 |     52 |        23 |   34 |  50 (nonref)      |
| real clip, 360p, no B-frames  | 360p  |   99 |    108 |        82 |  100 | 105 (all)         |

So: with a keyframe a second, ``keyframes`` decodes 120 frames where ``all`` decodes 3,571 and is
2.5-3.3x faster (the rest is demuxing and the RGB conversion); with x264's default spacing
``nonref`` decodes half the frames and is 1.4-1.7x faster than ``all``, while ``keyframes`` and
``seek`` fall back to decoding nearly everything, with seeks on top. The lectures are a still
wall (cheap P- and B-frames), so a camera's footage decodes slower per frame than these.
"""

from __future__ import annotations

import io
import math
import os
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from iraas.classroom.frames import UnreadableVideo

if TYPE_CHECKING:
    import av.container
    from av.video.stream import VideoStream

# A video: a file's path, or a seekable binary file object (an object in S3 read by byte range).
Source = str | os.PathLike[str] | io.IOBase
STRATEGIES = ("auto", "all", "nonref", "keyframes", "seek")
SKIP = {"all": "DEFAULT", "nonref": "NONREF", "keyframes": "NONKEY", "seek": "DEFAULT"}
EPS = 1e-6  # seconds: timestamps are exact fractions, sample times floats

# The measured cost of each way of reaching a frame, relative to decoding one frame in order (see the
# table above and bench/attendance.py). A frame decoded after a seek costs more than one decoded in a
# run (the seek, the flushed decoder, the frames its threads had in flight); a skipped frame is only
# demuxed and parsed; under NONREF a B-frame skipped is one not decoded, so a frame costs about its
# share of a run's reference frames.
COST_FRAME = 1.0      # one frame decoded in order
COST_SKIPPED = 0.05   # one frame demuxed and skipped (NONKEY)
COST_SEEK = 6.0       # one seek: the flush, and the decoder threads' pipeline filling again
SEEKING_MARGIN = 0.75  # a strategy that jumps must be estimated a quarter cheaper than one that does not
NONREF_SHARE = 0.7    # a NONREF run against decoding all: x264's B-pyramid leaves half the frames, ~0.7 of the time
# Image demuxers (with every "*_pipe" one: jpeg_pipe, png_pipe, ...): a still is refused by name.
STILL_FORMATS = ("image2", "gif", "apng")


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    width: int
    height: int
    fps: float
    frames: int                         # from the container (stream.frames), else estimated
    keyframe_interval_s: float | None   # mean spacing of keyframes, read from the packets without decoding


@dataclass(frozen=True)
class Sample:
    t: float            # the sample time, seconds from the start of the video: a multiple of every_s
    rgb: np.ndarray     # (H, W, 3) uint8, the frame shown at t


def _open(path: Source, max_pixels: int | None = None) -> av.container.InputContainer:
    import av

    # FFmpeg's probing may decode a frame to learn the stream's format: with max_pixels the decoder
    # refuses a larger one instead of allocating it (the header's size is then checked by probe).
    options = {"max_pixels": str(max_pixels)} if max_pixels else None
    if isinstance(path, io.IOBase):
        path.seek(0)  # a file object read before (by probe) is read again from its start
    try:
        # A path, or a seekable file object (a segment reads its video from S3 by byte range).
        return av.open(path if isinstance(path, io.IOBase) else os.fspath(path), "r", options=options)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise UnreadableVideo(f"FFmpeg cannot read it as a video: {exc}") from None
    except OSError as exc:
        raise UnreadableVideo(f"cannot open it: {exc}") from None


@contextmanager
def _video(path: Source, max_pixels: int | None = None) -> Iterator[tuple[av.container.InputContainer, VideoStream]]:
    container = _open(path, max_pixels)
    with container:
        if not container.streams.video:
            raise UnreadableVideo("it has no video stream")
        yield container, container.streams.video[0]


def _duration_s(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _fps(stream: Any) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None


def _keyframe_times(stream: Any, start: int) -> list[float] | None:
    """Keyframe times (seconds from the first frame) from the container's index, without reading a
    packet; None when the container keeps no index (MPEG-TS, a streamed file)."""
    index = stream.index_entries
    if index is None or len(index) == 0:
        return None
    stamps = [entry.timestamp for entry in index if entry.is_keyframe]
    if not stamps:
        return None
    # The index holds decoding timestamps; the first keyframe is the first frame shown.
    base, tb = stamps[0], stream.time_base
    return [float((s - base) * tb) for s in stamps]


def _keyframes_by_demuxing(container: Any, stream: Any, start: int, limit_s: float = 600.0) -> list[float]:
    """Keyframe times read from the packets (no decoding), for a container without an index; at most
    the first ``limit_s`` seconds are read."""
    times: list[float] = []
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        t = float((packet.pts - start) * stream.time_base)
        if packet.is_keyframe:
            times.append(t)
        if t > limit_s:
            break
    return times


def _mean_spacing(times: list[float] | None) -> float | None:
    if not times or len(times) < 2:
        return None
    return (times[-1] - times[0]) / (len(times) - 1)


def probe(path: Source, max_pixels: int, max_duration_s: float = math.inf, *, keyframes: bool = True) -> VideoInfo:
    """Recognise a video by its container: a video stream, at least two frames and a duration. Refuse
    (UnreadableVideo, one clear reason) what is not one (a JPEG or a 40-megapixel still named .avi, a
    text file, a single frame), frames over max_pixels (checked from the stream's header, before
    anything is decoded), and a duration over max_duration_s (:func:`check_duration`; the face
    function's first frame takes a video of any length and checks it before the lecture's
    attendance). keyframes: read the keyframes' mean spacing (from the container's index, or by
    demuxing up to ten minutes of packets where it keeps none); False leaves it None."""
    with _video(path, max_pixels) as (container, stream):
        name = container.format.name
        if name in STILL_FORMATS or name.endswith("_pipe"):
            raise UnreadableVideo(f"it is a still image ({name}), not a video")
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise UnreadableVideo("its video stream has no frame size")
        if width * height > max_pixels:
            raise UnreadableVideo(f"frames of {width}x{height} exceed {max_pixels} pixels")
        duration = _duration_s(container, stream)
        if duration is None or duration <= 0:
            raise UnreadableVideo("it has no duration")
        fps = _fps(stream)
        frames = stream.frames or (round(duration * fps) if fps else 0)
        if frames < 2:
            raise UnreadableVideo(f"it has {frames} frame{'s' if frames != 1 else ''}: a video has at least two")
        spacing = None
        if keyframes:
            start = stream.start_time or 0
            times = _keyframe_times(stream, start)
            if times is None:
                times = _keyframes_by_demuxing(container, stream, start)
            spacing = _mean_spacing(times)
        info = VideoInfo(duration_s=duration, width=width, height=height, fps=fps or frames / duration, frames=frames,
                         keyframe_interval_s=spacing)
    return check_duration(info, max_duration_s)


def check_duration(info: VideoInfo, max_duration_s: float) -> VideoInfo:
    """The video, if it lasts at most ``max_duration_s``; else UnreadableVideo saying how long it is."""
    if info.duration_s > max_duration_s:
        raise UnreadableVideo(f"it lasts {info.duration_s:.1f} s, over the limit of {max_duration_s:g} s")
    return info


def sample_times(every_s: float, start_s: float = 0.0, end_s: float = math.inf) -> Iterator[float]:
    """The multiples of ``every_s`` in ``[start_s, end_s)``: the video's global grid, so that the
    times of adjacent spans concatenate to the times of their union."""
    if every_s <= 0:
        raise ValueError("every_s must be positive")
    k = max(0, math.ceil(start_s / every_s - 1e-9))
    while (t := round(k * every_s, 9)) < end_s - 1e-9:
        yield t
        k += 1


# -- choosing a strategy ------------------------------------------------------------------------------

def _estimate(strategy: str, times: list[float], keyframes: list[float] | None, fps: float, b_frames: bool) -> float:
    """The cost of sampling ``times`` by ``strategy``, in frames decoded in order (see COST_*)."""
    if not times:
        return 0.0
    span_frames = (times[-1] - times[0] + 1 / fps) * fps
    if keyframes is None:  # no index: only what the spacing says
        return {"all": span_frames, "nonref": span_frames * (NONREF_SHARE if b_frames else 1.0)}.get(strategy, math.inf)
    if strategy == "all":
        return span_frames
    if strategy == "nonref":
        return span_frames * (NONREF_SHARE if b_frames else 1.0)
    tolerance = 1 / fps + EPS
    cost, position = 0.0, -math.inf  # position: where a forward decode stands (seconds)
    for t in times:
        after = bisect_right(keyframes, t + EPS)
        k = keyframes[max(0, after - 1)]
        if strategy == "keyframes" and (t - k <= tolerance or (after < len(keyframes) and keyframes[after] - t <= tolerance)):
            continue  # a keyframe shows it
        if k > position:  # seek to the keyframe, decode up to t
            cost += COST_SEEK + (t - k) * fps + COST_FRAME
        else:  # decode forward from where the decoder stands
            cost += (t - position) * fps
        position = t
    if strategy == "keyframes":  # and the run over the keyframes themselves
        lo, hi = bisect_right(keyframes, times[0]), bisect_right(keyframes, times[-1])
        cost += (hi - lo + 1) * COST_FRAME + span_frames * COST_SKIPPED
    return cost


def choose_strategy(times: list[float], keyframes: list[float] | None, fps: float, b_frames: bool = True) -> str:
    """The cheapest strategy for these sample times (``keyframes``: the keyframes' times in seconds,
    None where the container has no index), by :func:`_estimate`. A strategy that seeks is taken only
    where it is clearly cheaper (``SEEKING_MARGIN``) than reading the stream through: the estimate
    misses what frame threads decode past a seek and throw away."""
    run = "nonref" if b_frames else "all"
    through = _estimate(run, times, keyframes, fps, b_frames)
    jumping = {s: _estimate(s, times, keyframes, fps, b_frames) for s in ("keyframes", "seek")}
    best = min(jumping, key=lambda s: jumping[s])  # keyframes on a tie: no seek at all
    return best if jumping[best] < SEEKING_MARGIN * through else run


# -- sampling -----------------------------------------------------------------------------------------

def _rgb(frame: Any, max_side: int | None) -> np.ndarray:
    width, height = frame.width, frame.height
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        frame = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    else:
        frame = frame.reformat(format="rgb24")
    return frame.to_ndarray()


class _Sampler:
    """The decoding loop shared by the strategies."""

    def __init__(self, container: Any, stream: Any, fps: float, keyframes: list[float] | None, max_side: int | None):
        self.container, self.stream = container, stream
        self.start = stream.start_time or 0
        self.time_base = Fraction(stream.time_base)
        self.frame_s = 1 / fps
        self.tolerance = self.frame_s * 1.001 + EPS
        self.keyframes = keyframes
        self.gop_s = _mean_spacing(keyframes)
        self.max_side = max_side
        self.moved = False
        self.decoded = 0  # frames the decoder gave back (for the benchmark)
        self.errors = 0  # packets skipped as corrupt
        self.last_end = 0.0  # where the last frame decoded stops being shown

    def frames(self, t: float, skip: str) -> Iterator[tuple[float, Any]]:
        """Frames (time, frame) from the keyframe at or before ``t``, skipping ``skip``."""
        back = 0.0
        while True:
            if self.moved or t > EPS:
                # MP4's index (and FFmpeg's seek) goes by decoding time, which can come before a
                # keyframe's presentation time by more than it does for the frames around it: a seek
                # may land on a keyframe after t. Then seek again, further back.
                offset = self.start + int(Fraction(max(0.0, t - back)) / self.time_base)
                self.container.seek(offset, stream=self.stream, backward=True, any_frame=False)
                self.stream.codec_context.flush_buffers()
            self.moved = True
            self.stream.codec_context.skip_frame = skip
            frames = self._decode()
            first = next(frames, None)
            if first is None or first[0] <= t + EPS or t - back <= 0:
                break
            back = max(2 * back, first[0] - t + self.frame_s)
        if first is not None:
            yield first
            yield from frames

    def _decode(self) -> Iterator[tuple[float, Any]]:
        """Decoded frames in presentation order. A packet the decoder refuses (corrupt data) is
        skipped, as a player does; a container that cannot be read further ends the stream there."""
        import av

        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError:
                self.errors += 1
                return
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self.errors += 1
                continue
            for frame in frames:
                if frame.pts is None:
                    continue
                self.decoded += 1
                self.last_end = float((frame.pts - self.start + (frame.duration or 0)) * self.time_base)
                yield float((frame.pts - self.start) * self.time_base), frame

    def seek_pays(self, position: float, target: float) -> bool:
        """Whether seeking to ``target`` decodes less than going on from ``position``: a keyframe lies
        between them."""
        if self.keyframes is not None:
            k = self.keyframes[max(0, bisect_right(self.keyframes, target + EPS) - 1)]
            return k > position + self.frame_s / 2
        return self.gop_s is not None and target - position > self.gop_s

    def skip_again(self, position: float, target: float, at_keyframe: bool) -> bool:
        """After a sample fetched exactly, whether to skip again rather than decode on: the next
        sample lies past a keyframe (else it would need this stretch decoded again). Without an
        index, at the first keyframe decoded."""
        return self.seek_pays(position, target) if self.keyframes is not None else at_keyframe

    def nearest(self, t: float, before: tuple[float, Any] | None, after: tuple[float, Any]) -> tuple[Any, bool]:
        """The frame to show for ``t`` given the decoded frames around it, and whether it is within
        one frame interval of ``t``."""
        if before is not None and t - before[0] <= self.tolerance:
            return before[1], True
        if after[0] - t <= self.tolerance:
            return after[1], True
        return (after[1] if before is None or after[0] - t < t - before[0] else before[1]), False

    def run(self, times: Iterator[float], strategy: str) -> Iterator[Sample]:
        skip = SKIP[strategy]
        seeking = strategy == "seek"
        target = next(times, None)
        resume = target if target is not None else 0.0
        exact = seeking  # decoding every frame from a seek, to fetch a sample exactly
        sought: float | None = None  # the target of the last seek: one seek per target at most
        while target is not None:
            previous: tuple[float, Any] | None = None
            stuck: float | None = None
            leave: float | None = None  # seek: jump to this target
            for t, frame in self.frames(resume, "DEFAULT" if exact else skip):
                while target is not None and t > target + EPS:
                    chosen, near = self.nearest(target, previous, (t, frame))
                    if not near and not exact:
                        stuck = target  # fetch it exactly
                        break
                    yield Sample(target, _rgb(chosen, self.max_side))
                    target = next(times, None)
                if stuck is not None or target is None:
                    break
                while target is not None and t <= target + EPS and target < t + self.frame_s - EPS:
                    yield Sample(target, _rgb(frame, self.max_side))  # no frame comes between
                    target = next(times, None)
                if target is None:
                    break
                if exact and not seeking and target > resume + EPS and self.skip_again(t, target, frame.key_frame):
                    # The sample it was stuck on is taken: skip again from here on, without a seek.
                    exact = False
                    self.stream.codec_context.skip_frame = skip
                if seeking and target != sought and self.seek_pays(t, target):
                    leave = sought = target
                    break
                previous = (t, frame)
            else:  # the end of the stream: the last frame stays on screen until the end
                while target is not None:
                    if previous is None or (not exact and target - previous[0] > self.tolerance):
                        stuck = target
                        break
                    if exact and target > max(self.last_end, previous[0] + self.frame_s) + self.tolerance:
                        raise UnreadableVideo(f"its frames stop at {previous[0]:.2f} s, before its stated end: it is cut off")
                    yield Sample(target, _rgb(previous[1], self.max_side))
                    target = next(times, None)
                if stuck is None:
                    return
            if stuck is not None:
                if exact:  # even decoding every frame from the keyframe before it found none
                    raise UnreadableVideo(f"no frame could be decoded at {stuck:.2f} s: it is cut off or damaged there")
                resume, exact = stuck, True
            elif leave is not None:
                resume, exact = leave, seeking


def sample_frames(path: Source, every_s: float, start_s: float = 0.0, end_s: float | None = None,
                  max_side: int | None = None, strategy: str = "auto", *, max_pixels: int | None = None,
                  stats: dict[str, Any] | None = None) -> Iterator[Sample]:
    """One Sample per multiple of every_s in [start_s, end_s) (end_s None: the video's end), in order:
    the frame on screen at that time (the last frame whose timestamp is <= t, or the first after t
    when decoding skipped it; within one frame interval of t either way). Times are on the video's
    global grid (k * every_s), so the samples of [0, 60) and [60, 120) together are exactly the samples
    of [0, 120). max_side: scale frames down (keeping the aspect) so the longer side is at most this,
    in FFmpeg, before conversion to numpy. strategy: "all", "nonref", "keyframes", "seek" or "auto"
    (the cheapest for this file and span; see the module's docstring). max_pixels: the decoder
    refuses larger frames (probe checks the header first). stats: filled with the strategy used and
    the frames decoded, as the samples are taken."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    with _video(path, max_pixels) as (container, stream):
        stream.thread_type = "AUTO"
        fps = _fps(stream) or 0.0
        duration = _duration_s(container, stream)
        if not fps or duration is None:
            raise UnreadableVideo("it has no frame rate or no duration")
        end = duration if end_s is None else min(end_s, duration)
        start = stream.start_time or 0
        keyframes = _keyframe_times(stream, start)
        times = list(sample_times(every_s, start_s, end))
        chosen = strategy if strategy != "auto" else choose_strategy(
            times, keyframes, fps, b_frames=bool(stream.codec_context.has_b_frames))
        sampler = _Sampler(container, stream, fps, keyframes, max_side)
        if stats is not None:
            stats.update(strategy=chosen, decoded=0, corrupt_packets=0)
        for sample in sampler.run(iter(times), chosen):
            if stats is not None:
                stats.update(decoded=sampler.decoded, corrupt_packets=sampler.errors)
            yield sample
        if stats is not None:
            stats.update(decoded=sampler.decoded, corrupt_packets=sampler.errors)
