"""Following faces from one sampled frame to the next, so that a face is described once, not in every
sample.

A descriptor (dlib's ResNet: tens of milliseconds a face) is the cost that grows with the people in a
lecture; detection (where the faces are) has to run on every sample anyway. So each detected box is
matched to a face of the previous sample by their overlap (intersection over union): a match keeps its
descriptor and its identity, and only new faces are described. A followed face is described again
every ``refresh_every`` samples, when its box changes size a lot, and when it no longer looks like
itself: a 16x16 grey thumbnail of the box (normalised for brightness) is compared with the last one,
so someone who sits down in a seat just left is described at once (a thumbnail costs microseconds,
a descriptor milliseconds).

:class:`Observer` turns one segment's samples into an :class:`iraas.classroom.attendance.SegmentResult`.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from iraas.classroom.attendance import CLEAR_FRACTION, CLEAR_MARGIN, SegmentResult, UnknownPerson
from iraas.classroom.engines.base import Box, FaceEngine, Scene
from iraas.classroom.gallery import Gallery, Match

log = logging.getLogger(__name__)

MIN_IOU = 0.3  # the same face from one sample to the next: its boxes overlap at least this much
REFRESH_EVERY = 10  # samples between two descriptors of a followed face
MAX_SIZE_CHANGE = 1.6  # a box this much larger or smaller (by width) is described again
THUMB_PX = 16
MAX_THUMB_CHANGE = 0.6  # mean absolute difference of two normalised thumbnails: another face past this
CROP_PX = 160  # the side of an unknown face's crop: small, and still a face the detector finds (to enrol it)


def iou(a: Box, b: Box) -> float:
    top, left = max(a.top, b.top), max(a.left, b.left)
    bottom, right = min(a.bottom, b.bottom), min(a.right, b.right)
    inter = max(0, bottom - top) * max(0, right - left)
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One face followed through consecutive samples."""

    box: Box
    descriptor: np.ndarray
    match: Match
    clear: bool
    last_index: int  # the sample it was last seen in
    described_index: int  # the sample its descriptor was computed in
    thumb: np.ndarray  # what the face looked like when last seen (see thumbnail)
    unknown: UnknownPerson | None = None  # where its sightings go when nobody enrolled matches


def _clear(match: Match, tolerance: float) -> bool:
    return match.name is not None and match.distance <= CLEAR_FRACTION * tolerance and (
        match.distance <= CLEAR_MARGIN * match.runner_up
    )


def thumbnail(rgb: np.ndarray, box: Box, side: int = THUMB_PX) -> np.ndarray:
    """The face in ``box`` as a ``side`` x ``side`` grey patch with zero mean and unit spread."""
    height, width = rgb.shape[:2]
    top, bottom = min(max(0, box.top), height - 1), min(max(box.top + 1, box.bottom), height)
    left, right = min(max(0, box.left), width - 1), min(max(box.left + 1, box.right), width)
    grey = rgb[top:bottom, left:right].mean(axis=2, dtype=np.float32)
    rows = np.linspace(0, grey.shape[0] - 1, side).astype(int)
    cols = np.linspace(0, grey.shape[1] - 1, side).astype(int)
    patch = grey[np.ix_(rows, cols)]
    return (patch - patch.mean()) / (patch.std() + 1.0)


def crop_jpeg(rgb: np.ndarray, box: Box, side: int = CROP_PX) -> bytes:
    """A small square JPEG of the face in ``box`` (with some margin), for the report's unknown faces."""
    from PIL import Image

    height, width = rgb.shape[:2]
    pad = max(box.width, box.height) // 4
    top, bottom = max(0, box.top - pad), min(height, box.bottom + pad)
    left, right = max(0, box.left - pad), min(width, box.right + pad)
    image = Image.fromarray(np.ascontiguousarray(rgb[top:bottom, left:right]))
    image.thumbnail((side, side))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


