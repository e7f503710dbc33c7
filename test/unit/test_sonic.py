"""SONIC sink: IsaacLab joint order, the CSV motion folder, the ZMQ message codec, the live stream.

The references here are written independently of exoactor.control.sonic: the IsaacLab order is
typed from ../shared/notes/models-and-apis.md, the wire format is parsed with plain numpy/json,
and the CSVs are read back with numpy.
"""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from exoactor.control.sonic import (HEADER_SIZE, ISAACLAB_JOINT_NAMES, UNITREE_TO_ISAACLAB, SonicError,
                                    SonicStreamer, decode_frame, encode_frame, export_csv_motion, from_isaaclab,
                                    to_isaaclab)
from exoactor.g1.joints import G1_JOINT_NAMES
from exoactor.geometry import yaw_to_quat_wxyz
from exoactor.progress import Canceled
from exoactor.retarget.trajectory import G1JointTrajectory

# The notes' IsaacLab order, verbatim ("L"/"R" = left/right).
NOTES_ISAACLAB = (
    "L hip_pitch, R hip_pitch, waist_yaw, L hip_roll, R hip_roll, waist_roll, L hip_yaw, R hip_yaw, waist_pitch, "
    "L knee, R knee, L shoulder_pitch, R shoulder_pitch, L ankle_pitch, R ankle_pitch, L shoulder_roll, "
    "R shoulder_roll, L ankle_roll, R ankle_roll, L shoulder_yaw, R shoulder_yaw, L elbow, R elbow, L wrist_roll, "
    "R wrist_roll, L wrist_pitch, R wrist_pitch, L wrist_yaw, R wrist_yaw")


def notes_names() -> list[str]:
    out = []
    for item in NOTES_ISAACLAB.split(", "):
        side, _, joint = item.partition(" ")
        out.append({"L": f"left_{joint}_joint", "R": f"right_{joint}_joint"}[side] if joint else f"{item}_joint")
    return out


def make_traj(num_frames: int = 31, fps: float = 30.0, yaw_rate: float = 0.5) -> G1JointTrajectory:
    """Every joint a distinct smooth signal (so any order mix-up shows), root turning at yaw_rate."""
    t = np.arange(num_frames) / fps
    j = np.arange(29)
    q = 0.1 * (j + 1)[None, :] * 0.05 + 0.3 * np.sin(1.3 * t[:, None] + 0.2 * j[None, :])
    dq = 0.3 * 1.3 * np.cos(1.3 * t[:, None] + 0.2 * j[None, :])
    root = np.stack([0.2 * t, -0.1 * t, 0.75 + 0.01 * np.sin(t)], axis=1)
    return G1JointTrajectory(fps, q, dq, root, yaw_to_quat_wxyz(yaw_rate * t))


# ---------------------------------------------------------------------------- joint order
def test_isaaclab_order_matches_the_notes_by_name():
    assert list(ISAACLAB_JOINT_NAMES) == notes_names()
    assert sorted(ISAACLAB_JOINT_NAMES) == sorted(G1_JOINT_NAMES)
    q = np.arange(29.0)  # value = Unitree index
    qi = to_isaaclab(q)
    for k, name in enumerate(notes_names()):
        assert qi[k] == G1_JOINT_NAMES.index(name), name
    assert np.array_equal(from_isaaclab(qi), q)
    assert np.array_equal(from_isaaclab(to_isaaclab(np.arange(58.0).reshape(2, 29))), np.arange(58.0).reshape(2, 29))
    assert list(UNITREE_TO_ISAACLAB[:3]) == [0, 6, 12]  # L hip_pitch, R hip_pitch, waist_yaw
    with pytest.raises(SonicError, match="expected"):
        to_isaaclab(np.zeros(28))


