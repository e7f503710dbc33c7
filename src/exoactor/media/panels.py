"""Drawing the four-panel frame: panels, skeleton overlay, step labels and the timeline bar (OpenCV).

All images are RGB uint8. Text drawn with OpenCV's Hershey fonts is ASCII only (other characters
become '?').
"""
from __future__ import annotations

import cv2
import numpy as np

from exoactor.geometry import PinholeCamera
from exoactor.skeleton import HAND_BONES, HAND_SIDES, HUMAN_BONES

PANEL_W, PANEL_H = 320, 240
HEADER_H, FOOTER_H = 30, 58
FRAME_W, FRAME_H = 2 * PANEL_W, HEADER_H + 2 * PANEL_H + FOOTER_H

BONES = HUMAN_BONES

SIDE_COLORS = {"left": (60, 160, 255), "right": (255, 90, 60), "": (240, 240, 240)}
STAGE_COLORS = {"planning": (150, 150, 150), "camera": (120, 120, 120), "embodiment_transfer": (170, 120, 200),
                "video_generation": (80, 140, 230), "motion_estimation": (240, 170, 50), "tracking": (70, 190, 90)}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def ascii_text(text: str, max_len: int = 200) -> str:
    s = "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text))
    return s if len(s) <= max_len else s[:max_len - 3] + "..."


def put_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45,
             color=(255, 255, 255), thickness: int = 1, shadow: bool = True) -> None:
    text = ascii_text(text)
    if shadow:
        cv2.putText(img, text, (org[0] + 1, org[1] + 1), _FONT, scale, (0, 0, 0), thickness + 1, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, scale, color, thickness, cv2.LINE_AA)


def fit_geometry(iw: int, ih: int, w: int = PANEL_W, h: int = PANEL_H) -> tuple[float, int, int, int, int]:
    """How :func:`fit` places an iw x ih image in w x h: (scale, x offset, y offset, new width, new height)."""
    s = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
    return s, (w - nw) // 2, (h - nh) // 2, nw, nh


def fit(img: np.ndarray | None, w: int = PANEL_W, h: int = PANEL_H) -> np.ndarray:
    """``img`` scaled to fit in w x h (aspect kept, black bars); a dark panel for None."""
    out = np.full((h, w, 3), 24, np.uint8)
    if img is None:
        return out
    s, x, y, nw, nh = fit_geometry(img.shape[1], img.shape[0], w, h)
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out[y:y + nh, x:x + nw] = small
    return out