class Observer:
    """Follows and recognises the faces of one segment's samples, in order."""

    def __init__(
        self, engine: FaceEngine, gallery: Gallery, tolerance: float, margin: float, start_s: float, end_s: float,
        refresh_every: int = REFRESH_EVERY, unchanged_reused: bool = True, max_detect_pixels: int | None = None,
    ) -> None:
        self.engine, self.gallery = engine, gallery
        self.tolerance, self.margin = tolerance, margin
        self.refresh_every = refresh_every
        self.result = SegmentResult(start_s=start_s, end_s=end_s)
        self.tracks: list[Track] = []
        self.index = -1
        self.described = 0  # descriptors computed: what following faces saves
        # The samples come in order from one camera: the engine may skip what did not change. Each is
        # looked at scaled to at most max_detect_pixels; its faces are described on the sample itself.
        self.scene = engine.scene(max_detect_pixels) if unchanged_reused else Scene(engine, max_detect_pixels)

    def observe(self, t: float, rgb: np.ndarray) -> None:
        """One sample: detect, follow or describe each face, record who was seen at ``t``."""
        self.index += 1
        self.result.sample_times.append(t)
        boxes = self.scene.detect(rgb)
        followed = self._follow(boxes)
        thumbs = [thumbnail(rgb, box) for box in boxes]
        stale = [
            box for box, track, thumb in zip(boxes, followed, thumbs, strict=True)
            if self._needs_descriptor(box, track, thumb)
        ]
        descriptors = dict(zip(stale, self.engine.describe(rgb, stale), strict=True)) if stale else {}
        self.described += len(stale)
        tracks = []
        for box, track, thumb in zip(boxes, followed, thumbs, strict=True):
            if box in descriptors:
                track = self._described(rgb, box, descriptors[box], track, thumb)
            else:
                assert track is not None  # _needs_descriptor is true for a box nobody follows
                track.box = box
            track.last_index, track.thumb = self.index, thumb
            tracks.append(track)
            self._record(track, t)
        self.tracks = tracks

    def _follow(self, boxes: list[Box]) -> list[Track | None]:
        """The track each box continues (greedy, best overlap first), None for a new face."""
        live = [t for t in self.tracks if t.last_index == self.index - 1]
        pairs = sorted(
            ((iou(box, track.box), b, k) for b, box in enumerate(boxes) for k, track in enumerate(live)),
            reverse=True,
        )
        chosen: list[Track | None] = [None] * len(boxes)
        taken: set[int] = set()
        for overlap, b, k in pairs:
            if overlap < MIN_IOU:
                break
            if chosen[b] is None and k not in taken:
                chosen[b], taken = live[k], taken | {k}
        return chosen

    def _needs_descriptor(self, box: Box, track: Track | None, thumb: np.ndarray) -> bool:
        if track is None or self.index - track.described_index >= self.refresh_every:
            return True
        ratio = box.width / max(1, track.box.width)
        if not 1 / MAX_SIZE_CHANGE <= ratio <= MAX_SIZE_CHANGE:
            return True
        return float(np.abs(thumb - track.thumb).mean()) > MAX_THUMB_CHANGE

    def _described(
        self, rgb: np.ndarray, box: Box, descriptor: np.ndarray, track: Track | None, thumb: np.ndarray
    ) -> Track:
        match = self.gallery.match(descriptor, self.tolerance, self.margin)
        if track is not None and track.match.name == match.name and (match.name is not None or track.unknown):
            # The same person as before: keep following (an unknown one keeps its group).
            track.box, track.descriptor, track.match = box, descriptor, match
            track.described_index, track.clear = self.index, track.clear or _clear(match, self.tolerance)
            return track
        new = Track(box, descriptor, match, _clear(match, self.tolerance), self.index, self.index, thumb)
        if match.name is None:
            new.unknown = UnknownPerson(np.asarray(descriptor, np.float32), crop=crop_jpeg(rgb, box))
            self.result.unknown.append(new.unknown)
        return new

    def _record(self, track: Track, t: float) -> None:
        if track.match.name is not None:
            self.result.see(track.match.name, t, clear=track.clear)
        elif track.unknown is not None:
            track.unknown.times.append(t)

    def observe_all(self, samples: Iterable[tuple[float, np.ndarray]]) -> SegmentResult:
        for t, rgb in samples:
            self.observe(t, rgb)
        log.info("observed %d samples, %d descriptors", len(self.result.sample_times), self.described)
        return self.result
