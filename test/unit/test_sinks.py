"""Execution sinks (exoactor.control.sinks), ROS-free: SONIC over a local ZMQ subscriber, /arm_sdk and
locomotion requests through recording callables on a simulated clock.

The guarantees are stated here independently of the implementation: every joint value that leaves
a sink lies inside the limits' window, moves at most dq_max / rate per tick, |dq| <= dq_max, gains
inside their bounds; NaN anywhere is refused before anything is sent; /arm_sdk frames leave the legs
all zero and end with the blend weight exactly 0.
"""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exoactor.control.arm_sdk import API_SET_VELOCITY, BLEND_WEIGHT_INDEX, LocomotionRequests
from exoactor.control.sinks import ArmSdkSink, ExecutionError, SonicSink, limit_trajectory, sink_limits
from exoactor.control.sonic import decode_frame, encode_frame, resample_trajectory
from exoactor.g1.model import joint_ranges_rad, stand_pose_rad, torque_limits_nm
from exoactor.g1.safety import CommandLimits
from exoactor.geometry import yaw_to_quat_wxyz
from exoactor.progress import Canceled
from exoactor.retarget.trajectory import G1JointTrajectory

VMAX = 6.0
RATE = 50.0
STEP = VMAX / RATE  # the largest change of a target between two ticks at 50 Hz
UPPER = np.arange(12, 29)
LEGS = np.arange(0, 12)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def ranges(g1_model):
    return joint_ranges_rad(g1_model)


@pytest.fixture(scope="module")
def limits(g1_model, ranges):
    # exactly as the tracking controller builds them (500 Hz period: the sinks must use their own)
    return CommandLimits.from_ranges(ranges, VMAX, 0.02, 1.0 / 500.0, tau_max_nm=torque_limits_nm(g1_model))


@pytest.fixture(scope="module")
def stand(g1_model):
    return stand_pose_rad(g1_model)


def traj_from(q, fps=30.0, root=None, yaw=None):
    q = np.asarray(q, float)
    n = len(q)
    dq = np.gradient(q, 1 / fps, axis=0) if n > 1 else np.zeros_like(q)
    root = np.tile([0.0, 0.0, 0.75], (n, 1)) if root is None else np.asarray(root, float)
    quat = yaw_to_quat_wxyz(np.zeros(n) if yaw is None else np.asarray(yaw, float))
    return G1JointTrajectory(fps, q, dq, root, quat)


def wavy(stand, seconds=1.0, fps=30.0, amp=0.8):
    """Stand pose plus a big, fast wave on every joint (it leaves the window and the speed bound)."""
    t = np.arange(int(round(seconds * fps)) + 1) / fps
    return traj_from(stand[None] + amp * np.sin(7.0 * t[:, None] + np.arange(29)[None] * 0.4), fps)


def check_joint_values(limits, q, dq=None, q_prev=None, what=""):
    """Window, step per tick (from q_prev for the first row), speed; q: (n, k) with k = 29 or rows of UPPER."""
    idx = np.arange(29) if q.shape[1] == 29 else UPPER
    lo, hi = limits.q_min_rad[idx], limits.q_max_rad[idx]
    assert np.all(np.isfinite(q)), what
    assert np.all(q >= lo) and np.all(q <= hi), f"{what}: outside the window"
    steps = np.abs(np.diff(q if q_prev is None else np.vstack([q_prev[None], q]), axis=0))
    assert np.all(steps <= STEP + 1e-12), f"{what}: step {steps.max()} > {STEP}"
    if dq is not None:
        assert np.all(np.abs(dq) <= limits.dq_max_rad_s[idx]), f"{what}: speed"


# ----------------------------------------------------------------------------- limits
def test_sink_limits_bound_the_step_at_the_sink_period(limits):
    lim = sink_limits(limits, RATE)
    assert lim.period_s == pytest.approx(1 / RATE)
    assert np.allclose(lim.step_max_rad, VMAX / RATE)
    assert np.array_equal(lim.q_min_rad, limits.q_min_rad) and np.array_equal(lim.kp_max, limits.kp_max)
    with pytest.raises(ValueError, match="rate"):
        sink_limits(limits, 0.0)