def placeholder(text: str, w: int = PANEL_W, h: int = PANEL_H) -> np.ndarray:
    out = np.full((h, w, 3), 24, np.uint8)
    put_text(out, text, (12, h // 2), 0.5, (170, 170, 170))
    return out


def title(panel: np.ndarray, text: str) -> np.ndarray:
    """Panel name in its top-left corner (in place)."""
    (tw, _), _ = cv2.getTextSize(ascii_text(text), _FONT, 0.42, 1)
    cv2.rectangle(panel, (0, 0), (min(panel.shape[1] - 1, tw + 8), 18), (0, 0, 0), -1)
    put_text(panel, text, (4, 13), 0.42, (255, 255, 255), shadow=False)
    return panel


def camera_panel(input_rgb: np.ndarray | None, reference_rgb: np.ndarray | None) -> np.ndarray:
    """(a) the robot as the camera sees it; the embodiment transfer's output inset when it differs."""
    if input_rgb is None and reference_rgb is None:
        return placeholder("no camera image")
    panel = fit(input_rgb if input_rgb is not None else reference_rgb)
    if input_rgb is not None and reference_rgb is not None:
        same = reference_rgb.shape == input_rgb.shape and np.mean(
            np.abs(reference_rgb.astype(np.int16) - input_rgb.astype(np.int16))) < 2.0
        if not same:
            inset = fit(reference_rgb, PANEL_W // 3, PANEL_H // 3)
            panel[PANEL_H - inset.shape[0] - 4:PANEL_H - 4, PANEL_W - inset.shape[1] - 4:PANEL_W - 4] = inset
            cv2.rectangle(panel, (PANEL_W - inset.shape[1] - 5, PANEL_H - inset.shape[0] - 5),
                          (PANEL_W - 4, PANEL_H - 4), (255, 255, 255), 1)
            put_text(panel, "reference", (PANEL_W - inset.shape[1], PANEL_H - inset.shape[0] - 9), 0.35)
    return panel


def draw_skeleton(panel: np.ndarray, camera: PinholeCamera, keypoints_world_m: np.ndarray,
                  names: tuple[str, ...], confidence: np.ndarray | None = None) -> int:
    """Bones of one frame's keypoints projected through ``camera`` onto a panel that shows the camera's
    image as :func:`fit` places it; returns how many bones were drawn. Left limbs blue, right limbs
    red, the trunk white; low confidence thinner."""
    h, w = panel.shape[:2]
    s, x0, y0, _nw, _nh = fit_geometry(camera.width, camera.height, w, h)
    uv, z = camera.project(np.asarray(keypoints_world_m, dtype=np.float64))
    uv = (uv + 0.5) * s - 0.5 + np.array([x0, y0])
    idx = {n: i for i, n in enumerate(names)}
    drawn = 0
    for a, b in BONES:
        if a not in idx or b not in idx:
            continue
        i, j = idx[a], idx[b]
        if not (z[i] > 0 and z[j] > 0 and np.all(np.isfinite(uv[[i, j]]))):
            continue
        side = "left" if a.startswith("left") and b.startswith("left") else (
            "right" if a.startswith("right") and b.startswith("right") else "")
        conf = 1.0 if confidence is None else float(min(confidence[i], confidence[j]))
        p, q = tuple(np.round(uv[i]).astype(int)), tuple(np.round(uv[j]).astype(int))
        cv2.line(panel, p, q, SIDE_COLORS[side], 2 if conf >= 0.5 else 1, cv2.LINE_AA)
        drawn += 1
    for i in range(len(names)):
        if z[i] > 0 and np.all(np.isfinite(uv[i])):
            cv2.circle(panel, tuple(np.round(uv[i]).astype(int)), 2, (255, 255, 0), -1, cv2.LINE_AA)
    return drawn


def draw_hands(panel: np.ndarray, camera: PinholeCamera, hand_points_world_m: np.ndarray,
               hand_confidence: np.ndarray, thickness: int = 1) -> int:
    """Both hands' bones (HAND_BONES) of one frame, as :func:`draw_skeleton` draws the body; only the
    hands detected in this frame (confidence > 0). Returns how many hands were drawn."""
    h, w = panel.shape[:2]
    s, x0, y0, _nw, _nh = fit_geometry(camera.width, camera.height, w, h)
    drawn = 0
    for k, side in enumerate(HAND_SIDES):
        if hand_confidence[k] <= 0:
            continue
        uv, z = camera.project(np.asarray(hand_points_world_m[k], dtype=np.float64))
        if not (np.all(z > 0) and np.all(np.isfinite(uv))):
            continue
        uv = np.round((uv + 0.5) * s - 0.5 + np.array([x0, y0])).astype(int)
        for a, b in HAND_BONES:
            cv2.line(panel, tuple(uv[a]), tuple(uv[b]), SIDE_COLORS[side], thickness, cv2.LINE_AA)
        for q in uv:
            cv2.circle(panel, tuple(q), thickness, (255, 255, 0), -1, cv2.LINE_AA)
        drawn += 1
    return drawn


def header(text_left: str, text_right: str, color=(255, 255, 255)) -> np.ndarray:
    """The top bar: ``text_left`` (the step and phase), ``text_right`` (the instruction) shortened to fit."""
    bar = np.full((HEADER_H, FRAME_W, 3), 16, np.uint8)
    put_text(bar, text_left, (8, 20), 0.52, color, 1, shadow=False)
    (lw, _), _ = cv2.getTextSize(ascii_text(text_left), _FONT, 0.52, 1)
    right = ascii_text(text_right)
    room = FRAME_W - 8 - (8 + lw + 24)
    while right and cv2.getTextSize(right, _FONT, 0.45, 1)[0][0] > room:
        right = right[:-4] + "..." if len(right) > 4 else ""
    if right:
        (tw, _), _ = cv2.getTextSize(right, _FONT, 0.45, 1)
        put_text(bar, right, (FRAME_W - tw - 8, 20), 0.45, (200, 200, 200), 1, shadow=False)
    return bar


class TimelineBar:
    """The footer: the task's time axis with what ran when, the step windows and a cursor.

    Lane 1: video generation / motion estimation / embodiment transfer activities; lane 2: the
    robot (ramp-in lighter, tracking in the step's colour); a tick at the time to first motion.
    """

    def __init__(self, end_s: float, activities: list[dict], windows: list, first_motion_s: float):
        self.end_s = max(float(end_s), 1e-3)
        self.x0, self.x1 = 10, FRAME_W - 10
        base = np.full((FOOTER_H, FRAME_W, 3), 16, np.uint8)
        lane1, lane2 = (4, 17), (20, 32)
        for a in activities:
            if a["stage"] == "tracking":
                continue
            c = STAGE_COLORS.get(a["stage"], (160, 160, 160))
            # video generation on top, estimation (and the embodiment transfer) below: they overlap in time
            y0, y1 = (lane1[0], 10) if a["stage"] == "video_generation" else (11, lane1[1])
            xa, xb = self.x(a["start_s"]), max(self.x(a["end_s"]), self.x(a["start_s"]) + 1)
            cv2.rectangle(base, (xa, y0), (xb, y1), c, -1)
            cv2.rectangle(base, (xa, y0), (xb, y1), (16, 16, 16), 1)
        for win in windows:
            strong = STAGE_COLORS["tracking"] if win.executed else (110, 110, 110)
            light = tuple(int(0.5 * v + 40) for v in strong)
            cv2.rectangle(base, (self.x(win.start_s), lane2[0]), (self.x(win.track_start_s), lane2[1]), light, -1)
            cv2.rectangle(base, (self.x(win.track_start_s), lane2[0]), (self.x(win.track_end_s), lane2[1]), strong, -1)
            cv2.rectangle(base, (self.x(win.start_s), lane2[0]), (self.x(win.track_end_s), lane2[1]), (16, 16, 16), 1)
            put_text(base, str(win.step.index + 1), (self.x(win.track_start_s) + 2, lane2[1] - 2), 0.33,
                     (0, 0, 0), shadow=False)
        cv2.line(base, (self.x0, lane2[1] + 2), (self.x1, lane2[1] + 2), (120, 120, 120), 1)
        if first_motion_s >= 0:
            xf = self.x(first_motion_s)
            cv2.line(base, (xf, lane1[0] - 3), (xf, lane2[1] + 4), (255, 255, 255), 1)
        self.base = base

    def x(self, t_s: float) -> int:
        return round(self.x0 + (self.x1 - self.x0) * min(max(t_s / self.end_s, 0.0), 1.0))

    def render(self, t_s: float, text: str) -> np.ndarray:
        out = self.base.copy()
        x = self.x(t_s)
        cv2.rectangle(out, (self.x0, 36), (x, 38), (230, 230, 230), -1)
        cv2.line(out, (x, 2), (x, 38), (255, 255, 255), 2)
        put_text(out, text, (10, 53), 0.42, (230, 230, 230), shadow=False)
        return out


def compose(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, head: np.ndarray,
            foot: np.ndarray) -> np.ndarray:
    """The full frame: header, 2x2 panels (a b / c d), footer."""
    return np.vstack([head, np.hstack([a, b]), np.hstack([c, d]), foot])
