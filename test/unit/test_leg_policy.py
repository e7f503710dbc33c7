"""Unitree's G1 leg policy: loading, observation layout, standing in MuJoCo without the band,
velocity commands from a root trajectory, and the outer loops."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from exoactor.control.leg_policy import (
    ACTION_SCALE_RAD,
    LEG_DEFAULT_Q_RAD,
    LEG_KD_NM_S_PER_RAD,
    LEG_KP_NM_PER_RAD,
    OBS_DIM,
    WAIST_HOLD_KD_NM_S_PER_RAD,
    WAIST_HOLD_KP_NM_PER_RAD,
    BasePathTracker,
    LegController,
    LegPolicy,
    LegPolicyError,
    VelocityOuterLoop,
    RAMP_GAIN_MAX,
    base_velocity_commands,
    body_velocity,
    build_leg_observation,
    needs_locomotion,
    projected_gravity,
)
from exoactor.geometry import yaw_to_quat_wxyz

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
MOTION_PT = Path(os.environ.get("EXOACTOR_LEG_POLICY")
                 or REPO.parent / "shared" / "assets" / "unitree_rl_gym" / "g1" / "motion.pt")


class _Slice(torch.nn.Module):
    """Returns 12 consecutive observation values: the policy's targets reveal the observation."""

    def __init__(self, start: int):
        super().__init__()
        self.start = start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.start + 12]


class _Counter(torch.nn.Module):
    """Recurrent stand-in: a buffer that counts calls, cleared by reset_memory (as motion.pt's LSTM state)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1.0
        return self.calls.expand(1, 12).clone()

    @torch.jit.export
    def reset_memory(self):
        self.calls.zero_()


def _scripted(module, path: Path) -> Path:
    torch.jit.script(module).save(str(path))
    return path


# --- loading ---------------------------------------------------------------------------------

def test_missing_file_says_what_was_expected(tmp_path):
    with pytest.raises(LegPolicyError, match=r"not found.*TorchScript.*nope\.pt"):
        LegPolicy(tmp_path / "nope.pt")
    with pytest.raises(LegPolicyError, match="got a directory"):
        LegPolicy(tmp_path)


@pytest.mark.parametrize("kind", ["text", "state_dict"])
def test_a_file_that_is_not_torchscript_is_rejected_clearly(tmp_path, kind):
    path = tmp_path / "policy.pt"
    if kind == "text":
        path.write_text("not a model\n")
    else:  # torch.save of weights: a real torch file, but not a TorchScript archive
        torch.save({"w": torch.zeros(3)}, str(path))
    with pytest.raises(LegPolicyError, match=r"expected a TorchScript archive.*got a file torch\.jit\.load rejects") as e:
        LegPolicy(path)
    assert "policy.pt" in str(e.value)


def test_a_module_with_the_wrong_interface_is_rejected_at_load(tmp_path):
    class Five(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :5]

    with pytest.raises(LegPolicyError, match=r"expected 12 actions per call, got \(1, 5\)"):
        LegPolicy(_scripted(Five(), tmp_path / "five.pt"))

    class Needs3(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(3, -1)[:, :4].reshape(1, 12)

    with pytest.raises(LegPolicyError, match=r"mapping a \(1, 47\) float32 observation.*calling it failed"):
        LegPolicy(_scripted(Needs3(), tmp_path / "needs3.pt"))


# --- observation layout ----------------------------------------------------------------------

def _inputs():
    rng = np.random.default_rng(3)
    pitch = 0.3  # nose down about +y
    return {
        "base_ang_vel_rad_s": np.array([0.4, -0.8, 1.2]),
        "base_quat_wxyz": np.array([np.cos(pitch / 2), 0.0, np.sin(pitch / 2), 0.0]),
        "leg_q_rad": LEG_DEFAULT_Q_RAD + rng.uniform(-0.3, 0.3, 12),
        "leg_dq_rad_s": rng.uniform(-5, 5, 12),
        "command": np.array([0.5, -0.2, 0.8]),
        "time_s": 2.5,  # 3 gait periods + 0.1 s: phase 0.125
        "prev_action": rng.uniform(-1, 1, 12)}


def _expected_obs(i) -> np.ndarray:
    """Unitree's layout (unitree_rl_gym deploy_mujoco.py / g1.yaml), written out independently."""
    pitch = 0.3
    phase = 0.125
    return np.concatenate([
        i["base_ang_vel_rad_s"] * 0.25, [np.sin(pitch), 0.0, -np.cos(pitch)], i["command"] * [2.0, 2.0, 0.25],
        i["leg_q_rad"] - [-0.1, 0, 0, 0.3, -0.2, 0] * 2, i["leg_dq_rad_s"] * 0.05, i["prev_action"],
        [np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)]])


