"""The main subject: which person of a clip to follow, and where in each frame to look for them.

A generated clip may show more than one person (a bystander, a reflection, someone walking past
in front of the camera). A single-person detector left on the whole frame follows whoever it
finds first and switches when the two cross. :class:`SubjectTracker` keeps it on one person:

- **Choosing.** When the clip starts (and whenever the subject has to be found again on the whole
  frame), every person the detector can find is enumerated (:func:`enumerate_people`: detect,
  blank that person out, detect again). The main subject is chosen by :data:`SUBJECT_RULES`:
  ``"center"`` (the default: the person nearest the frame's vertical centre line among those at
  least half as tall as the tallest; ExoActor's camera is aimed at the robot, whose place the
  human takes) or ``"largest"`` (the tallest in pixels).
- **Following.** Each later frame, the detector sees only a region around the subject's last box
  (:meth:`SubjectTracker.region`), moved only when the subject nears its edge, so a person
  elsewhere in the frame is never seen at all.
- **Checking.** A detection whose box is not where the subject was (:func:`same_person`) is
  someone else: the frame is flagged ``other``, that person is blanked out and the region is
  searched once more. Frames where the subject is not found are left to the caller to fill.
- **Losing.** A subject not found grows its search region frame by frame; after
  ``lost_after_frames`` it is searched on the whole frame, and only a person close to where it was
  last seen is taken for it (never simply the next person in view).

Boxes are in the full frame's pixels (x right, y down). The detector is a callable
``detect(image_rgb) -> (pixels (N, 2), payload) | None`` with the pixels relative to that image,
so any single-person pose detector fits (:mod:`exoactor.motion.mediapipe_estimator` uses
MediaPipe Pose). Whether two detections are one person is judged on the box of the ``anchors``
points (a pose detector's shoulders and hips: raised arms or a bent knee do not move it), the
search region on the box of every point.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

Detection = tuple[np.ndarray, Any]
"""(pixels (N, 2) in the image given to the detector, whatever else the detector returns)."""
Detector = Callable[[np.ndarray], "Detection | None"]

SUBJECT_RULES = ("center", "largest")
"""How the main subject is chosen among several people (see the module's docstring)."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: x0 <= x1 (right), y0 <= y1 (down)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def around(cls, pixels: np.ndarray) -> "Box":
        """The box of (N, 2) points (non-finite ones ignored); ValueError if none is finite."""
        p = np.asarray(pixels, dtype=float).reshape(-1, 2)
        p = p[np.all(np.isfinite(p), axis=1)]
        if not len(p):
            raise ValueError("no finite point to put a box around")
        return cls(*p.min(0), *p.max(0))

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2])

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def scaled(self, factor: float) -> "Box":
        """The box grown (factor > 1) or shrunk about its centre."""
        cx, cy = self.centre
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return Box(cx - hw, cy - hh, cx + hw, cy + hh)

    def square(self, side: float) -> "Box":
        cx, cy = self.centre
        return Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)

    def clipped(self, width: int, height: int) -> "Box":
        return Box(max(0.0, self.x0), max(0.0, self.y0), min(float(width), self.x1), min(float(height), self.y1))

    def contains(self, other: "Box") -> bool:
        return self.x0 <= other.x0 and self.y0 <= other.y0 and self.x1 >= other.x1 and self.y1 >= other.y1

    def pixel_slices(self) -> tuple[slice, slice]:
        """(rows, columns) of an image array covered by the box."""
        return slice(int(np.floor(self.y0)), int(np.ceil(self.y1))), slice(int(np.floor(self.x0)), int(np.ceil(self.x1)))


def same_person(last: Box, seen: Box, frames_since: int = 1) -> bool:
    """Whether ``seen`` can be the person whose (anchor) box was ``last`` ``frames_since`` frames ago:
    its centre within 0.4 of that box's height (plus 0.04 per frame since, up to 1.5) and a height
    within a factor 1.3 of it (1.5 after a second: the person may have come nearer)."""
    size = max(last.height, 1.0)
    since = max(frames_since - 1, 0)
    reach = min(0.4 + 0.04 * since, 1.5) * size
    limit = 1.3 if since < 30 else 1.5
    ratio = max(seen.height, 1.0) / size
    return float(np.linalg.norm(seen.centre - last.centre)) <= reach and 1 / limit <= ratio <= limit


def pick_subject(boxes: list[Box], frame_width: int, rule: str = "center") -> int:
    """Index of the main subject among people seen in one frame (see :data:`SUBJECT_RULES`)."""
    if rule not in SUBJECT_RULES:
        raise ValueError(f"subject rule must be one of {SUBJECT_RULES}, got {rule!r}")
    if not boxes:
        raise ValueError("no person to choose from")
    heights = np.array([b.height for b in boxes])
    if rule == "largest":
        return int(np.argmax(heights))
    tall = np.flatnonzero(heights >= 0.5 * heights.max())
    offsets = np.array([abs(boxes[i].centre[0] - frame_width / 2) for i in tall])
    return int(tall[np.argmin(offsets)])


def blank_out(image: np.ndarray, box: Box) -> np.ndarray:
    """A copy of ``image`` with ``box`` (grown by 10 %) filled with the image's median colour."""
    out = image.copy()
    rows, cols = box.scaled(1.1).clipped(image.shape[1], image.shape[0]).pixel_slices()
    out[rows, cols] = np.median(image.reshape(-1, image.shape[-1])[:: 97], axis=0).astype(image.dtype)
    return out


