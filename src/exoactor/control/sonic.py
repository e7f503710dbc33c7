"""SONIC (NVlabs GR00T-WholeBodyControl) as a motion sink: CSV motion folders and the ZMQ stream.

SONIC tracks a reference motion at 50 Hz. It takes it either as a folder of CSV files per clip
(:func:`export_csv_motion`) or streamed over ZMQ (:class:`SonicStreamer`, messages built by
:func:`encode_frame`). Both carry joints in **IsaacLab order** (SONIC's), quaternions **wxyz**.
Inside the project the only joint order is Unitree's motor order (``G1_JOINT_NAMES``): this
module converts at the edge, and every array argument here is in Unitree order unless its name
says ``isaaclab``.

Wire format of one ZMQ message (a single frame, no multipart), as SONIC's ``pack_pose_message``
builds it and its C++ ``ZMQEndpointInterface`` reads it:
``topic bytes`` + ``1280-byte JSON header, NUL-padded`` + ``field arrays, little-endian, C order,
concatenated in header order``. Header: ``{"v": version, "endian": "le", "count": N, "fields":
[{"name", "dtype", "shape"}, ...]}``. Fields sent here:

- v1: ``joint_pos`` f32 [N,29], ``joint_vel`` f32 [N,29] (IsaacLab order), ``body_quat`` f32 [N,4]
  (root orientation wxyz), ``frame_index`` **i64** [N].
- v3: the v1 fields plus ``smpl_joints`` f32 [N,24,3] (root-relative, z-up) and ``smpl_pose`` f32
  [N,21,3] (axis-angle). SONIC only needs the wrists (IsaacLab 23..28) of joint_pos to be real in
  v3; the full pose is sent anyway.

Assumptions (checked against SONIC's docs and sources, noted where they differ from our notes):
``frame_index`` is an integer field (SONIC documents i32/i64 and its sender uses i64), not f32;
SONIC's own sender always writes ``"count": 1``, this module writes ``count = N`` (1 per streamed
message, so identical in practice) and the decoder does not check it.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from exoactor.g1.joints import G1_JOINT_NAMES, ISAACLAB_FROM_UNITREE, NUM_BODY_JOINTS
from exoactor.geometry import axis_angle_to_quat_wxyz
from exoactor.progress import (NEVER_CANCELED, CancelToken, ProgressCallback, check_cancel, no_progress,
                               sleep_cancellable)
from exoactor.retarget.trajectory import G1JointTrajectory


class SonicError(ValueError):
    """A SONIC message, motion or stream could not be built, parsed or sent (says what was expected)."""


# --------------------------------------------------------------------------------------------
# Joint order
# --------------------------------------------------------------------------------------------

ISAACLAB_JOINT_NAMES: tuple[str, ...] = tuple(G1_JOINT_NAMES[i] for i in ISAACLAB_FROM_UNITREE)
"""The 29 G1 joints in IsaacLab order (SONIC's), as URDF names (``left_hip_pitch_joint``...)."""

UNITREE_TO_ISAACLAB = np.array([G1_JOINT_NAMES.index(n) for n in ISAACLAB_JOINT_NAMES], dtype=np.intp)
"""``q_isaaclab = q_unitree[..., UNITREE_TO_ISAACLAB]`` (built from the names)."""

ISAACLAB_TO_UNITREE = np.array([ISAACLAB_JOINT_NAMES.index(n) for n in G1_JOINT_NAMES], dtype=np.intp)
"""``q_unitree = q_isaaclab[..., ISAACLAB_TO_UNITREE]`` (built from the names)."""

# Checked at import: a table that is not a permutation of the 29 joints must never reach a robot.
if sorted(ISAACLAB_JOINT_NAMES) != sorted(G1_JOINT_NAMES):
    raise ImportError("IsaacLab joint names are not a permutation of G1_JOINT_NAMES")

ISAACLAB_WRIST_INDICES = np.arange(23, 29)
"""The wrist joints in IsaacLab order: the only joint_pos entries SONIC's v3 needs to be real."""


def _joint_array(q: Any, what: str) -> np.ndarray:
    a = np.asarray(q, dtype=np.float64)
    if a.ndim < 1 or a.shape[-1] != NUM_BODY_JOINTS:
        raise SonicError(f"{what}: expected (..., {NUM_BODY_JOINTS}) joint values, got shape {a.shape}")
    return a


def to_isaaclab(q_unitree: Any) -> np.ndarray:
    """(..., 29) in Unitree motor order -> (..., 29) in IsaacLab order."""
    return _joint_array(q_unitree, "to_isaaclab")[..., UNITREE_TO_ISAACLAB]


def from_isaaclab(q_isaaclab: Any) -> np.ndarray:
    """(..., 29) in IsaacLab order -> (..., 29) in Unitree motor order."""
    return _joint_array(q_isaaclab, "from_isaaclab")[..., ISAACLAB_TO_UNITREE]


# --------------------------------------------------------------------------------------------
# Resampling (shared by the CSV export and the stream)
# --------------------------------------------------------------------------------------------

SONIC_FPS = 50.0
"""SONIC's control and reference rate."""


def _sample_times(num_frames: int, fps_src: float, fps_out: float) -> np.ndarray:
    """Output times 0, 1/fps_out, ... covering the source duration (both ends included)."""
    if not (math.isfinite(fps_out) and fps_out > 0):
        raise SonicError(f"output rate: expected a positive frame rate, got {fps_out}")
    if not (math.isfinite(fps_src) and fps_src > 0):
        raise SonicError(f"trajectory fps: expected a positive frame rate, got {fps_src}")
    duration = (num_frames - 1) / fps_src
    n_out = int(math.floor(duration * fps_out + 1e-9)) + 1
    return np.arange(n_out) / fps_out


def _interp_indices(times: np.ndarray, fps_src: float, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.clip(times * fps_src, 0.0, num_frames - 1.0)
    # (k / r) * r is not always k in floating point: snap near-integers so that resampling at the
    # trajectory's own rate returns its frames bit for bit (a limited trajectory stays limited).
    nearest = np.round(x)
    x = np.where(np.abs(x - nearest) < 1e-9, nearest, x)
    i = np.minimum(np.floor(x).astype(np.intp), max(num_frames - 2, 0))
    j = np.minimum(i + 1, num_frames - 1)
    return i, j, x - i


def _lerp(a: np.ndarray, i: np.ndarray, j: np.ndarray, w: np.ndarray) -> np.ndarray:
    w = w.reshape((-1,) + (1,) * (a.ndim - 1))
    return (1.0 - w) * a[i] + w * a[j]


def _continuous_quats(q: np.ndarray) -> np.ndarray:
    """Unit quaternions with signs flipped so consecutive ones lie in the same hemisphere."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.all(np.isfinite(q)) or np.any(n < 1e-9):
        raise SonicError("root quaternions: expected finite non-zero (w, x, y, z), got NaN/Inf or zero")
    q = q / n
    flips = np.where(np.sum(q[1:] * q[:-1], axis=-1) < 0, -1.0, 1.0)
    return q * np.concatenate([[1.0], np.cumprod(flips)])[:, None]


def _slerp(q: np.ndarray, i: np.ndarray, j: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-row slerp between q[i] and q[j] (q already hemisphere-continuous, unit)."""
    a, b = q[i], q[j]
    dot = np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)
    theta = np.arccos(dot)
    small = theta < 1e-6
    s = np.sin(np.where(small, 1.0, theta))
    wa = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / s)
    wb = np.where(small, w, np.sin(w * theta) / s)
    out = wa[:, None] * a + wb[:, None] * b
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def _quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    q = q * np.where(q[..., :1] < 0, -1.0, 1.0)  # w >= 0: angle in [0, pi]
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    return v * np.where(s > 1e-12, angle / np.where(s > 1e-12, s, 1.0), 2.0)


