"""The parametric human ``anny`` (PyPI) driven by :class:`BodyPose` frames, rendered offscreen.

Anny's native axes are x = body left, -y = forward, z = up, root at the pelvis; per-bone pose
parameters are rotations in world-aligned reference axes, composed along the kinematic chain.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from exoactor.geometry import PinholeCamera, rot_x, rot_z
from exoactor.skeleton import HUMAN_KEYPOINTS
from exoactor.video.choreography import BodyPose

H_FROM_ANNY = rot_z(np.pi / 2)
"""Maps anny axes into the heading frame (x forward, y left, z up)."""

_LIMB_BONES = {  # limb -> (bone rotated, bone at the segment's far end)
    "thigh": ("upperleg01", "lowerleg01"), "shank": ("lowerleg01", "foot"),
    "uarm": ("upperarm01", "lowerarm01"), "farm": ("lowerarm01", "wrist"),
}
_SPINE = ("spine05", "spine04", "spine03", "spine02", "spine01")
_TRUTH_BONES = {
    "left_hip": "upperleg01.L", "right_hip": "upperleg01.R", "spine": "spine03", "neck": "neck01",
    "head": "head", "left_shoulder": "upperarm01.L", "right_shoulder": "upperarm01.R",
    "left_elbow": "lowerarm01.L", "right_elbow": "lowerarm01.R", "left_wrist": "wrist.L",
    "right_wrist": "wrist.R", "left_hand": "finger3-1.L", "right_hand": "finger3-1.R",
    "left_knee": "lowerleg01.L", "right_knee": "lowerleg01.R", "left_ankle": "foot.L",
    "right_ankle": "foot.R", "left_toe": "toe3-1.L", "right_toe": "toe3-1.R",
}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    x, y, z = axis
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector a to unit vector b."""
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -0.999999:
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


FINGERS = ("finger1", "finger2", "finger3", "finger4", "finger5")
"""Anny's finger chains, thumb first; each has bones -1, -2, -3 (knuckle to tip)."""
FLEX_RAD = {"finger1": (0.35, 0.45, 0.7), "finger2": (1.2, 1.35, 0.9), "finger3": (1.25, 1.4, 0.9),
            "finger4": (1.25, 1.4, 0.9), "finger5": (1.2, 1.3, 0.9)}
"""Flexion of each finger bone (knuckle, middle, tip) at grip 1 (a closed fist), radians."""


@dataclass
class PosedBody:
    vertices_world_m: np.ndarray  # (V, 3)
    keypoints_world_m: np.ndarray  # (J, 3) in HUMAN_KEYPOINTS order
    hand_keypoints_world_m: np.ndarray  # (2, 21, 3): left, right hand in HAND_KEYPOINTS order