def test_observation_layout_and_scales():
    i = _inputs()
    obs = build_leg_observation(**i)
    assert obs.shape == (OBS_DIM,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs, _expected_obs(i), atol=1e-6)


@pytest.mark.parametrize("start", [0, 12, 24, 35])
def test_the_policy_receives_the_observation_and_its_actions_become_targets(tmp_path, start):
    """Four overlapping 12-value windows cover all 47 observation entries, through TorchScript."""
    policy = LegPolicy(_scripted(_Slice(start), tmp_path / f"slice{start}.pt"))
    i = _inputs()
    targets = policy.step(build_leg_observation(**i))
    window = _expected_obs(i)[start:start + 12]
    np.testing.assert_allclose(policy.last_action, window, atol=1e-6)
    np.testing.assert_allclose(targets, LEG_DEFAULT_Q_RAD + ACTION_SCALE_RAD * window, atol=1e-6)
    assert ACTION_SCALE_RAD == 0.25
    np.testing.assert_array_equal(LEG_KP_NM_PER_RAD, [100, 100, 100, 150, 40, 40] * 2)
    np.testing.assert_array_equal(LEG_KD_NM_S_PER_RAD, [2, 2, 2, 4, 2, 2] * 2)


def test_controller_feeds_back_the_previous_action_and_starts_the_gait_clock(tmp_path):
    ctl = LegController(LegPolicy(_scripted(_Slice(35), tmp_path / "s.pt")))  # obs[35:47]: prev action[2:], phase
    state = {"base_ang_vel_rad_s": np.zeros(3), "base_quat_wxyz": [1, 0, 0, 0], "leg_q_rad": LEG_DEFAULT_Q_RAD,
             "leg_dq_rad_s": np.zeros(12), "desired_command": np.zeros(3)}
    first = ctl.tick(100.3, **state)  # the clock starts here: phase 0 -> sin 0, cos 1
    np.testing.assert_allclose(ctl.policy.last_action[-2:], [0.0, 1.0], atol=1e-6)
    ctl.tick(100.5, **state)  # phase 0.25
    a = ctl.policy.last_action
    np.testing.assert_allclose(a[:10], (first.q_target_rad - LEG_DEFAULT_Q_RAD)[2:] / ACTION_SCALE_RAD, atol=1e-6)
    np.testing.assert_allclose(a[-2:], [1.0, 0.0], atol=1e-6)


def test_reset_clears_the_recurrent_state(tmp_path):
    policy = LegPolicy(_scripted(_Counter(), tmp_path / "counter.pt"))
    assert policy.recurrent
    obs = np.zeros(OBS_DIM)
    assert [policy.step(obs)[0] for _ in range(3)] == pytest.approx(LEG_DEFAULT_Q_RAD[0] + 0.25 * np.array([1, 2, 3]))
    policy.reset()
    assert policy.step(obs)[0] == pytest.approx(LEG_DEFAULT_Q_RAD[0] + 0.25)
    np.testing.assert_array_equal(LegPolicy(_scripted(_Slice(0), tmp_path / "s.pt")).recurrent, False)


@pytest.mark.parametrize("field,value,message", [
    ("leg_q_rad", np.zeros(11), r"leg_q_rad: expected shape \(12,\)"),
    ("leg_dq_rad_s", np.full(12, np.nan), "leg_dq_rad_s: expected finite"),
    ("base_quat_wxyz", [0.5, 0, 0, 0], "unit quaternion"),
    ("command", [0.1, 0.2], r"command: expected shape \(3,\)"),
    ("time_s", float("inf"), "time_s: expected finite"),
    ("prev_action", "abc", "prev_action: expected 12 numbers"),
])
def test_observation_inputs_are_validated(field, value, message):
    i = _inputs()
    i[field] = value
    with pytest.raises(ValueError, match=message):
        build_leg_observation(**i)