def _slerp_axis_angle(aa: np.ndarray, i: np.ndarray, j: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(T, K, 3) axis-angle rotations interpolated along the rotation (not component-wise)."""
    q = axis_angle_to_quat_wxyz(aa)  # (T, K, 4)
    a, b = q[i], q[j]  # (Tout, K, 4)
    b = np.where(np.sum(a * b, axis=-1, keepdims=True) < 0, -b, b)
    theta = np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0))  # (Tout, K)
    small = theta < 1e-6
    s = np.sin(np.where(small, 1.0, theta))
    ww = np.broadcast_to(w[:, None], theta.shape)
    wa = np.where(small, 1.0 - ww, np.sin((1.0 - ww) * theta) / s)
    wb = np.where(small, ww, np.sin(ww * theta) / s)
    out = wa[..., None] * a + wb[..., None] * b
    return _quat_to_axis_angle(out / np.linalg.norm(out, axis=-1, keepdims=True))  # (Tout, K, 3)


def resample_trajectory(traj: G1JointTrajectory, fps_out: float = SONIC_FPS) -> dict[str, np.ndarray]:
    """The trajectory at ``fps_out``: times (n,), joint_pos/joint_vel (n, 29) Unitree order,
    body_pos (n, 3), body_quat_wxyz (n, 4).

    Frame k is the trajectory at time k / fps_out, for every time inside [0, duration]
    (n = floor(duration * fps_out) + 1). Joint positions, velocities and the root position are
    interpolated linearly (exactly :meth:`G1JointTrajectory.sample`); the root orientation by
    slerp along the shortest arc, signs made continuous.
    """
    n = traj.num_frames
    times = _sample_times(n, traj.fps, fps_out)
    i, j, w = _interp_indices(times, traj.fps, n)
    root_pos = np.asarray(traj.root_pos_world_m, dtype=np.float64)
    if root_pos.shape != (n, 3) or not np.all(np.isfinite(root_pos)):
        raise SonicError(f"root positions: expected finite ({n}, 3), got {root_pos.shape}")
    quats = np.asarray(traj.root_quat_wxyz, dtype=np.float64)
    if quats.shape != (n, 4):
        raise SonicError(f"root quaternions: expected ({n}, 4) wxyz, got {quats.shape}")
    return {
        "times": times,
        "joint_pos": _lerp(np.asarray(traj.positions_rad, dtype=np.float64), i, j, w),
        "joint_vel": _lerp(np.asarray(traj.velocities_rad_s, dtype=np.float64), i, j, w),
        "body_pos": _lerp(root_pos, i, j, w),
        "body_quat_wxyz": _slerp(_continuous_quats(quats), i, j, w),
    }


# --------------------------------------------------------------------------------------------
# CSV motion folder
# --------------------------------------------------------------------------------------------

def _write_csv(path: Path, header: list[str], rows: np.ndarray) -> None:
    rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(",".join(header) + "\n")
        np.savetxt(f, rows, fmt="%.9f", delimiter=",")


def export_csv_motion(traj: G1JointTrajectory, folder: Path | str, fps_out: float = SONIC_FPS,
                      name: str | None = None) -> Path:
    """Write ``traj`` as one SONIC reference-motion clip folder; returns the folder.

    SONIC's ``MotionDataReader`` loads every sub-folder of its motion directory as one clip, so
    ``folder`` is the clip folder (put it inside the directory given to SONIC). Files, as that
    reader parses them (one header line it skips, then one comma-separated row per frame, frame
    counts equal across files):

    - ``joint_pos.csv`` / ``joint_vel.csv``: (T, 29) rad, rad/s in **IsaacLab order** (header = the
      IsaacLab joint names);
    - ``body_pos.csv``: (T, 3) root (pelvis) position in the world, metres, z up
      (header ``body_0_x,body_0_y,body_0_z``);
    - ``body_quat.csv``: (T, 4) root orientation **w, x, y, z** (header ``body_0_w,...``);
    - ``metadata.txt``: SONIC's layout ("Body part indexes:" then ``[0]`` = the root body only,
      "Total timesteps: T"), plus informational lines SONIC ignores.

    Resampled to ``fps_out`` (SONIC assumes 50 Hz: it differentiates at 50 Hz) as
    :func:`resample_trajectory` does. Assumptions: only the root body is written (SONIC computes
    the other bodies by forward kinematics); the optional ``body_lin_vel.csv`` /
    ``body_ang_vel.csv`` are not written (SONIC requires them to match body_pos's body count if
    present and otherwise does without). Existing files of the same names are overwritten.
    """
    folder = Path(folder)
    data = resample_trajectory(traj, fps_out)
    for key in ("joint_pos", "joint_vel", "body_pos", "body_quat_wxyz"):
        if not np.all(np.isfinite(data[key])):
            raise SonicError(f"{key}: expected finite values, got NaN/Inf")
    folder.mkdir(parents=True, exist_ok=True)
    t_out = len(data["times"])
    _write_csv(folder / "joint_pos.csv", list(ISAACLAB_JOINT_NAMES), to_isaaclab(data["joint_pos"]))
    _write_csv(folder / "joint_vel.csv", list(ISAACLAB_JOINT_NAMES), to_isaaclab(data["joint_vel"]))
    _write_csv(folder / "body_pos.csv", ["body_0_x", "body_0_y", "body_0_z"], data["body_pos"])
    _write_csv(folder / "body_quat.csv", ["body_0_w", "body_0_x", "body_0_y", "body_0_z"], data["body_quat_wxyz"])
    clip = name or folder.name
    (folder / "metadata.txt").write_text(
        f"Metadata for: {clip}\n{'=' * 30}\n\nBody part indexes:\n[0]\n\nTotal timesteps: {t_out}\n\n"
        f"Frame rate (Hz): {fps_out:g}\nJoint order: IsaacLab\nQuaternion order: wxyz\n"
        f"Source: exoactor G1JointTrajectory ({traj.num_frames} frames at {traj.fps:g} fps)\n",
        encoding="ascii")
    return folder


# --------------------------------------------------------------------------------------------
# ZMQ message codec
# --------------------------------------------------------------------------------------------

HEADER_SIZE = 1280
"""Bytes of the NUL-padded JSON header after the topic."""
DEFAULT_TOPIC = b"pose"
DEFAULT_ENDPOINT = "tcp://*:5556"
SUPPORTED_VERSIONS = (1, 3)
SMPL_JOINTS_SHAPE = (24, 3)
SMPL_POSE_SHAPE = (21, 3)

_WIRE_DTYPES = {"f32": np.dtype("<f4"), "f64": np.dtype("<f8"), "i32": np.dtype("<i4"), "i64": np.dtype("<i8"),
                "u8": np.dtype("u1"), "bool": np.dtype("?")}
_FLOAT_DTYPES = ("f32", "f64")
_INT_DTYPES = ("i32", "i64")


def _frames(a: Any, tail: tuple[int, ...], what: str) -> np.ndarray:
    """``a`` as (N, *tail) float64 (a single frame of shape ``tail`` is promoted to N = 1)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape == tail:
        arr = arr[None]
    if arr.ndim != len(tail) + 1 or arr.shape[1:] != tail or arr.shape[0] < 1:
        raise SonicError(f"{what}: expected shape (N, {', '.join(map(str, tail))}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SonicError(f"{what}: expected finite values, got NaN/Inf")
    return arr


def encode_frame(version: int, joint_pos: Any, joint_vel: Any, body_quat_wxyz: Any, frame_index: Any,
                 smpl_joints: Any = None, smpl_pose: Any = None, topic: bytes = DEFAULT_TOPIC) -> bytes:
    """One SONIC ZMQ message (topic + 1280-byte header + little-endian arrays), N frames.

    joint_pos, joint_vel: (29,) or (N, 29), rad and rad/s in **Unitree motor order** (converted
    to IsaacLab order on the wire); body_quat_wxyz: (4,) or (N, 4) root orientation (normalised
    here); frame_index: an int or (N,) ints (sent as i64); v3 also needs smpl_joints (N, 24, 3) and
    smpl_pose (N, 21, 3) (a single (24, 3) / (21, 3) frame is accepted for N = 1). Raises
    :class:`SonicError` on an unsupported version, a missing field, a wrong shape or NaN/Inf.
    """
    if version not in SUPPORTED_VERSIONS:
        raise SonicError(f"protocol version: expected one of {SUPPORTED_VERSIONS}, got {version!r}")
    if not isinstance(topic, (bytes, bytearray)) or not topic:
        raise SonicError(f"topic: expected non-empty bytes, got {topic!r}")
    jp = _frames(joint_pos, (NUM_BODY_JOINTS,), "joint_pos")
    n = len(jp)
    jv = _frames(joint_vel, (NUM_BODY_JOINTS,), "joint_vel")
    bq = _frames(body_quat_wxyz, (4,), "body_quat")
    norms = np.linalg.norm(bq, axis=-1, keepdims=True)
    if np.any(norms < 1e-9):
        raise SonicError("body_quat: expected non-zero quaternions (w, x, y, z), got a zero one")
    bq = bq / norms
    fi = np.atleast_1d(np.asarray(frame_index))
    if fi.ndim != 1 or not np.issubdtype(fi.dtype, np.integer):
        raise SonicError(f"frame_index: expected an integer or (N,) integers, got {np.asarray(frame_index)!r}")
    fi = fi.astype(np.int64)
    for what, a in (("joint_vel", jv), ("body_quat", bq), ("frame_index", fi)):
        if len(a) != n:
            raise SonicError(f"{what}: expected {n} frames (as joint_pos), got {len(a)}")
    fields: list[tuple[str, str, np.ndarray]] = [
        ("joint_pos", "f32", to_isaaclab(jp)), ("joint_vel", "f32", to_isaaclab(jv)),
        ("body_quat", "f32", bq), ("frame_index", "i64", fi)]
    if version == 3 and (smpl_joints is None or smpl_pose is None):
        raise SonicError("protocol v3: expected smpl_joints (N, 24, 3) and smpl_pose (N, 21, 3), "
                         f"got smpl_joints={'missing' if smpl_joints is None else 'given'}, "
                         f"smpl_pose={'missing' if smpl_pose is None else 'given'}")
    for name, value, tail in (("smpl_joints", smpl_joints, SMPL_JOINTS_SHAPE),
                              ("smpl_pose", smpl_pose, SMPL_POSE_SHAPE)):
        if value is not None:  # optional in v1, required in v3
            arr = _frames(value, tail, name)
            if len(arr) != n:
                raise SonicError(f"{name}: expected {n} frames (as joint_pos), got {len(arr)}")
            fields.append((name, "f32", arr))
    header = {"v": int(version), "endian": "le", "count": n,
              "fields": [{"name": name, "dtype": dt, "shape": list(a.shape)} for name, dt, a in fields]}
    header_json = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if len(header_json) > HEADER_SIZE:
        raise SonicError(f"header: expected at most {HEADER_SIZE} bytes of JSON, got {len(header_json)}")
    payload = b"".join(np.ascontiguousarray(a, dtype=_WIRE_DTYPES[dt]).tobytes() for _, dt, a in fields)
    return bytes(topic) + header_json.ljust(HEADER_SIZE, b"\x00") + payload


def _parse_header(raw: bytes) -> dict:
    nul = raw.find(b"\x00")
    text, pad = (raw, b"") if nul < 0 else (raw[:nul], raw[nul:])
    if pad.strip(b"\x00"):
        raise SonicError("header: expected JSON followed only by NUL padding, got bytes after the first NUL")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SonicError(f"header: expected UTF-8 JSON, got {text[:60]!r}... ({e})") from None
    if not isinstance(header, dict):
        raise SonicError(f"header: expected a JSON object, got {type(header).__name__}")
    version = header.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SonicError(f"header 'v': expected an integer protocol version, got {version!r}")
    if header.get("endian", "le") != "le":
        raise SonicError(f"header 'endian': expected 'le', got {header.get('endian')!r}")
    fields = header.get("fields")
    if not isinstance(fields, list) or not fields:
        raise SonicError(f"header 'fields': expected a non-empty list, got {fields!r}")
    for f in fields:
        if not (isinstance(f, dict) and isinstance(f.get("name"), str) and f.get("dtype") in _WIRE_DTYPES
                and isinstance(f.get("shape"), list)
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in f["shape"])):
            raise SonicError("header field: expected {name: str, dtype: one of "
                             f"{sorted(_WIRE_DTYPES)}, shape: [non-negative ints]}}, got {f!r}")
    names = [f["name"] for f in fields]
    if len(set(names)) != len(names):
        raise SonicError(f"header 'fields': expected unique names, got {names}")
    return header