class AnnyBody:
    """Anny with limb-direction posing. First construction builds anny's cache (~1-2 min)."""

    def __init__(self, phenotype: dict[str, float] | None = None):
        import anny  # noqa: PLC0415
        import torch  # noqa: PLC0415

        self._torch = torch
        self.model = anny.Anny(skinning_method="lbs")
        self.labels = list(self.model.bone_labels)
        self.idx = {b: i for i, b in enumerate(self.labels)}
        self.phenotype = phenotype or {}
        rest = self._forward(np.tile(np.eye(4), (1, len(self.labels), 1, 1)))
        verts, heads = rest
        self.faces = self.model.get_triangular_faces().cpu().numpy()
        self.rest_heads_a = heads[0]
        self.rest_dirs_a = {}
        self.lengths = {}
        for limb, (b0, b1) in _LIMB_BONES.items():
            for s in ("L", "R"):
                v = heads[0, self.idx[f"{b1}.{s}"]] - heads[0, self.idx[f"{b0}.{s}"]]
                self.lengths[f"{limb}_{s.lower()}"] = float(np.linalg.norm(v))
                self.rest_dirs_a[f"{limb}_{s.lower()}"] = v / np.linalg.norm(v)
        self.floor_z_a = float(verts[0][:, 2].min())
        self.ankle_height_m = float(heads[0, self.idx["foot.L"], 2] - self.floor_z_a)
        self.hip_z_a = float(heads[0, self.idx["upperleg01.L"], 2])
        z = verts[0][:, 2]
        x = np.abs(verts[0][:, 0])
        colors = np.tile(np.array([60, 90, 170, 255], np.uint8), (len(z), 1))    # shirt
        colors[z < -0.02] = [50, 50, 60, 255]                                      # trousers
        colors[z < self.floor_z_a + 0.09] = [30, 30, 30, 255]                      # shoes
        colors[(z > 0.55) | (x > 0.40)] = [224, 172, 140, 255]                     # skin: head, hands
        self.vertex_colors = colors
        self._init_hands(verts[0], heads[0])

    def _init_hands(self, verts_a: np.ndarray, heads_a: np.ndarray) -> None:
        """Rest-pose finger flexion axes, and the fingertip vertices (the 21 hand points' tips)."""
        weights = self.model.vertex_bone_weights.cpu().numpy()
        bones = self.model.vertex_bone_indices.cpu().numpy()
        self.flex_axes_a: dict[str, np.ndarray] = {}
        self.tip_vertex: dict[str, int] = {}
        for S in ("L", "R"):
            h = {b: heads_a[self.idx[f"{b}.{S}"]] for b in ("wrist", "finger2-1", "finger5-1", "finger3-1")}
            across = _unit(h["finger2-1"] - h["finger5-1"])  # knuckles, little finger -> index
            fwd = _unit(h["finger3-1"] - h["wrist"])
            palm = _unit(np.cross(fwd, across)) * (1.0 if S == "L" else -1.0)  # palm-side normal
            for f in FINGERS:
                d = _unit(heads_a[self.idx[f"{f}-3.{S}"]] - heads_a[self.idx[f"{f}-1.{S}"]])
                # flexing turns the finger toward the palm: about d x palm
                self.flex_axes_a[f"{f}.{S}"] = _unit(np.cross(d, palm))
                b3 = self.idx[f"{f}-3.{S}"]
                main = bones[np.arange(len(bones)), weights.argmax(1)] == b3
                cand = np.flatnonzero(main)
                self.tip_vertex[f"{f}.{S}"] = int(cand[np.argmax((verts_a[cand] - heads_a[b3]) @ d)])

    @property
    def height_m(self) -> float:
        return float(self.rest_heads_a[self.idx["head"], 2] + 0.16 - self.floor_z_a)

    def _forward(self, pose_params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = self._torch
        with t.no_grad():
            out = self.model(pose_parameters=t.as_tensor(pose_params, dtype=t.float64),
                             phenotype_kwargs=self.phenotype or None)
        return out["vertices"].cpu().numpy(), out["bone_poses"][..., :3, 3].cpu().numpy()

    def _pose_params(self, pose: BodyPose) -> tuple[np.ndarray, np.ndarray]:
        """(bones, 4, 4) anny pose parameters and the root position in the world."""
        n = len(self.labels)
        params = np.tile(np.eye(4), (n, 1, 1))
        r_root = rot_z(pose.yaw_rad)
        params[0, :3, :3] = r_root
        r_spine_step = rot_x(pose.spine_pitch_rad / len(_SPINE))
        for b in _SPINE:
            params[self.idx[b], :3, :3] = r_spine_step
        r_spine = r_root @ rot_x(pose.spine_pitch_rad)
        to_a = H_FROM_ANNY.T
        for s in ("l", "r"):
            S = s.upper()
            for first, second, parent_world in (("thigh", "shank", r_root), ("uarm", "farm", r_spine)):
                target1 = r_root @ (to_a @ pose.dirs[f"{first}_{s}"])
                r1 = _min_rotation(parent_world @ self.rest_dirs_a[f"{first}_{s}"], target1) @ parent_world
                params[self.idx[f"{_LIMB_BONES[first][0]}.{S}"], :3, :3] = parent_world.T @ r1
                target2 = r_root @ (to_a @ pose.dirs[f"{second}_{s}"])
                r2 = _min_rotation(r1 @ self.rest_dirs_a[f"{second}_{s}"], target2) @ r1
                params[self.idx[f"{_LIMB_BONES[second][0]}.{S}"], :3, :3] = r1.T @ r2
                if first == "thigh":  # keep the foot flat on the floor
                    params[self.idx[f"foot.{S}"], :3, :3] = r2.T @ r_root
            grip = float(np.clip(pose.grip.get(s, 0.0), 0.0, 1.0))
            for f in FINGERS:
                for k, angle in enumerate(FLEX_RAD[f]):
                    params[self.idx[f"{f}-{k + 1}.{S}"], :3, :3] = _axis_angle(self.flex_axes_a[f"{f}.{S}"],
                                                                             grip * angle)
        ankle_z = [self.hip_z_a + self.lengths[f"thigh_{s}"] * pose.dirs[f"thigh_{s}"][2]
                   + self.lengths[f"shank_{s}"] * pose.dirs[f"shank_{s}"][2] for s in ("l", "r")]
        root = np.array([pose.xy_world_m[0], pose.xy_world_m[1], self.ankle_height_m - min(ankle_z)])
        return params, root

    def pose_batch(self, poses: list[BodyPose]) -> list[PosedBody]:
        """Skin a batch of poses; world frame = heading frame at yaw 0 plus root translation."""
        pp = [self._pose_params(p) for p in poses]
        verts, heads = self._forward(np.stack([p for p, _ in pp]))
        out = []
        for k, (_, root) in enumerate(pp):
            v = verts[k] @ H_FROM_ANNY.T + root
            h = heads[k] @ H_FROM_ANNY.T + root
            kp = np.zeros((len(HUMAN_KEYPOINTS), 3))
            for j, name in enumerate(HUMAN_KEYPOINTS):
                if name in _TRUTH_BONES:
                    kp[j] = h[self.idx[_TRUTH_BONES[name]]]
            kp[0] = 0.5 * (kp[1] + kp[2])  # pelvis = mid-hips
            for side in ("left", "right"):  # heel: behind and below the ankle
                a = kp[HUMAN_KEYPOINTS.index(f"{side}_ankle")]
                fwd = rot_z(poses[k].yaw_rad)[:, 0]
                kp[HUMAN_KEYPOINTS.index(f"{side}_heel")] = a - 0.05 * fwd - [0, 0, self.ankle_height_m - 0.02]
            out.append(PosedBody(v, kp, self._hand_points(v, h)))
        return out


    def _hand_points(self, verts: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """(2, 21, 3) left/right hand points in MediaPipe Hands' order: wrist; per finger (thumb
        first) its three joints then its tip. The joints are anny's bone heads (thumb: CMC, MCP, IP;
        fingers: MCP, PIP, DIP); the tip is the fingertip's skin vertex."""
        out = np.zeros((2, 21, 3))
        for i, S in enumerate(("L", "R")):
            out[i, 0] = heads[self.idx[f"wrist.{S}"]]
            for j, f in enumerate(FINGERS):
                for k in range(3):
                    out[i, 1 + 4 * j + k] = heads[self.idx[f"{f}-{k + 1}.{S}"]]
                out[i, 4 + 4 * j] = verts[self.tip_vertex[f"{f}.{S}"]]
        return out


def plain_room_rgb(width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 background of the benchmark and test clips: a lighter wall over a darker floor
    with a little texture (deterministic)."""
    rng = np.random.default_rng(0)
    img = np.empty((height, width, 3), np.float32)
    img[: height // 2] = (172, 168, 160)
    img[height // 2:] = (118, 110, 100)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


class OffscreenHumanRenderer:
    """Renders posed anny meshes over a background through a :class:`PinholeCamera` (pyrender)."""

    def __init__(self, body: AnnyBody, camera: PinholeCamera):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        import pyrender  # noqa: PLC0415

        self._pr = pyrender
        self.body = body
        self.camera = camera
        self.scene = pyrender.Scene(bg_color=[0, 0, 0, 0], ambient_light=[0.35, 0.35, 0.35])
        cam = pyrender.IntrinsicsCamera(camera.fx, camera.fy, camera.cx, camera.cy, znear=0.05, zfar=50.0)
        pose = np.eye(4)
        pose[:3, :3] = camera.rot_world_from_optical @ np.diag([1.0, -1.0, -1.0])
        pose[:3, 3] = camera.pos_world_m
        self.scene.add(cam, pose=pose)
        light = np.eye(4)
        light[:3, :3] = rot_x(-0.6) @ rot_z(0.4)
        self.scene.add(pyrender.DirectionalLight(color=[1.0, 1.0, 1.0], intensity=3.0), pose=light)
        self.scene.add(pyrender.DirectionalLight(color=[1.0, 1.0, 1.0], intensity=2.0), pose=pose)
        self.renderer = pyrender.OffscreenRenderer(camera.width, camera.height)
        self._node = None

    def render(self, posed: PosedBody, background_rgb: np.ndarray) -> np.ndarray:
        import trimesh  # noqa: PLC0415

        tm = trimesh.Trimesh(posed.vertices_world_m, self.body.faces, vertex_colors=self.body.vertex_colors,
                             process=False)
        if self._node is not None:
            self.scene.remove_node(self._node)
        self._node = self.scene.add(self._pr.Mesh.from_trimesh(tm, smooth=True))
        rgba, _ = self.renderer.render(self.scene, flags=self._pr.RenderFlags.RGBA)
        alpha = rgba[..., 3:4].astype(np.float32) / 255.0
        out = rgba[..., :3].astype(np.float32) * alpha + background_rgb.astype(np.float32) * (1 - alpha)
        return out.astype(np.uint8)

    def close(self) -> None:
        self.renderer.delete()