class RecordingStreamer:
    """Stands in for SonicStreamer: encodes every frame exactly as it does (resample + encode_frame)."""

    endpoint = "tcp://fake:1"

    def __init__(self):
        self.frames: list[dict] = []
        self.closed = False

    def wait_for_subscriber(self, timeout_s, cancel):
        return True

    def stream(self, traj, progress, cancel, rate_hz, version):
        data = resample_trajectory(traj, rate_hz)
        for k in range(len(data["times"])):
            self.frames.append(decode_frame(encode_frame(version, data["joint_pos"][k], data["joint_vel"][k],
                                                         data["body_quat_wxyz"][k], k)))
        return len(data["times"])

    def close(self):
        self.closed = True


finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@st.composite
def wild_trajectories(draw):
    """Anything finite: huge joint values, jumps, any rate, a root flying about."""
    n = draw(st.integers(1, 14))
    fps = draw(st.sampled_from([7.0, 30.0, 50.0, 120.0]))
    q = draw(arrays(np.float64, (n, 29), elements=finite))
    dq = draw(arrays(np.float64, (n, 29), elements=finite))
    root = draw(arrays(np.float64, (n, 3), elements=st.floats(-50, 50)))
    quat = draw(arrays(np.float64, (n, 4), elements=st.floats(-1, 1)))
    quat[np.linalg.norm(quat, axis=1) < 1e-3] = [1.0, 0.0, 0.0, 0.0]
    return G1JointTrajectory(fps, q, dq, root, quat)


@SETTINGS
@given(traj=wild_trajectories())
def test_sonic_sends_nothing_outside_the_limits_for_any_trajectory(limits, traj):
    streamer = RecordingStreamer()
    sink = SonicSink(limits, streamer=streamer)
    summary = sink.execute(traj)
    assert "frames" in summary
    n = int(np.floor(traj.duration_s * RATE + 1e-9)) + 1
    assert len(streamer.frames) == n
    q = np.array([f["joint_pos"][0] for f in streamer.frames])  # float32 on the wire, back in motor order
    dq = np.array([f["joint_vel"][0] for f in streamer.frames])
    check_joint_values(limits, q, dq, what="SONIC wire")
    assert all(np.all(np.isfinite(f["body_quat"])) for f in streamer.frames)


@pytest.mark.parametrize("field,index", [("positions_rad", (0, 3)), ("velocities_rad_s", (-1, 20)),
                                         ("root_pos_world_m", (0, 2)), ("root_quat_wxyz", (0, 0))])
def test_nan_anywhere_is_refused_before_anything_is_sent(limits, stand, field, index, tmp_path):
    traj = wavy(stand, 0.5)
    getattr(traj, field)[index] = np.nan  # changed after the trajectory checked itself
    streamer = RecordingStreamer()
    with pytest.raises(ExecutionError, match=f"{field}.*NaN.*nothing sent"):
        SonicSink(limits, streamer=streamer).execute(traj, episode_dir=tmp_path)
    assert streamer.frames == [] and list(tmp_path.iterdir()) == []
    rec = Recorder()
    with pytest.raises(ExecutionError, match=f"{field}.*NaN.*nothing sent"):
        rec.sink(limits, stand).execute(traj)
    assert rec.frames == [] and rec.requests == []


def test_limit_trajectory_clamps_and_counts(limits, stand):
    traj = wavy(stand, 1.0, amp=2.0)
    out = limit_trajectory(limits, traj, RATE)
    assert out.trajectory.fps == RATE and out.trajectory.num_frames == 51
    assert out.clamped > 0
    check_joint_values(limits, out.trajectory.positions_rad, out.trajectory.velocities_rad_s)
    gentle = limit_trajectory(limits, traj_from(np.tile(stand, (31, 1))), RATE)
    assert gentle.clamped == 0
    np.testing.assert_allclose(gentle.trajectory.positions_rad, np.tile(stand, (51, 1)), atol=1e-6)


def test_sonic_refuses_protocol_v3_and_bad_waits(limits):
    with pytest.raises(ValueError, match="SMPL"):
        SonicSink(limits, version=3, streamer=RecordingStreamer())
    with pytest.raises(ValueError, match="wait_for_subscriber_s"):
        SonicSink(limits, wait_for_subscriber_s=float("nan"), streamer=RecordingStreamer())


# ----------------------------------------------------------------------------- SONIC, live ZMQ
@pytest.fixture
def sonic(limits):
    pytest.importorskip("zmq")
    sink = SonicSink(limits, "tcp://127.0.0.1:*", wait_for_subscriber_s=3.0)
    yield sink
    sink.close()


def subscribe(endpoint):
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"pose")
    sub.connect(endpoint)
    return ctx, sub