def test_step_rejects_a_bad_observation(tmp_path):
    policy = LegPolicy(_scripted(_Slice(0), tmp_path / "s.pt"))
    with pytest.raises(ValueError, match=r"obs: expected shape \(47,\)"):
        policy.step(np.zeros(48))


# --- the real policy in MuJoCo, no band ------------------------------------------------------

def _stand(seconds: float, policy: LegPolicy | None, tilt_quat: bool = False) -> tuple[float, float]:
    """Lowest pelvis height (m) and largest tilt (deg) over ``seconds`` on the band-less G1."""
    import mujoco

    from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP
    from exoactor.g1.lowcmd import LowCmdFrame
    from exoactor.g1.model import joint_qpos_addresses
    from exoactor.sim.g1_sim import ElasticBand, G1Simulator

    sim = G1Simulator(band=ElasticBand(enabled=False), scene_objects=False)
    m, d = sim.model, sim.data
    hold = np.zeros(29)
    hold[:12] = LEG_DEFAULT_Q_RAD
    d.qpos[joint_qpos_addresses(m)] = hold
    for _ in range(300):  # feet onto the floor
        mujoco.mj_forward(m, d)
        if d.ncon:
            break
        d.qpos[2] -= 0.001
    cmd = LowCmdFrame()
    cmd.mode[:29] = 1
    cmd.q[:29] = hold
    cmd.kp[:12], cmd.kd[:12] = LEG_KP_NM_PER_RAD, LEG_KD_NM_S_PER_RAD
    cmd.kp[12:29], cmd.kd[12:29] = DEFAULT_KP[12:], DEFAULT_KD[12:]
    cmd.kp[12:15], cmd.kd[12:15] = WAIST_HOLD_KP_NM_PER_RAD, WAIST_HOLD_KD_NM_S_PER_RAD
    ctl = LegController(policy, VelocityOuterLoop()) if policy is not None else None
    if ctl is not None:
        ctl.reset()
    low, tilt = np.inf, 0.0
    for k in range(round(seconds / 0.02)):
        st = sim.state()
        if ctl is not None:
            quat = st.imu_quat_wxyz * ([1, -1, -1, 1] if tilt_quat else 1)  # mirrored roll and pitch
            vel_body = body_velocity(d.qvel[0:3], d.qvel[3:6], d.qpos[3:7])  # ground-truth odometry
            cmd.q[:12] = ctl.tick(k * 0.02, st.imu_gyro_rad_s, quat, st.q_rad[:12], st.dq_rad_s[:12], np.zeros(3),
                                  measured_velocity=vel_body).q_target_rad
        sim.set_command(cmd)
        sim.step(10)
        low = min(low, float(d.qpos[2]))
        tilt = max(tilt, float(np.degrees(np.arccos(-projected_gravity(d.qpos[3:7])[2]))))
    return low, tilt


@pytest.mark.skipif(not MOTION_PT.is_file(), reason=f"Unitree's motion.pt is not at {MOTION_PT}")
def test_motion_pt_keeps_the_bandless_g1_upright():
    policy = LegPolicy(MOTION_PT)
    assert policy.recurrent  # an LSTM whose state lives in the module
    low, tilt = _stand(3.0, policy)
    assert low > 0.70 and tilt < 15.0, (low, tilt)
    # Controls (the same 3 s): without the policy, or with the tilt it sees mirrored, the robot falls.
    assert _stand(3.0, None)[0] < 0.5
    policy.reset()
    assert _stand(3.0, policy, tilt_quat=True)[0] < 0.5