# ---------------------------------------------------------------------------- CSV export
def read_csv(path):
    header = path.read_text().splitlines()[0].split(",")
    return header, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def test_csv_export_resamples_30fps_to_50hz_in_isaaclab_order(tmp_path):
    traj = make_traj(num_frames=31, fps=30.0)  # exactly 1.0 s -> 51 frames at 50 Hz
    folder = export_csv_motion(traj, tmp_path / "clip_a")
    assert folder == tmp_path / "clip_a"
    assert sorted(p.name for p in folder.iterdir()) == [
        "body_pos.csv", "body_quat.csv", "joint_pos.csv", "joint_vel.csv", "metadata.txt"]
    hdr, jp = read_csv(folder / "joint_pos.csv")
    _, jv = read_csv(folder / "joint_vel.csv")
    bh, bp = read_csv(folder / "body_pos.csv")
    qh, bq = read_csv(folder / "body_quat.csv")
    assert jp.shape == jv.shape == (51, 29) and bp.shape == (51, 3) and bq.shape == (51, 4)
    assert hdr == notes_names() and qh == ["body_0_w", "body_0_x", "body_0_y", "body_0_z"]
    assert bh == ["body_0_x", "body_0_y", "body_0_z"]

    t_src, t_out = np.arange(31) / 30.0, np.arange(51) / 50.0
    for col, name in enumerate(notes_names()):
        u = G1_JOINT_NAMES.index(name)
        np.testing.assert_allclose(jp[:, col], np.interp(t_out, t_src, traj.positions_rad[:, u]), atol=2e-9)
        np.testing.assert_allclose(jv[:, col], np.interp(t_out, t_src, traj.velocities_rad_s[:, u]), atol=2e-9)
    for axis in range(3):
        np.testing.assert_allclose(bp[:, axis], np.interp(t_out, t_src, traj.root_pos_world_m[:, axis]), atol=2e-9)
    # constant-rate yaw: slerp is exact, so frame k is yaw 0.5 * k / 50 (wxyz)
    np.testing.assert_allclose(bq, yaw_to_quat_wxyz(0.5 * t_out), atol=2e-9)
    np.testing.assert_allclose(jp[[0, -1]], to_isaaclab(traj.positions_rad[[0, -1]]), atol=2e-9)

    meta = (folder / "metadata.txt").read_text().splitlines()
    assert meta[0] == "Metadata for: clip_a"
    k = meta.index("Body part indexes:")
    assert meta[k + 1] == "[0]"
    assert "Total timesteps: 51" in meta


def test_csv_export_lengths_and_sign_continuity(tmp_path):
    # 0.5 s at 30 fps (16 frames) -> 26 frames; a 1.1 s one -> floor(1.1 * 50) + 1 = 56
    assert read_csv(export_csv_motion(make_traj(16), tmp_path / "a") / "joint_pos.csv")[1].shape == (26, 29)
    assert read_csv(export_csv_motion(make_traj(34), tmp_path / "b") / "joint_pos.csv")[1].shape == (56, 29)
    # the same rotation given with flipped signs on alternate frames must not be slerped the long way
    traj = make_traj(31)
    traj.root_quat_wxyz[1::2] *= -1
    _, bq = read_csv(export_csv_motion(traj, tmp_path / "c") / "body_quat.csv")
    ref = yaw_to_quat_wxyz(0.5 * np.arange(51) / 50.0)
    np.testing.assert_allclose(np.abs(np.sum(bq * ref, axis=1)), 1.0, atol=1e-8)


# ---------------------------------------------------------------------------- codec
def test_v1_frame_layout_parsed_independently():
    q = np.linspace(-1, 1, 29)
    dq = np.linspace(2, 3, 29)
    msg = encode_frame(1, q, dq, [1, 0, 0, 0], 41)
    assert msg.startswith(b"pose")
    raw_header = msg[4:4 + HEADER_SIZE]
    text = raw_header.rstrip(b"\x00")
    assert set(raw_header[len(text):]) <= {0}
    header = json.loads(text)
    assert header["v"] == 1 and header["endian"] == "le" and header["count"] == 1
    fields = {f["name"]: f for f in header["fields"]}
    assert list(fields) == ["joint_pos", "joint_vel", "body_quat", "frame_index"]
    assert fields["joint_pos"]["shape"] == [1, 29] and fields["joint_pos"]["dtype"] == "f32"
    assert fields["frame_index"]["dtype"] == "i64"
    off = 4 + HEADER_SIZE
    jp = np.frombuffer(msg, "<f4", 29, off)
    jv = np.frombuffer(msg, "<f4", 29, off + 116)
    quat = np.frombuffer(msg, "<f4", 4, off + 232)
    fi = np.frombuffer(msg, "<i8", 1, off + 248)
    assert len(msg) == off + 256
    for k, name in enumerate(notes_names()):
        assert jp[k] == np.float32(q[G1_JOINT_NAMES.index(name)]), name
        assert jv[k] == np.float32(dq[G1_JOINT_NAMES.index(name)]), name
    assert list(quat) == [1, 0, 0, 0] and fi[0] == 41

    d = decode_frame(msg)
    assert d["version"] == 1 and d["frame_index"].tolist() == [41]
    np.testing.assert_allclose(d["joint_pos"][0], q, atol=1e-6)  # back in Unitree order
    np.testing.assert_allclose(d["fields"]["joint_pos"][0], to_isaaclab(q), atol=1e-6)