def collect(sub, until_s, stop=None):
    out = []
    deadline = time.monotonic() + until_s
    while time.monotonic() < deadline and not (stop is not None and stop() and not sub.poll(50)):
        if sub.poll(20):
            out.append((time.monotonic(), sub.recv()))
    return out


def run_in_thread(fn):
    outcome = {}

    def run():
        try:
            outcome["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            outcome["error"] = e
            outcome["t"] = time.monotonic()

    th = threading.Thread(target=run)
    th.start()
    return th, outcome


def test_sonic_streams_the_limited_trajectory_at_50hz_and_writes_the_csv_folder(sonic, limits, stand, tmp_path):
    ctx, sub = subscribe(sonic.endpoint)
    try:
        traj = wavy(stand, 1.0, amp=1.5)  # 1 s at 30 fps -> 51 frames at 50 Hz
        th, outcome = run_in_thread(lambda: sonic.execute(traj, episode_dir=tmp_path, segment_index=3))
        got = collect(sub, 4.0, stop=lambda: not th.is_alive())
        th.join(5)
        assert "error" not in outcome, outcome.get("error")
        frames = [decode_frame(m) for _, m in got]
        assert len(frames) == 51
        assert [int(f["frame_index"][0]) for f in frames] == list(range(51))
        q = np.array([f["joint_pos"][0] for f in frames])
        check_joint_values(limits, q, np.array([f["joint_vel"][0] for f in frames]), what="SONIC stream")
        assert not np.allclose(q[10], resample_trajectory(traj)["joint_pos"][10], atol=1e-3)  # really limited
        assert 0.85 < got[-1][0] - got[0][0] < 1.4  # 50 periods of 20 ms
        folder = tmp_path / "sonic_03"
        assert sorted(p.name for p in folder.iterdir()) == [
            "body_pos.csv", "body_quat.csv", "joint_pos.csv", "joint_vel.csv", "metadata.txt"]
        csv_q = np.loadtxt(folder / "joint_pos.csv", delimiter=",", skiprows=1)
        assert csv_q.shape == (51, 29)
        from exoactor.control.sonic import from_isaaclab

        np.testing.assert_allclose(from_isaaclab(csv_q), q, atol=1e-6)  # the CSV is what was streamed
        assert "51 frames" in outcome["result"] and str(folder) in outcome["result"]
        # the same socket serves the next goal (bound once); no episode_dir -> no CSV
        th, outcome = run_in_thread(lambda: sonic.execute(traj_from(np.tile(stand, (7, 1)))))
        got = collect(sub, 3.0, stop=lambda: not th.is_alive())
        th.join(5)
        assert "error" not in outcome and len(got) == 11  # 0.2 s -> 11 frames
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sonic_03"]
    finally:
        sub.close()
        ctx.term()


def test_sonic_cancel_ends_the_stream_within_200ms(sonic, stand):
    ctx, sub = subscribe(sonic.endpoint)
    cancel = threading.Event()
    try:
        th, outcome = run_in_thread(lambda: sonic.execute(wavy(stand, 10.0), cancel=cancel))
        got = collect(sub, 0.4)
        t_cancel = time.monotonic()
        cancel.set()
        th.join(2)
        assert not th.is_alive() and isinstance(outcome.get("error"), Canceled)
        assert outcome["t"] - t_cancel < 0.2
        later = collect(sub, 0.2)
        assert len(got) > 5 and all(t - t_cancel < 0.1 for t, _ in later)
    finally:
        sub.close()
        ctx.term()


def test_sonic_without_subscriber_fails_clearly(limits, stand, tmp_path):
    pytest.importorskip("zmq")
    with SonicSink(limits, "tcp://127.0.0.1:*", wait_for_subscriber_s=0.3) as sink:
        t0 = time.monotonic()
        with pytest.raises(ExecutionError) as e:
            sink.execute(traj_from(np.tile(stand, (5, 1))), episode_dir=tmp_path)
        assert 0.25 < time.monotonic() - t0 < 1.5
        assert str(e.value).startswith(
            f"no SONIC deployment subscribed to {sink.endpoint} within 0.3 s: is it running?")
        assert (tmp_path / "sonic_00" / "joint_pos.csv").is_file()  # the CSV motion is written anyway


# ----------------------------------------------------------------------------- /arm_sdk
class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t

    def sleep(self, dt):
        self.t += dt


class Recorder:
    """publish_arm_sdk / send_request that record (clock time, what) on a simulated clock."""

    def __init__(self, clock=None):
        self.clock = clock or FakeClock()
        self.frames: list = []
        self.requests: list = []

    def sink(self, limits, measured, **kw):
        kw.setdefault("ramp_in_s", 0.2)
        kw.setdefault("ramp_out_s", 0.3)
        return ArmSdkSink(limits, lambda f: self.frames.append((self.clock(), f)),
                          lambda r: self.requests.append((self.clock(), r)), lambda: measured,
                          clock=self.clock, sleep=self.clock.sleep, **kw)

    @property
    def weights(self):
        return np.array([f.q[BLEND_WEIGHT_INDEX] for _, f in self.frames])

    @property
    def upper_q(self):
        return np.array([f.q[UPPER] for _, f in self.frames])


def check_arm_frames(limits, rec, measured):
    assert rec.frames
    for _, f in rec.frames:
        for field in ("q", "dq", "tau", "kp", "kd"):
            assert not np.any(getattr(f, field)[LEGS]), f"legs {field} not zero"
            assert not np.any(getattr(f, field)[30:]), f"slots 30..34 {field} not zero"
        assert not np.any(f.mode[LEGS]) and np.all(f.mode[UPPER] == 1)
        assert not np.any(f.dq[29:]) and not np.any(f.kp[29:]) and not np.any(f.tau)
        assert np.all(f.kp[UPPER] <= limits.kp_max[UPPER]) and np.all(f.kd[UPPER] <= limits.kd_max[UPPER])
        assert np.all(np.abs(f.dq[UPPER]) <= limits.dq_max_rad_s[UPPER])
        wire = f.to_struct()["motor"]["q"][UPPER].astype(np.float64)  # float32, as the robot reads it
        assert np.all(wire >= limits.q_min_rad[UPPER]) and np.all(wire <= limits.q_max_rad[UPPER])
    check_joint_values(limits, rec.upper_q, q_prev=measured[UPPER], what="/arm_sdk")
    w = rec.weights
    assert np.all((w >= 0) & (w <= 1))
    peak = int(np.argmax(w))
    assert np.all(np.diff(w[:peak + 1]) >= 0) and np.all(np.diff(w[peak:]) <= 0), "weight not up-then-down"
    assert w[0] == 0.0 and np.all(w[-5:] == 0.0)


def test_arm_sdk_blends_in_tracks_and_blends_out(limits, stand):
    measured = stand.copy()
    measured[UPPER] += 0.3  # the built-in controller holds the arms elsewhere
    traj = wavy(stand, 1.0, amp=0.3)
    rec = Recorder()
    summary = rec.sink(limits, measured).execute(traj)
    check_arm_frames(limits, rec, measured)
    t = np.array([tt for tt, _ in rec.frames]) - rec.frames[0][0]
    w = rec.weights
    assert np.allclose(np.diff(t), 1 / RATE, atol=1e-6)  # one frame per 20 ms tick
    ramp_in = t < 0.2 - 1e-9
    assert np.all(np.diff(w[ramp_in]) > 0) and w[ramp_in][-1] < 1.0
    tracking = (t >= 0.2 - 1e-9) & (t <= 1.2 + 1e-9)
    assert np.all(w[tracking] == 1.0) and tracking.sum() == 51
    np.testing.assert_allclose(rec.upper_q[tracking][-1], np.clip(traj.positions_rad[-1], limits.q_min_rad,
                                                                  limits.q_max_rad)[UPPER], atol=0.05)
    out = t > 1.2 + 1e-9
    assert np.all(np.diff(w[out]) <= 0) and t[out][-1] == pytest.approx(1.2 + 0.3 + 5 / RATE, abs=0.03)
    assert np.all(rec.upper_q[out] == rec.upper_q[tracking][-1])  # holds the last target
    assert rec.requests == []  # standing still: no locomotion request
    assert "tracked 1.0 s" in summary


def test_arm_sdk_first_frames_start_from_the_measured_pose(limits, stand):
    measured = stand.copy()
    measured[UPPER] = np.clip(measured[UPPER] + 0.5, limits.q_min_rad[UPPER], limits.q_max_rad[UPPER])
    rec = Recorder()
    rec.sink(limits, measured, ramp_in_s=1.0).execute(traj_from(np.tile(stand, (4, 1))))
    np.testing.assert_allclose(rec.upper_q[0], measured[UPPER], atol=1e-6)
    n_in = 50
    np.testing.assert_allclose(rec.upper_q[n_in], stand[UPPER], atol=1e-6)  # reached the first frame
    assert rec.weights[0] == 0.0 and rec.weights[n_in] == 1.0


@SETTINGS
@given(traj=wild_trajectories(), frac=arrays(np.float64, (29,), elements=st.floats(0, 1)))
def test_arm_sdk_sends_nothing_outside_the_limits_for_any_trajectory(limits, ranges, traj, frac):
    measured = ranges[:, 0] + frac * (ranges[:, 1] - ranges[:, 0])  # anywhere in the joint ranges
    rec = Recorder()
    rec.sink(limits, measured, ramp_in_s=0.1, ramp_out_s=0.1).execute(traj)
    check_arm_frames(limits, rec, measured)
    bounds = LocomotionRequests()
    for _, r in rec.requests:
        assert r["api_id"] == API_SET_VELOCITY
        p = json.loads(r["parameter"])
        vx, vy, wz = p["velocity"]
        assert bounds.vx_min <= vx <= bounds.vx_max and abs(vy) <= bounds.vy_max and abs(wz) <= bounds.yaw_rate_max
        assert 0 < p["duration"] <= bounds.max_duration_s


def walk_then_turn(stand, turn=0.5, fps=30.0):
    """2 s walking forward at 0.3 m/s, then 2 s turning in place at ``turn`` rad/s."""
    t = np.arange(int(4 * fps) + 1) / fps
    x = 0.3 * np.minimum(t, 2.0)
    yaw = turn * np.maximum(t - 2.0, 0.0)
    root = np.column_stack([x, np.zeros_like(t), np.full_like(t, 0.75)])
    return traj_from(np.tile(stand, (len(t), 1)), fps, root, yaw)


@pytest.mark.parametrize("turn", [0.5, -0.5])
def test_arm_sdk_turns_the_root_motion_into_velocity_requests(limits, stand, turn):
    traj = walk_then_turn(stand, turn)
    rec = Recorder()
    summary = rec.sink(limits, stand).execute(traj)
    check_arm_frames(limits, rec, stand)
    t_track0 = rec.frames[0][0] + 0.2
    *plan, stop = rec.requests
    assert all(r["api_id"] == API_SET_VELOCITY for _, r in rec.requests)
    params = [json.loads(r["parameter"]) for _, r in plan]
    v = np.array([p["velocity"] for p in params])
    durations = np.array([p["duration"] for p in params])
    assert len(plan) >= 2
    assert v[0][0] == pytest.approx(0.3, abs=0.06) and abs(v[0][2]) < 0.05 and abs(v[0][1]) < 0.03
    assert v[-1][2] == pytest.approx(turn, abs=0.08) and abs(v[-1][0]) < 0.05
    assert durations.sum() == pytest.approx(traj.duration_s, abs=0.1)
    # each sent when its segment starts (on the tick at or after its time)
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    sent_at = np.array([tt for tt, _ in plan]) - t_track0
    assert np.all(sent_at >= starts - 1e-6) and np.all(sent_at < starts + 1 / RATE + 1e-6)
    # and a stop once the motion is over
    assert json.loads(stop[1]["parameter"]) == {"velocity": [0.0, 0.0, 0.0], "duration": 1.0}
    assert stop[0] - t_track0 == pytest.approx(traj.duration_s, abs=1 / RATE + 1e-6)
    assert "then a stop" in summary


def test_arm_sdk_without_locomotion_sends_no_request(limits, stand):
    rec = Recorder()
    rec.sink(limits, stand, walk=False).execute(walk_then_turn(stand))
    assert rec.requests == [] and rec.weights[-1] == 0.0


class CancelAt:
    def __init__(self, clock, t):
        self.clock, self.t = clock, t

    def is_set(self):
        return self.clock() >= self.t


def test_arm_sdk_cancel_stops_walking_blends_out_and_raises_canceled(limits, stand):
    rec = Recorder()
    traj = walk_then_turn(stand)
    t0 = rec.clock()
    with pytest.raises(Canceled, match="stop request sent.*weight 0"):
        rec.sink(limits, stand).execute(traj, cancel=CancelAt(rec.clock, t0 + 1.0))
    check_arm_frames(limits, rec, stand)
    t = np.array([tt for tt, _ in rec.frames]) - t0
    w = rec.weights
    stops = [(tt - t0, r) for tt, r in rec.requests if json.loads(r["parameter"])["velocity"] == [0.0, 0.0, 0.0]]
    assert len(stops) == 1 and stops[0][0] == pytest.approx(1.0, abs=0.03)  # at once, before the blend-out
    assert np.all(w[(t > 0.2) & (t < 1.0 - 1e-9)] == 1.0)
    after = t > 1.0
    assert np.all(np.diff(w[after]) <= 0) and t[-1] == pytest.approx(1.0 + 0.3 + 5 / RATE, abs=0.05)
    assert np.all(rec.upper_q[after] == rec.upper_q[~after][-1])
    assert all(tt - t0 <= stops[0][0] + 1e-9 for tt, _ in rec.requests)  # nothing after the stop


def test_arm_sdk_cancel_during_blend_in_ramps_down_from_there(limits, stand):
    rec = Recorder()
    t0 = rec.clock()
    with pytest.raises(Canceled):
        rec.sink(limits, stand, ramp_in_s=1.0, ramp_out_s=1.0).execute(walk_then_turn(stand),
                                                                      cancel=CancelAt(rec.clock, t0 + 0.5))
    check_arm_frames(limits, rec, stand)
    assert rec.weights.max() == pytest.approx(0.5, abs=0.03)
    assert rec.frames[-1][0] - t0 == pytest.approx(1.0 + 5 / RATE, abs=0.05)  # down at the same rate


def test_arm_sdk_failures_blend_out_and_say_why(limits, stand):
    rec = Recorder()
    n = [0]

    def flaky(frame):
        n[0] += 1
        if n[0] == 30:
            raise OSError("publisher gone")
        rec.frames.append((rec.clock(), frame))

    sink = ArmSdkSink(limits, flaky, lambda r: rec.requests.append((rec.clock(), r)), lambda: stand,
                      ramp_in_s=0.2, ramp_out_s=0.3, clock=rec.clock, sleep=rec.clock.sleep)
    with pytest.raises(ExecutionError, match="OSError: publisher gone.*stop request sent.*weight 0"):
        sink.execute(walk_then_turn(stand))
    assert rec.weights[-1] == 0.0 and json.loads(rec.requests[-1][1]["parameter"])["velocity"] == [0.0, 0.0, 0.0]
    # a state problem while moving (stale /lowstate, fault) ends it the same way, with the reason
    rec = Recorder()
    problems = iter([""] * 10 + ["no usable /lowstate for 0.40 s"] * 1000)
    sink = rec.sink(limits, stand, state_problem=lambda: next(problems))
    with pytest.raises(ExecutionError, match="no usable /lowstate for 0.40 s"):
        sink.execute(wavy(stand, 2.0, amp=0.2))
    assert rec.weights[-1] == 0.0 and rec.frames[-1][0] - rec.frames[0][0] < 2.0


def test_arm_sdk_refuses_to_start_without_a_usable_measured_pose(limits, stand):
    for measured, why in ((None, "no measured robot pose"), (np.full(29, np.nan), "finite"),
                          (np.zeros(12), "29 finite")):
        rec = Recorder()
        with pytest.raises(ExecutionError, match=why):
            rec.sink(limits, measured).execute(wavy(stand, 0.3))
        assert rec.frames == [] and rec.requests == []
    rec = Recorder()
    with pytest.raises(ExecutionError, match="not moving: motor fault"):
        rec.sink(limits, stand, state_problem=lambda: "motor fault").execute(wavy(stand, 0.3))
    assert rec.frames == []
    with pytest.raises(ValueError, match="kp"):
        Recorder().sink(limits, stand, kp=np.full(17, 1e4))


def test_arm_sdk_runs_on_absolute_time_at_50hz(limits, stand):
    """The real clock: ticks every 20 ms, no drift."""
    frames = []
    sink = ArmSdkSink(limits, lambda f: frames.append(time.monotonic()), lambda r: None, lambda: stand,
                      ramp_in_s=0.1, ramp_out_s=0.1, final_zero_frames=3)
    t0 = time.monotonic()
    sink.execute(traj_from(np.tile(stand, (10, 1))))  # 0.3 s
    elapsed = time.monotonic() - t0
    n = len(frames)
    assert n == pytest.approx((0.1 + 0.3 + 0.1) * RATE + 3, abs=2)
    assert elapsed == pytest.approx((n - 1) / RATE, abs=0.06)
    assert np.median(np.diff(frames)) == pytest.approx(1 / RATE, abs=0.004)