@pytest.mark.skipif(not MOTION_PT.is_file(), reason=f"Unitree's motion.pt is not at {MOTION_PT}")
def test_motion_pt_reset_makes_it_repeatable():
    policy = LegPolicy(MOTION_PT)
    obs = build_leg_observation(**_inputs())
    first = [policy.step(obs) for _ in range(3)]
    assert not np.allclose(first[0], first[1])  # recurrent: the same observation, another action
    policy.reset()
    np.testing.assert_allclose([policy.step(obs) for _ in range(3)], first, atol=1e-6)


# --- velocity commands from a root trajectory -------------------------------------------------

FPS = 30.0


def _commands(pos_xy: np.ndarray, yaw: np.ndarray, z_noise_m: float = 0.0, **kw) -> np.ndarray:
    pos = np.column_stack([pos_xy, np.full(len(yaw), 0.9)])
    pos[:, 2] += z_noise_m
    return base_velocity_commands(pos, yaw_to_quat_wxyz(yaw), FPS, **kw)


def test_straight_walk_gives_forward_speed_in_the_body_frame():
    t = np.arange(0, 4, 1 / FPS)
    heading = np.radians(30.0)
    xy = 0.6 * t[:, None] * [np.cos(heading), np.sin(heading)]
    mid = slice(15, -15)
    cmd = _commands(xy, np.full(len(t), heading))
    np.testing.assert_allclose(cmd[mid], np.tile([0.6, 0.0, 0.0], (len(t) - 30, 1)), atol=1e-3)
    side = _commands(xy, np.full(len(t), heading + np.pi / 2))  # facing left of the motion: stepping right
    np.testing.assert_allclose(side[mid], np.tile([0.0, -0.6, 0.0], (len(t) - 30, 1)), atol=1e-3)
    assert needs_locomotion(cmd)


def test_walking_a_circle_gives_speed_and_yaw_rate_across_the_heading_wrap():
    t = np.arange(0, 6, 1 / FPS)
    w, r = 0.8, 0.5  # rad/s, m: counter-clockwise, heading tangent, crossing +-pi
    ang = w * t + 1.0  # heading 2.57 rad rising through pi
    xy = r * np.column_stack([np.cos(ang), np.sin(ang)])
    yaw = np.arctan2(np.sin(ang + np.pi / 2), np.cos(ang + np.pi / 2))
    cmd = _commands(xy, yaw, smoothing_s=0.1)
    np.testing.assert_allclose(cmd[15:-15], np.tile([r * w, 0.0, w], (len(t) - 30, 1)), atol=0.01)


def test_turning_in_place_and_standing_still():
    t = np.arange(0, 3, 1 / FPS)
    turn = _commands(np.zeros((len(t), 2)), -0.5 * t)
    np.testing.assert_allclose(turn[15:-15], np.tile([0.0, 0.0, -0.5], (len(t) - 30, 1)), atol=1e-3)
    rng = np.random.default_rng(0)  # a person waving: the pelvis sways a few cm, jitters, turns a little
    sway = np.column_stack([0.03 * np.sin(2 * np.pi * 0.5 * t), 0.02 * np.sin(2 * np.pi * 0.7 * t)])
    still = _commands(sway + rng.normal(0, 0.005, (len(t), 2)), 0.05 * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0, 0.01, len(t)))
    assert not still.any() and not needs_locomotion(still)
    raw = _commands(sway, 0.05 * np.sin(2 * np.pi * 0.3 * t), lin_deadband_m_s=0.0, yaw_deadband_rad_s=0.0)
    assert np.abs(raw).max() > 0.05  # the zeros above are the deadband's doing