def enumerate_people(detect: Detector, image: np.ndarray, max_people: int = 4,
                     anchors: Sequence[int] | None = None) -> list[tuple[Box, Detection]]:
    """Every person ``detect`` finds in ``image`` (up to ``max_people``): detect, blank that person
    out, detect again. Returns (anchor box, detection) pairs, in ``image``'s pixels."""
    found: list[tuple[Box, Detection]] = []
    work = image
    for _ in range(max_people):
        det = detect(work)
        if det is None:
            break
        try:
            body, anchor = Box.around(det[0]), anchor_box(det[0], anchors)
        except ValueError:
            break
        if any(same_person(b, anchor) for b, _ in found):  # blanking did not hide them: the same person again
            break
        found.append((anchor, det))
        work = blank_out(work, body)
    return found


def anchor_box(pixels: np.ndarray, anchors: Sequence[int] | None) -> Box:
    """The box of the ``anchors`` points of a detection (all of them when None)."""
    p = np.asarray(pixels, dtype=float)
    return Box.around(p if anchors is None else p[list(anchors)])


@dataclass
class Found:
    """One frame's result: the subject's detection (pixels in the full frame) or None, and whether
    someone else was found instead of the subject (``detection`` is then None)."""

    detection: Detection | None
    other_person: bool = False


class SubjectTracker:
    """Keeps a single-person detector on the clip's main subject (see the module's docstring).

    ``track``: the detector for consecutive regions (a video-mode tracker); ``search``: a detector
    for single images (whole-frame enumeration, the second look after someone else was found).
    """

    def __init__(self, track: Detector, search: Detector, frame_width: int, frame_height: int,
                 rule: str = "center", anchors: Sequence[int] | None = None, margin: float = 1.5,
                 lost_after_frames: int = 15):
        if rule not in SUBJECT_RULES:
            raise ValueError(f"subject rule must be one of {SUBJECT_RULES}, got {rule!r}")
        if frame_width < 1 or frame_height < 1:
            raise ValueError(f"frame size must be positive, got {frame_width}x{frame_height}")
        self._track, self._search = track, search
        self.width, self.height = int(frame_width), int(frame_height)
        self.rule, self.margin, self.lost_after_frames = rule, float(margin), int(lost_after_frames)
        self.anchors = None if anchors is None else tuple(int(i) for i in anchors)
        self.last_box: Box | None = None
        """The subject's whole box when last found (full-frame pixels); ``last_anchor``: its anchor box."""
        self.last_anchor: Box | None = None
        self._since = 0  # frames since the subject was last found
        self._region: Box | None = None
        self.people_at_start = 0

    def region(self) -> Box | None:
        """Where the subject is looked for in the next frame (full-frame pixels), or None: the whole frame."""
        if self.last_box is None or self._since > self.lost_after_frames:
            return None
        grow = 1.0 + 0.15 * max(self._since - 1, 0)
        want = self.last_box.square(self.margin * grow * max(self.last_box.height, self.last_box.width))
        inner = self.last_box.scaled(1.15)
        if self._region is None or grow > 1.0 or not self._region.contains(inner.clipped(self.width, self.height)) \
                or self.last_box.height < 0.45 * self._region.height:
            self._region = want.clipped(self.width, self.height)
        return self._region

    def step(self, frame: np.ndarray) -> Found:
        """Look for the subject in one (H, W, 3) frame and update the track."""
        region = self.region()
        found = self._on_whole_frame(frame) if region is None else self._in_region(frame, region)
        if found.detection is not None:
            self.last_box = Box.around(found.detection[0])
            self.last_anchor = anchor_box(found.detection[0], self.anchors)
            self._since = 1
        else:
            self._since += 1
        return found

    def _on_whole_frame(self, frame: np.ndarray) -> Found:
        people = enumerate_people(self._search, frame, anchors=self.anchors)
        if not people:
            return Found(None)
        if self.last_anchor is None:  # the start: choose the subject
            self.people_at_start = len(people)
            i = pick_subject([Box.around(d[0]) for _, d in people], self.width, self.rule)
            return Found(people[i][1])
        near = [(b, d) for b, d in people if same_person(self.last_anchor, b, self._since)]
        if near:
            return Found(min(near, key=lambda p: np.linalg.norm(p[0].centre - self.last_anchor.centre))[1])
        return Found(None, other_person=True)

    def _in_region(self, frame: np.ndarray, region: Box) -> Found:
        rows, cols = region.pixel_slices()
        crop = np.ascontiguousarray(frame[rows, cols])
        offset = np.array([cols.start, rows.start], float)
        det = self._track(crop)
        if det is None:
            return Found(None)
        if same_person(self.last_anchor, anchor_box(det[0] + offset, self.anchors), self._since):
            return Found((det[0] + offset, det[1]))
        # Someone else: blank them out and look once more.
        again = self._search(blank_out(crop, Box.around(det[0])))
        if again is not None and same_person(self.last_anchor, anchor_box(again[0] + offset, self.anchors),
                                             self._since):
            return Found((again[0] + offset, again[1]))
        return Found(None, other_person=True)