def test_v3_framing_requires_and_carries_smpl():
    rng = np.random.default_rng(0)
    sj, sp = rng.normal(size=(24, 3)), 0.3 * rng.normal(size=(21, 3))
    with pytest.raises(SonicError, match="smpl_joints"):
        encode_frame(3, np.zeros(29), np.zeros(29), [1, 0, 0, 0], 0)
    with pytest.raises(SonicError, match=r"expected shape \(N, 24, 3\)"):
        encode_frame(3, np.zeros(29), np.zeros(29), [1, 0, 0, 0], 0, sj[:23], sp)
    with pytest.raises(SonicError, match=r"expected shape \(N, 21, 3\)"):
        encode_frame(3, np.zeros(29), np.zeros(29), [1, 0, 0, 0], 0, sj, np.zeros((24, 3)))
    msg = encode_frame(3, np.zeros(29), np.zeros(29), [0, 0, 0, 2.0], 5, sj, sp)
    header = json.loads(msg[4:4 + HEADER_SIZE].rstrip(b"\x00"))
    assert header["v"] == 3
    assert [(f["name"], f["shape"]) for f in header["fields"]][-2:] == [("smpl_joints", [1, 24, 3]),
                                                                         ("smpl_pose", [1, 21, 3])]
    d = decode_frame(msg)
    np.testing.assert_allclose(d["smpl_joints"][0], sj, atol=1e-6)
    np.testing.assert_allclose(d["smpl_pose"][0], sp, atol=1e-6)
    np.testing.assert_allclose(d["body_quat"][0], [0, 0, 0, 1])  # normalised
    # batch of N frames
    n = 3
    msg = encode_frame(3, np.zeros((n, 29)), np.zeros((n, 29)), np.tile([1.0, 0, 0, 0], (n, 1)), np.arange(n),
                       np.zeros((n, 24, 3)), np.zeros((n, 21, 3)))
    assert decode_frame(msg)["frame_index"].tolist() == [0, 1, 2]


def _rebuild(header: dict, payload: bytes, topic: bytes = b"pose") -> bytes:
    return topic + json.dumps(header).encode().ljust(HEADER_SIZE, b"\x00") + payload


def test_malformed_frames_are_refused_with_what_was_expected():
    good = encode_frame(1, np.zeros(29), np.zeros(29), [1, 0, 0, 0], 1)
    header = json.loads(good[4:4 + HEADER_SIZE].rstrip(b"\x00"))
    payload = good[4 + HEADER_SIZE:]
    cases = {
        "short header": (good[:4 + 100], "at least 1284 bytes"),
        "wrong topic": (b"posx" + good[4:], "start with b'pose'"),
        "bad json": (b"pose" + b"{not json".ljust(HEADER_SIZE, b"\x00") + payload, "JSON"),
        "junk after padding": (good[:4 + HEADER_SIZE - 1] + b"x" + payload, "NUL padding"),
        "truncated payload": (good[:-3], "payload: expected 256 bytes"),
        "extra payload": (good + b"\x00" * 4, "payload: expected 256 bytes"),
        "version 2": (_rebuild({**header, "v": 2}, payload), "protocol version"),
        "v3 without smpl": (_rebuild({**header, "v": 3}, payload), "missing"),
        "no header fields": (_rebuild({**header, "fields": []}, b""), "fields"),
        "unknown dtype": (_rebuild({**header, "fields": [{**header["fields"][0], "dtype": "f16"}]
                                    + header["fields"][1:]}, payload), "dtype"),
    }
    wrong_shape = json.loads(json.dumps(header))
    wrong_shape["fields"][0]["shape"] = [1, 28]
    wrong_shape["fields"][1]["shape"] = [1, 30]
    cases["28 joints"] = (_rebuild(wrong_shape, payload), "joint_pos: expected shape")
    float_index = json.loads(json.dumps(header))
    float_index["fields"][3]["dtype"] = "f64"
    cases["float frame_index"] = (_rebuild(float_index, payload), "frame_index: expected dtype")
    for what, (msg, needle) in cases.items():
        with pytest.raises(SonicError) as e:
            decode_frame(msg)
        assert needle in str(e.value), (what, str(e.value))
        assert isinstance(e.value, ValueError)
    decode_frame(good)  # the untouched one still decodes
    with pytest.raises(SonicError, match="NaN"):
        encode_frame(1, np.full(29, np.nan), np.zeros(29), [1, 0, 0, 0], 0)
    with pytest.raises(SonicError, match="frame_index"):
        encode_frame(1, np.zeros(29), np.zeros(29), [1, 0, 0, 0], 1.5)
    with pytest.raises(SonicError, match="protocol version"):
        encode_frame(4, np.zeros(29), np.zeros(29), [1, 0, 0, 0], 0)