@pytest.mark.parametrize("distance_m,turn_deg", [(1.0, 0.0), (0.5, 0.0), (0.0, 90.0), (0.0, -45.0), (1.2, 30.0)])
def test_commands_cover_the_whole_distance_and_turn_despite_the_deadband(distance_m, turn_deg):
    """The slow start and end of a walk or turn are below the deadband: the bout makes up for them."""
    t = np.arange(0, 5, 1 / FPS)
    s = np.clip((t - 1.0) / 3.0, 0, 1)
    ease = s * s * (3 - 2 * s)  # smoothstep: starts and stops gently, like a person
    yaw = np.radians(turn_deg) * ease
    step = np.gradient(distance_m * ease)
    xy = np.cumsum(np.column_stack([step * np.cos(yaw), step * np.sin(yaw)]), axis=0)
    cmd = _commands(xy, yaw)
    x = y = h = 0.0
    for vx, vy, wz in cmd / FPS:  # integrate the body-frame commands as the base would follow them
        x, y, h = x + np.cos(h) * vx - np.sin(h) * vy, y + np.sin(h) * vx + np.cos(h) * vy, h + wz
    assert np.hypot(x - xy[-1, 0], y - xy[-1, 1]) <= 0.03 * max(distance_m, 0.1)
    assert abs(np.degrees(h) - turn_deg) <= 0.03 * max(abs(turn_deg), 10.0)
    raw = _commands(xy, yaw, lin_deadband_m_s=0.0, yaw_deadband_rad_s=0.0)
    assert (cmd[:, 0 if distance_m else 2] == 0).any()  # the deadband did cut the ramps
    assert np.abs(cmd).max() <= RAMP_GAIN_MAX * np.abs(raw).max() + 1e-9


def test_needs_locomotion_can_ignore_blips():
    cmds = np.zeros((60, 3))
    cmds[10:13, 0] = 0.3
    assert needs_locomotion(cmds)
    assert not needs_locomotion(cmds, min_duration_s=0.5, fps=30)
    cmds[20:40, 2] = 0.5
    assert needs_locomotion(cmds, min_duration_s=0.5, fps=30)


def test_root_trajectory_is_validated():
    with pytest.raises(ValueError, match=r"root_quat_wxyz: expected shape \(5, 4\)"):
        base_velocity_commands(np.zeros((5, 3)), np.zeros((4, 4)), 30)
    with pytest.raises(ValueError, match="finite"):
        base_velocity_commands(np.full((5, 3), np.nan), np.tile([1.0, 0, 0, 0], (5, 1)), 30)
    with pytest.raises(ValueError, match="fps"):
        base_velocity_commands(np.zeros((5, 3)), np.tile([1.0, 0, 0, 0], (5, 1)), 0)


# --- outer loops on a toy robot ---------------------------------------------------------------

def _toy_run(loop, desired, drift, seconds=30.0, dt=0.02, tau_s=0.3):
    """A first-order robot: velocity follows command + drift with lag tau, plus a gait sway (0.8 s)."""
    v = np.zeros(3)
    means = []
    for k in range(int(seconds / dt)):
        sway = np.array([0.15, 0.1, 1.5]) * np.sin(2 * np.pi * k * dt / 0.8)
        measured = v + sway
        cmd = loop.update(desired, measured) if loop is not None else desired
        v = v + (cmd + drift - v) * dt / tau_s
        means.append(v)
    return np.mean(means[-250:], axis=0)  # the last 5 s


def test_outer_loop_removes_a_constant_drift():
    drift = np.array([-0.24, 0.05, -0.1])
    desired = np.array([0.3, 0.0, 0.2])
    open_loop = _toy_run(None, desired, drift)
    closed = _toy_run(VelocityOuterLoop(), desired, drift)
    np.testing.assert_allclose(open_loop, desired + drift, atol=0.01)
    np.testing.assert_allclose(closed, desired, atol=0.02)