def decode_frame(message: bytes, topic: bytes = DEFAULT_TOPIC) -> dict[str, Any]:
    """Parse and validate one SONIC message (v1 or v3) made by :func:`encode_frame` or SONIC's tools.

    Returns ``version``, ``topic``, ``count``, ``header`` (the JSON), ``fields`` (every field as
    sent: name -> array with its wire shape, IsaacLab joint order), and the motion in project
    conventions: ``joint_pos`` / ``joint_vel`` (N, 29) float64 **Unitree order**, ``body_quat``
    (N, 4) wxyz, ``frame_index`` (N,) int64, and ``smpl_joints`` (N, 24, 3) / ``smpl_pose``
    (N, 21, 3) when present. ``body_quat_w`` is accepted as an alias of ``body_quat`` (SONIC's
    reader accepts both). Raises :class:`SonicError` saying what was expected and what came.
    """
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise SonicError(f"message: expected bytes, got {type(message).__name__}")
    message = bytes(message)
    if not message.startswith(topic):
        raise SonicError(f"topic: expected the message to start with {topic!r}, got {message[:len(topic)]!r}")
    off = len(topic)
    if len(message) < off + HEADER_SIZE:
        raise SonicError(f"header: expected at least {off + HEADER_SIZE} bytes (topic + {HEADER_SIZE}-byte header), "
                         f"got {len(message)}")
    header = _parse_header(message[off:off + HEADER_SIZE])
    version = header["v"]
    if version not in SUPPORTED_VERSIONS:
        raise SonicError(f"protocol version: expected one of {SUPPORTED_VERSIONS}, got {version}")
    off += HEADER_SIZE
    expected = sum(_WIRE_DTYPES[f["dtype"]].itemsize * math.prod(f["shape"]) for f in header["fields"])
    if len(message) - off != expected:
        raise SonicError(f"payload: expected {expected} bytes for fields "
                         f"{[(f['name'], f['dtype'], f['shape']) for f in header['fields']]}, got {len(message) - off}")
    fields: dict[str, np.ndarray] = {}
    for f in header["fields"]:
        dt = _WIRE_DTYPES[f["dtype"]]
        size = dt.itemsize * math.prod(f["shape"])
        fields[f["name"]] = np.frombuffer(message, dtype=dt, count=math.prod(f["shape"]),
                                          offset=off).reshape(f["shape"]).copy()
        off += size
    dtypes = {f["name"]: f["dtype"] for f in header["fields"]}
    fields_quat_name = "body_quat_w" if "body_quat" not in fields and "body_quat_w" in fields else "body_quat"
    required = ["joint_pos", "joint_vel", fields_quat_name, "frame_index"]
    if version == 3:
        required += ["smpl_joints", "smpl_pose"]
    missing = [r for r in required if r not in fields]
    if missing:
        raise SonicError(f"protocol v{version}: expected fields {required}, missing {missing}")
    jp = fields["joint_pos"]
    n = jp.shape[0] if jp.ndim == 2 else -1
    shapes = {"joint_pos": (n, NUM_BODY_JOINTS), "joint_vel": (n, NUM_BODY_JOINTS), fields_quat_name: (n, 4),
              "frame_index": (n,), "smpl_joints": (n,) + SMPL_JOINTS_SHAPE, "smpl_pose": (n,) + SMPL_POSE_SHAPE}
    for name, shape in shapes.items():
        if name in fields and (n < 1 or fields[name].shape != shape):
            raise SonicError(f"{name}: expected shape {list(shape) if n >= 1 else ['N>=1', *shape[1:]]}, "
                             f"got {list(fields[name].shape)}")
        if name in fields and name != "frame_index" and dtypes[name] not in _FLOAT_DTYPES:
            raise SonicError(f"{name}: expected dtype f32 or f64, got {dtypes[name]}")
    if dtypes["frame_index"] not in _INT_DTYPES:
        raise SonicError(f"frame_index: expected dtype i32 or i64, got {dtypes['frame_index']}")
    out: dict[str, Any] = {
        "version": version, "topic": bytes(topic), "count": header.get("count"), "header": header, "fields": fields,
        "joint_pos": from_isaaclab(fields["joint_pos"].astype(np.float64)),
        "joint_vel": from_isaaclab(fields["joint_vel"].astype(np.float64)),
        "body_quat": fields[fields_quat_name].astype(np.float64),
        "frame_index": fields["frame_index"].astype(np.int64),
    }
    for name in ("smpl_joints", "smpl_pose"):
        if name in fields:
            out[name] = fields[name].astype(np.float64)
    return out


