"""Kinematic choreography: planned steps -> a human body pose per frame.

A :class:`BodyPose` describes the body in its own heading frame (x forward, y left, z up):
planar root position and heading in the world, forward spine bend, and unit direction vectors
of each limb segment. Each vocabulary action is a function of normalised time u in [0, 1] that
starts from the previous step's final pose, so consecutive segments join without jumps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from exoactor.planning.vocabulary import Step

LIMBS = ("thigh_l", "shank_l", "thigh_r", "shank_r", "uarm_l", "farm_l", "uarm_r", "farm_r")
"""Limb segments: thigh/shank (leg), uarm/farm (upper arm / forearm), _l/_r side."""


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


NEUTRAL_DIRS = {
    "thigh_l": _unit([0, 0.03, -1]), "shank_l": _unit([0, 0.0, -1]),
    "thigh_r": _unit([0, -0.03, -1]), "shank_r": _unit([0, 0.0, -1]),
    "uarm_l": _unit([0.0, 0.16, -1]), "farm_l": _unit([0.12, 0.04, -1]),
    "uarm_r": _unit([0.0, -0.16, -1]), "farm_r": _unit([0.12, -0.04, -1]),
}


NEUTRAL_GRIP = {"l": 0.25, "r": 0.25}
"""A relaxed hand: fingers slightly bent."""


@dataclass
class BodyPose:
    """One frame. xy_world_m: root position on the floor plane; yaw_rad: heading (CCW from +x);
    spine_pitch_rad: forward bend; pelvis_drop_m: extra pelvis lowering (sitting);
    dirs: limb directions in the heading frame (unit 3-vectors)."""

    xy_world_m: np.ndarray = field(default_factory=lambda: np.zeros(2))
    yaw_rad: float = 0.0
    spine_pitch_rad: float = 0.0
    dirs: dict[str, np.ndarray] = field(default_factory=lambda: {k: v.copy() for k, v in NEUTRAL_DIRS.items()})
    grip: dict[str, float] = field(default_factory=lambda: dict(NEUTRAL_GRIP))
    """Hand closure per side ("l", "r"): 0 open (fingers straight) to 1 a closed fist."""

    def copy(self) -> "BodyPose":
        return replace(self, xy_world_m=self.xy_world_m.copy(), dirs={k: v.copy() for k, v in self.dirs.items()},
                       grip=dict(self.grip))


def smoothstep(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def bump(u: float) -> float:
    """0 -> 1 -> 0 over u in [0, 1], smooth."""
    return math.sin(math.pi * min(max(u, 0.0), 1.0)) ** 2


def plateau(u: float, ramp: float = 0.3) -> float:
    """0 -> 1 (over `ramp`), hold, -> 0 (over `ramp`)."""
    return smoothstep(u / ramp) * smoothstep((1 - u) / ramp)


def _blend_dir(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    return _unit((1 - w) * a + w * b)


def _angle_dir(forward_rad: float, lateral: float = 0.0) -> np.ndarray:
    """Downward segment swung forward by ``forward_rad`` (negative = backward)."""
    return _unit([math.sin(forward_rad), lateral, -math.cos(forward_rad)])


def _sides(side: str) -> list[str]:
    return {"left": ["l"], "right": ["r"], "both": ["l", "r"]}.get(side, ["r"])


def _lat(s: str) -> float:
    return 1.0 if s == "l" else -1.0


def pose_at(step: Step, start: BodyPose, u: float) -> BodyPose:
    """Pose at normalised time u of ``step`` started from ``start``."""
    p = start.copy()
    d = p.dirs
    a = step.action
    if a == "idle":
        return p
    if a in ("stand", "lower_arm"):
        w = smoothstep(u)
        keys = LIMBS if a == "stand" else [k for s in _sides(step.side) for k in (f"uarm_{s}", f"farm_{s}")]
        for k in keys:
            d[k] = _blend_dir(start.dirs[k], NEUTRAL_DIRS[k], w)
        if a == "stand":
            p.spine_pitch_rad = (1 - w) * start.spine_pitch_rad
        for s in (("l", "r") if a == "stand" else _sides(step.side)):
            p.grip[s] = (1 - w) * start.grip[s] + w * NEUTRAL_GRIP[s]
        return p
    if a in ("walk", "step"):
        directions = {"forward": (1, 0), "backward": (-1, 0), "left": (0, 1), "right": (0, -1)}
        direction = directions.get(step.direction or "forward", (1, 0))
        dist = abs(step.amount)
        s = smoothstep(u)
        c, sn = math.cos(start.yaw_rad), math.sin(start.yaw_rad)
        dxy = np.array([c * direction[0] - sn * direction[1], sn * direction[0] + c * direction[1]])
        p.xy_world_m = start.xy_world_m + dxy * dist * s
        cycles = max(1.0, round(dist / 1.0)) if a == "walk" else 0.5
        phi = 2 * math.pi * cycles * s
        env = plateau(u, 0.15)
        fwd = direction[0] if direction[0] else 0.0
        lat = direction[1]
        for side, sign in (("l", 1.0), ("r", -1.0)):
            swing = 0.38 * env * math.sin(phi) * sign
            knee = (0.7 * env * max(0.0, math.sin(phi + (0 if sign > 0 else math.pi) + math.pi / 2)) if a == "walk"
                    else 0.6 * env)
            t = _unit([math.sin(swing) * (fwd or 0.0), _lat(side) * 0.03 + math.sin(swing) * lat, -math.cos(swing)])
            d[f"thigh_{side}"] = t
            d[f"shank_{side}"] = _angle_dir(swing * (fwd or 1.0) - knee, _lat(side) * 0.0)
            arm = -0.3 * env * math.sin(phi) * sign
            d[f"uarm_{side}"] = _blend_dir(NEUTRAL_DIRS[f"uarm_{side}"], _angle_dir(arm, _lat(side) * 0.16), 1.0)
        return p
    if a == "turn":
        p.yaw_rad = start.yaw_rad + step.amount * smoothstep(u)
        env = plateau(u, 0.15)
        for i, side in enumerate(("l", "r")):
            lift = 0.5 * env * max(0.0, math.sin(2 * math.pi * 2 * u + i * math.pi))
            d[f"thigh_{side}"] = _angle_dir(lift, _lat(side) * 0.03)
            d[f"shank_{side}"] = _angle_dir(-lift)
        return p
    if a == "squat":
        k = bump(u)
        for side in ("l", "r"):
            d[f"thigh_{side}"] = _angle_dir(1.25 * k, _lat(side) * 0.12)
            d[f"shank_{side}"] = _angle_dir(-0.65 * k)
            d[f"uarm_{side}"] = _blend_dir(NEUTRAL_DIRS[f"uarm_{side}"], _unit([1, _lat(side) * 0.2, 0.05]), k)
            d[f"farm_{side}"] = _blend_dir(NEUTRAL_DIRS[f"farm_{side}"], _unit([1, 0, 0.05]), k)
        p.spine_pitch_rad = 0.45 * k
        return p
    if a == "sit":
        k = smoothstep(u)
        lean = bump(u)
        for side in ("l", "r"):
            d[f"thigh_{side}"] = _blend_dir(start.dirs[f"thigh_{side}"], _angle_dir(1.4, _lat(side) * 0.1), k)
            d[f"shank_{side}"] = _blend_dir(start.dirs[f"shank_{side}"], _angle_dir(-0.1), k)
            d[f"uarm_{side}"] = _blend_dir(NEUTRAL_DIRS[f"uarm_{side}"], _unit([0.6, _lat(side) * 0.2, -0.6]), lean)
        c, sn = math.cos(start.yaw_rad), math.sin(start.yaw_rad)
        p.xy_world_m = start.xy_world_m - 0.25 * k * np.array([c, sn])
        p.spine_pitch_rad = start.spine_pitch_rad * (1 - k) + 0.5 * lean
        return p
    if a == "bend":
        k = smoothstep(u)
        p.spine_pitch_rad = start.spine_pitch_rad + (0.85 - start.spine_pitch_rad) * k
        return p
    arm_targets = {
        "raise_arm": (lambda s: _unit([0.1, _lat(s) * 0.2, 1]), lambda s: _unit([0.1, _lat(s) * 0.1, 1]), smoothstep),
        "reach": (lambda s: _unit([1, _lat(s) * 0.1, 0.05]), lambda s: _unit([1, 0, 0.05]), plateau),
        "grasp": (lambda s: _unit([0.6, _lat(s) * 0.15, -0.8]), lambda s: _unit([0.8, -_lat(s) * 0.1, -0.6]),
                  smoothstep),
        "place": (lambda s: _unit([0.8, _lat(s) * 0.15, -0.6]), lambda s: _unit([1, 0, -0.35]), plateau),
    }
    if a in arm_targets:
        up_fn, fore_fn, prof = arm_targets[a]
        k = prof(u)
        for s in _sides(step.side):
            d[f"uarm_{s}"] = _blend_dir(start.dirs[f"uarm_{s}"], up_fn(s), k)
            d[f"farm_{s}"] = _blend_dir(start.dirs[f"farm_{s}"], fore_fn(s), k)
            p.grip[s] = _grip_at(a, start.grip[s], u)
        return p
    if a == "wave":
        raise_k = smoothstep(u / 0.25) * smoothstep((1 - u) / 0.2)
        osc = math.sin(2 * math.pi * 3 * min(max((u - 0.25) / 0.55, 0.0), 1.0))
        for s in _sides(step.side):
            up = _unit([0.15, _lat(s) * 0.9, 0.45])
            fore = _unit([0.1, _lat(s) * 0.45 * osc, 1.0])
            d[f"uarm_{s}"] = _blend_dir(start.dirs[f"uarm_{s}"], up, raise_k)
            d[f"farm_{s}"] = _blend_dir(start.dirs[f"farm_{s}"], fore, raise_k)
            p.grip[s] = (1 - raise_k) * start.grip[s]  # an open hand while it waves
        return p
    raise ValueError(f"no choreography for action {a!r}")


def _grip_at(action: str, start: float, u: float) -> float:
    """Hand closure during an arm action: grasp closes the hand as it arrives, place opens it at
    the far point and relaxes it on the way back, the others keep it."""
    if action == "grasp":
        return start + (1.0 - start) * smoothstep((u - 0.55) / 0.35)
    if action == "place":
        opened = start * (1.0 - smoothstep((u - 0.3) / 0.2))
        return opened + (NEUTRAL_GRIP["r"] - opened) * smoothstep((u - 0.7) / 0.3)
    return start


def start_pose_of(steps: list[Step], index: int) -> BodyPose:
    """Pose at the start of ``steps[index]`` (replaying the earlier steps)."""
    pose = BodyPose()
    for s in steps[:index]:
        pose = pose_at(s, pose, 1.0)
    return pose


def segment_poses(steps: list[Step], index: int, fps: float) -> list[BodyPose]:
    """Frames of segment ``index``: n = round(duration * fps) poses, u from 0 to 1."""
    start = start_pose_of(steps, index)
    step = steps[index]
    n = max(2, int(round(step.duration_s * fps)))
    return [pose_at(step, start, i / (n - 1)) for i in range(n)]