# ---------------------------------------------------------------------------- live stream
@pytest.fixture
def streamer():
    pytest.importorskip("zmq")  # pyzmq (scripts/requirements-offline.txt); only the live stream needs it
    s = SonicStreamer("tcp://127.0.0.1:*")
    yield s
    s.close()


@pytest.fixture
def subscriber(streamer):
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"pose")
    sub.connect(streamer.endpoint)
    assert streamer.wait_for_subscriber(5.0), "the subscription never reached the streamer"
    yield sub
    sub.close()
    ctx.term()


def collect(sub, until_s: float) -> list[tuple[float, bytes]]:

    out = []
    deadline = time.monotonic() + until_s
    while time.monotonic() < deadline:
        if sub.poll(20):
            out.append((time.monotonic(), sub.recv()))
    return out


def test_stream_frames_in_order_at_50hz(streamer, subscriber):
    traj = make_traj(num_frames=19, fps=30.0)  # 0.6 s -> 31 frames
    reports = []
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("n", streamer.stream(
        traj, lambda d, t, s: reports.append((d, t)), first_frame_index=100)))
    th.start()
    got = collect(subscriber, 1.5)
    th.join(5)
    assert result["n"] == 31
    frames = [decode_frame(m) for _, m in got]
    idx = [int(f["frame_index"][0]) for f in frames]
    assert idx == list(range(100, 131))
    ref_t = np.arange(31) / 50.0
    for k, f in enumerate(frames):
        q_ref, _ = traj.sample(ref_t[k])
        np.testing.assert_allclose(f["joint_pos"][0], q_ref, atol=1e-5)
        # by name on the raw wire array
        left_knee = ISAACLAB_JOINT_NAMES.index("left_knee_joint")
        assert f["fields"]["joint_pos"][0, left_knee] == pytest.approx(q_ref[G1_JOINT_NAMES.index("left_knee_joint")],
                                                                        abs=1e-5)
    elapsed = got[-1][0] - got[0][0]
    assert 0.45 < elapsed < 1.0, elapsed  # 30 periods of 20 ms = 0.6 s
    assert reports[-1] == (31, 31) and reports[0] == (0, 31)


def test_stream_v3_interpolates_smpl(streamer, subscriber):
    traj = make_traj(num_frames=4, fps=30.0)  # 0.1 s -> 6 frames
    sj = np.zeros((4, 24, 3))
    sj[:, 0, 2] = np.arange(4)  # pelvis z = source frame index
    sp = np.zeros((4, 21, 3))
    sp[:, 3, 2] = 0.3 * np.arange(4)  # joint 3 rotating about z
    th = threading.Thread(target=streamer.stream, args=(traj,), kwargs=dict(version=3, smpl_joints=sj, smpl_pose=sp))
    th.start()
    frames = [decode_frame(m) for _, m in collect(subscriber, 0.5)]
    th.join(5)
    assert [f["version"] for f in frames] == [3] * 6
    x = np.arange(6) / 50.0 * 30.0  # fractional source frame
    np.testing.assert_allclose([f["smpl_joints"][0, 0, 2] for f in frames], x, atol=1e-5)
    np.testing.assert_allclose([f["smpl_pose"][0, 3, 2] for f in frames], 0.3 * x, atol=1e-5)
    with pytest.raises(SonicError, match="smpl_joints"):
        streamer.stream(traj, version=3)


def test_stream_cancel_stops_within_200ms(streamer, subscriber):
    traj = make_traj(num_frames=301, fps=30.0)  # 10 s
    cancel = threading.Event()
    outcome = {}

    def run():
        try:
            streamer.stream(traj, cancel=cancel)
        except Canceled as e:
            outcome["canceled"] = (time.monotonic(), e)

    th = threading.Thread(target=run)
    th.start()
    got = collect(subscriber, 0.3)
    t_cancel = time.monotonic()
    cancel.set()
    th.join(2)
    assert not th.is_alive()
    assert "canceled" in outcome
    assert outcome["canceled"][0] - t_cancel < 0.2
    later = collect(subscriber, 0.2)
    assert len(got) > 5
    assert all(t - t_cancel < 0.1 for t, _ in later), "frames kept coming after cancel"


def test_address_in_use_is_a_clear_error(streamer):
    with pytest.raises(SonicError, match="address already in use"):
        SonicStreamer(streamer.endpoint)
    with pytest.raises(SonicError, match="endpoint"):
        SonicStreamer("nonsense://endpoint")
    streamer.close()
    with pytest.raises(SonicError, match="closed"):
        streamer.stream(make_traj(2))