# --------------------------------------------------------------------------------------------
# Streamer
# --------------------------------------------------------------------------------------------

class SonicStreamer:
    """Publishes a trajectory to SONIC over ZMQ, one frame per message at an absolute-time rate.

    Binds (SONIC's deploy program CONNECTs to ``--zmq-host``/``--zmq-port`` and subscribes to
    ``--zmq-topic``). The socket is an XPUB: the PUB socket type that also reports subscriptions,
    so :meth:`wait_for_subscriber` can tell when SONIC listens; ZMQ SUB peers see a plain PUB.
    Like any PUB, frames sent while nobody is subscribed are dropped.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, topic: bytes = DEFAULT_TOPIC, linger_s: float = 0.5):
        try:
            import zmq  # only the streamer needs pyzmq; the codec and CSV export do not
        except ImportError as e:
            raise SonicError(f"SONIC streaming: expected pyzmq to be installed (pip install pyzmq), got {e}") from None
        if not isinstance(topic, (bytes, bytearray)) or not topic:
            raise SonicError(f"topic: expected non-empty bytes, got {topic!r}")
        self._zmq = zmq
        self.topic = bytes(topic)
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.LINGER, int(max(0.0, linger_s) * 1000))
        self._subscriptions: set[bytes] = set()
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as e:
            self._sock.close(linger=0)
            self._ctx.term()
            if e.errno == zmq.EADDRINUSE:
                raise SonicError(f"SONIC stream endpoint {endpoint}: expected a free address to bind, got 'address "
                                 "already in use' (another streamer or SONIC publisher runs on that port; pick "
                                 "another port or stop it)") from None
            raise SonicError(f"SONIC stream endpoint {endpoint}: expected a bindable ZMQ endpoint such as "
                             f"'tcp://*:5556', got error: {e}") from None
        self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        """The bound endpoint (with the actual port when ``*`` was asked for)."""
        self._closed = False

    # -- subscriptions ------------------------------------------------------------------------
    def _drain_subscriptions(self, timeout_ms: int = 0) -> None:
        zmq = self._zmq
        while self._sock.poll(timeout_ms, zmq.POLLIN):
            msg = self._sock.recv(zmq.NOBLOCK)
            timeout_ms = 0
            if msg[:1] == b"\x01":
                self._subscriptions.add(msg[1:])
            elif msg[:1] == b"\x00":
                self._subscriptions.discard(msg[1:])

    @property
    def has_subscriber(self) -> bool:
        """A subscriber whose subscription covers our topic is connected (as far as seen so far)."""
        self._check_open()
        self._drain_subscriptions()
        return any(self.topic.startswith(s) for s in self._subscriptions)

    def wait_for_subscriber(self, timeout_s: float, cancel: CancelToken = NEVER_CANCELED) -> bool:
        """Wait up to ``timeout_s`` for a subscriber to our topic; True if one is there."""
        self._check_open()
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            check_cancel(cancel, "waiting for a SONIC subscriber")
            self._drain_subscriptions(0)
            if any(self.topic.startswith(s) for s in self._subscriptions):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._drain_subscriptions(int(min(left, 0.05) * 1000) + 1)

    # -- streaming ----------------------------------------------------------------------------
    def stream(self, traj: G1JointTrajectory, progress: ProgressCallback = no_progress,
               cancel: CancelToken = NEVER_CANCELED, rate_hz: float = SONIC_FPS, version: int = 1,
               smpl_joints: Any = None, smpl_pose: Any = None, first_frame_index: int = 0) -> int:
        """Send ``traj`` resampled to ``rate_hz``, frame k at ``t0 + k / rate_hz``; returns frames sent.

        Absolute-time schedule: a late frame is sent at once and the next one keeps its slot (no
        drift, no skipped frame_index). ``frame_index`` counts from ``first_frame_index``. v3 needs
        smpl_joints (T, 24, 3) and smpl_pose (T, 21, 3) aligned with the trajectory's T frames
        (interpolated: joints linearly, poses along the rotation). Cancellation is checked while
        waiting (at least every 50 ms) and raises :class:`exoactor.progress.Canceled`.
        """
        self._check_open()
        if version not in SUPPORTED_VERSIONS:
            raise SonicError(f"protocol version: expected one of {SUPPORTED_VERSIONS}, got {version!r}")
        data = resample_trajectory(traj, rate_hz)
        n = len(data["times"])
        smpl_j = smpl_p = None
        if version == 3 or smpl_joints is not None or smpl_pose is not None:
            if smpl_joints is None or smpl_pose is None:
                raise SonicError("protocol v3: expected smpl_joints (T, 24, 3) and smpl_pose (T, 21, 3) for the "
                                 f"trajectory's T={traj.num_frames} frames, got "
                                 f"smpl_joints={'missing' if smpl_joints is None else 'given'}, "
                                 f"smpl_pose={'missing' if smpl_pose is None else 'given'}")
            sj = _frames(smpl_joints, SMPL_JOINTS_SHAPE, "smpl_joints")
            sp = _frames(smpl_pose, SMPL_POSE_SHAPE, "smpl_pose")
            for name, a in (("smpl_joints", sj), ("smpl_pose", sp)):
                if len(a) != traj.num_frames:
                    raise SonicError(f"{name}: expected {traj.num_frames} frames (the trajectory's), got {len(a)}")
            i, j, w = _interp_indices(data["times"], traj.fps, traj.num_frames)
            smpl_j, smpl_p = _lerp(sj, i, j, w), _slerp_axis_angle(sp, i, j, w)
        # Encode everything first: a malformed frame fails before the robot sees the first one.
        messages = [encode_frame(version, data["joint_pos"][k], data["joint_vel"][k], data["body_quat_wxyz"][k],
                                 first_frame_index + k,
                                 None if smpl_j is None else smpl_j[k], None if smpl_p is None else smpl_p[k],
                                 topic=self.topic) for k in range(n)]
        report_every = max(1, int(round(rate_hz / 5)))
        progress(0, n, f"streaming {n} frames to SONIC at {rate_hz:g} Hz")
        t0 = time.monotonic()
        for k, msg in enumerate(messages):
            left = t0 + k / rate_hz - time.monotonic()
            if left > 0:
                sleep_cancellable(left, cancel, "SONIC stream", step_s=0.05)
            else:
                check_cancel(cancel, "SONIC stream")
            self._sock.send(msg, copy=False)
            if (k + 1) % report_every == 0 or k + 1 == n:
                progress(k + 1, n, f"SONIC frame {k + 1}/{n}")
            self._drain_subscriptions()
        return n

    # -- lifetime -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise SonicError("SONIC streamer: expected an open streamer, got a closed one")

    def close(self) -> None:
        """Close the socket (pending frames get up to ``linger_s`` to leave) and the context."""
        if not self._closed:
            self._closed = True
            self._sock.close()
            self._ctx.term()

    def __enter__(self) -> "SonicStreamer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; close() is the API
        try:
            if not getattr(self, "_closed", True):
                self._sock.close(linger=0)
                self._ctx.term()
        except Exception:
            pass