def test_outer_loop_integral_is_clamped_and_does_not_wind_up():
    loop = VelocityOuterLoop(ki_per_s=(1.0, 1.0, 1.0), integral_limit=(0.3, 0.3, 0.3), command_limit=(1.0, 1.0, 1.0))
    for _ in range(500):  # the robot does not move at all: the error never closes
        out = loop.update([0.2, -0.9, 0.0], [0.0, 0.0, 0.0])
    assert loop.integral[0] == pytest.approx(0.3) and loop.integral[2] == 0.0
    assert -0.1 - 0.02 <= loop.integral[1] <= -0.1  # y stopped (within one step) where the command saturated
    np.testing.assert_allclose(out, [0.5, -1.0, 0.0])
    for _ in range(60):  # once it moves, the command comes back at once, not after unwinding a huge integral
        out = loop.update([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert np.all(np.abs(out) <= 0.3 + 1e-9)


def test_path_tracker_brings_a_drifting_robot_to_the_commanded_pose():
    dt, tau = 0.02, 0.3
    tracker = BasePathTracker()
    pose = np.zeros(3)
    v = np.zeros(3)
    drift = np.array([-0.15, 0.05, 0.0])
    for k in range(int(8.0 / dt)):
        desired = np.array([0.5, 0.0, 0.0]) if k * dt < 2.0 else np.zeros(3)
        cmd = tracker.update(desired, pose)
        v = v + (cmd + drift - v) * dt / tau
        c, s = np.cos(pose[2]), np.sin(pose[2])
        pose = pose + np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]]) * dt
    np.testing.assert_allclose(pose[:2], [1.0, 0.0], atol=0.2)  # drift/k offset at most
    untracked = np.array([0.5 * 2.0, 0.0]) + drift[:2] * 8.0
    assert np.linalg.norm(pose[:2] - [1.0, 0.0]) < 0.2 * np.linalg.norm(untracked - [1.0, 0.0])


# --- the numpy network (the 500 Hz loop's thread runs it instead of TorchScript) ------------------

class _LstmActor(torch.nn.Module):
    """The structure of Unitree's motion.pt (LSTM memory with its state in buffers, Linear-ELU-Linear
    actor), smaller and with random weights."""

    def __init__(self, hidden: int = 16, alpha: float = 1.0, actor_hidden: int = 8):
        super().__init__()
        torch.manual_seed(hidden)
        self.memory = torch.nn.LSTM(OBS_DIM, hidden)
        self.actor = torch.nn.Sequential(torch.nn.Linear(hidden, actor_hidden), torch.nn.ELU(alpha),
                                         torch.nn.Linear(actor_hidden, 12))
        self.register_buffer("hidden_state", torch.zeros(1, 1, hidden))
        self.register_buffer("cell_state", torch.zeros(1, 1, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, (h, c) = self.memory(x.unsqueeze(0), (self.hidden_state, self.cell_state))
        self.hidden_state.copy_(h)
        self.cell_state.copy_(c)
        return self.actor(out.squeeze(0))

    @torch.jit.export
    def reset_memory(self):
        self.hidden_state.zero_()
        self.cell_state.zero_()


def _same_actions_as_torchscript(policy: LegPolicy, steps: int = 300) -> float:
    """Largest difference between the numpy network's and the TorchScript module's actions over a
    sequence (recurrent state included), both from a reset."""
    rng = np.random.default_rng(5)
    policy.reset()
    worst = 0.0
    for _ in range(steps):
        obs = (rng.standard_normal(OBS_DIM) * rng.uniform(0.1, 2.0)).astype(np.float32)
        worst = max(worst, float(np.abs(policy.fast.step(obs) - policy._run(obs)).max()))
    return worst


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_an_lstm_actor_policy_runs_in_numpy_with_the_same_actions(tmp_path, alpha):
    policy = LegPolicy(_scripted(_LstmActor(alpha=alpha), tmp_path / "lstm.pt"))
    assert policy.fast is not None
    assert _same_actions_as_torchscript(policy) < 1e-5
    obs = build_leg_observation(**_inputs())
    policy.reset()
    first = [policy.step(obs) for _ in range(3)]
    assert not np.allclose(first[0], first[1])  # the numpy path is recurrent too, and reset clears it
    policy.reset()
    np.testing.assert_allclose([policy.step(obs) for _ in range(3)], first, atol=1e-7)


def test_a_policy_of_another_structure_stays_on_torchscript(tmp_path):
    assert LegPolicy(_scripted(_Slice(0), tmp_path / "slice.pt")).fast is None
    assert LegPolicy(_scripted(_Counter(), tmp_path / "counter.pt")).fast is None


@pytest.mark.skipif(not MOTION_PT.is_file(), reason=f"Unitree's motion.pt is not at {MOTION_PT}")
def test_motion_pt_runs_in_numpy_with_the_same_actions():
    policy = LegPolicy(MOTION_PT)
    assert policy.fast is not None and _same_actions_as_torchscript(policy) < 1e-4
