"""Balance and locomotion of the G1's legs with Unitree's pre-trained policy (unitree_rl_gym).

The policy (``motion.pt``, TorchScript) maps a 47-value observation to 12 leg actions every 20 ms
(50 Hz; physics and motor PD at 500 Hz). It is recurrent: an LSTM (64 units) whose hidden and cell
states live in the module's buffers and change on every call; :meth:`LegPolicy.reset` clears them
(``reset_memory``) and must be called whenever the robot starts afresh.

Constants follow Unitree's deploy configuration (``deploy/deploy_mujoco/configs/g1.yaml``); all
joint arrays are the 12 leg joints in Unitree motor order (left hip pitch, hip roll, hip yaw,
knee, ankle pitch, ankle roll, then right). Quaternions are (w, x, y, z). Commands are body-frame
``[vx m/s, vy m/s, yaw rate rad/s]``.

It was trained on a 12-DoF G1 with a rigid torso and the arms at zero: on the 29-DoF robot the
waist must be held stiff and well damped (WAIST_HOLD_KP/KD; DEFAULT_KP/KD's waist gains let the
torso sway and the Menagerie G1 falls within ~2 s; kp 200, kd 5 drifts ~0.2 m/s). Even then the
policy alone drifts a few cm/s, coasts past a stop and under-shoots side steps, so two optional
outer loops run on odometry: :class:`BasePathTracker` (pose error against the integrated command)
and :class:`VelocityOuterLoop` (integral of the body-frame velocity error). :class:`LegController`
chains them with the policy. :func:`base_velocity_commands` derives the commands from a retargeted
root trajectory. No ROS here; torch is imported when a policy is loaded.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from exoactor.finite import all_finite

NUM_LEG_JOINTS = 12
"""Leg motors (Unitree motor order 0..11) driven by the policy."""
OBS_DIM = 47
"""Observation length: 3 + 3 + 3 + 12 + 12 + 12 + 2."""

LEG_DEFAULT_Q_RAD = np.array([-0.1, 0.0, 0.0, 0.3, -0.2, 0.0] * 2)
"""Default (nominal) leg pose, rad: ``q_target = LEG_DEFAULT_Q_RAD + ACTION_SCALE_RAD * action``."""
LEG_KP_NM_PER_RAD = np.array([100.0, 100.0, 100.0, 150.0, 40.0, 40.0] * 2)
"""Position gains the policy was trained with, N*m/rad."""
LEG_KD_NM_S_PER_RAD = np.array([2.0, 2.0, 2.0, 4.0, 2.0, 2.0] * 2)
"""Velocity gains the policy was trained with (no velocity target), N*m*s/rad."""
ACTION_SCALE_RAD = 0.25
"""Radians of joint target per unit of action."""
ANG_VEL_OBS_SCALE_S_PER_RAD = 0.25
"""Observation units per rad/s of base angular velocity."""
DOF_POS_OBS_SCALE_PER_RAD = 1.0
"""Observation units per rad of leg joint position (minus the default)."""
DOF_VEL_OBS_SCALE_S_PER_RAD = 0.05
"""Observation units per rad/s of leg joint velocity."""
COMMAND_OBS_SCALE = np.array([2.0, 2.0, 0.25])
"""Observation units per (m/s, m/s, rad/s) of the command [vx, vy, yaw rate]."""
GAIT_PERIOD_S = 0.8
"""Period of the gait clock: phase = (t mod GAIT_PERIOD_S) / GAIT_PERIOD_S."""
POLICY_DT_S = 0.02
"""Policy period (50 Hz)."""
PHYSICS_DT_S = 0.002
"""Physics / motor PD period the policy was trained and deployed with (500 Hz)."""
WAIST_HOLD_KP_NM_PER_RAD = 300.0
"""Waist (motors 12-14) hold gain while the policy runs (Unitree's deploy_real for the 29-DoF G1)."""
WAIST_HOLD_KD_NM_S_PER_RAD = 8.0
"""Waist hold damping. The policy was trained with a rigid torso: with DEFAULT_KD's 1 (or Unitree's 3)
the torso sways and the Menagerie G1 falls within about 2 s, or drifts metres; 8 (the damping kd,
within the safety layer's kd_max) and 10 hold it (benchmarks/legs.py, --waist-kd)."""
COMMAND_LIMITS = np.array([1.0, 1.0, 1.0])
"""Largest |command| fed to the policy: [m/s, m/s, rad/s] (legged_gym's default command ranges; the
benchmarks use at most 0.8)."""

ENV_POLICY_PATH = "EXOACTOR_LEG_POLICY"
"""Environment variable naming motion.pt (see :func:`default_policy_path`)."""


class LegPolicyError(RuntimeError):
    """The leg policy cannot be loaded or was given (or gave) values outside its interface."""


def default_policy_path() -> Path:
    """``$EXOACTOR_LEG_POLICY``, else ``../shared/assets/unitree_rl_gym/g1/motion.pt`` beside the repository."""
    env = os.environ.get(ENV_POLICY_PATH)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3].parent / "shared" / "assets" / "unitree_rl_gym" / "g1" / "motion.pt"


def _vector(name: str, value, n: int) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype == np.float64 and value.shape == (n,):
        a = value  # the 50 Hz path inside the control loop: no conversion
    else:
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: expected {n} numbers, got {value!r}") from e
        if a.shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},), got {a.shape}")
    if not all_finite(a):
        raise ValueError(f"{name}: expected finite values, got {a}")
    return a


def projected_gravity(quat_wxyz) -> np.ndarray:
    """Unit gravity direction (3,) in the body frame of orientation ``quat_wxyz`` ((0, 0, -1) upright)."""
    w, x, y, z = np.asarray(quat_wxyz, dtype=np.float64) / np.linalg.norm(quat_wxyz)
    return np.array([2 * (w * y - x * z), -2 * (y * z + w * x), 1 - 2 * (w * w + z * z)])


def build_leg_observation(base_ang_vel_rad_s, base_quat_wxyz, leg_q_rad, leg_dq_rad_s, command,
                          time_s: float, prev_action) -> np.ndarray:
    """The policy's observation (47,) float32, validated (shapes, finite values, unit quaternion).

    ``base_ang_vel_rad_s`` (3,) pelvis angular velocity in the pelvis frame (IMU gyro);
    ``base_quat_wxyz`` (4,) pelvis/IMU orientation in the world; ``leg_q_rad``/``leg_dq_rad_s`` (12,)
    leg joints in motor order; ``command`` (3,) body-frame [vx m/s, vy m/s, yaw rate rad/s];
    ``time_s`` time since the policy started (drives the gait clock); ``prev_action`` (12,) the
    policy's previous raw action (zeros at start). Layout: gyro x 0.25, projected gravity,
    command x [2, 2, 0.25], q - default, dq x 0.05, previous action, sin and cos of 2 pi phase.
    """
    omega = _vector("base_ang_vel_rad_s", base_ang_vel_rad_s, 3)
    quat = _vector("base_quat_wxyz", base_quat_wxyz, 4)
    norm = float(np.linalg.norm(quat))
    if abs(norm - 1.0) > 0.05:
        raise ValueError(f"base_quat_wxyz: expected a unit quaternion (w, x, y, z), got norm {norm:.3f}")
    q = _vector("leg_q_rad", leg_q_rad, NUM_LEG_JOINTS)
    dq = _vector("leg_dq_rad_s", leg_dq_rad_s, NUM_LEG_JOINTS)
    cmd = _vector("command", command, 3)
    prev = _vector("prev_action", prev_action, NUM_LEG_JOINTS)
    t = float(_vector("time_s", [time_s], 1)[0])
    if t < 0:
        raise ValueError(f"time_s: expected >= 0, got {t}")
    phase = (t % GAIT_PERIOD_S) / GAIT_PERIOD_S
    return np.concatenate([
        omega * ANG_VEL_OBS_SCALE_S_PER_RAD, projected_gravity(quat), cmd * COMMAND_OBS_SCALE,
        (q - LEG_DEFAULT_Q_RAD) * DOF_POS_OBS_SCALE_PER_RAD, dq * DOF_VEL_OBS_SCALE_S_PER_RAD, prev,
        [np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)]]).astype(np.float32)


class LegPolicy:
    """Unitree's TorchScript leg policy: observation (47,) -> leg joint targets (12,) rad.

    Loading runs one trial call to check the interface (47 in, 12 out), then resets. Stateful
    (recurrent): call :meth:`step` once per 20 ms tick, in order; :meth:`reset` before a new start.
    Not thread-safe.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        import torch  # noqa: PLC0415

        self._torch = torch
        # One intra-op thread: the policy is tiny, and it runs inside the control thread, which must
        # not wait for a pool of worker threads at normal priority.
        torch.set_num_threads(1)
        self.path = Path(path) if path is not None else default_policy_path()
        if not self.path.is_file():
            raise LegPolicyError(
                f"leg policy not found: expected a TorchScript file (Unitree's motion.pt) at {self.path}, "
                f"got {'a directory' if self.path.is_dir() else 'nothing'}; set ${ENV_POLICY_PATH} or pass the path")
        try:
            with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript; Unitree ships it
                warnings.simplefilter("ignore", DeprecationWarning)
                self._module = torch.jit.load(str(self.path), map_location="cpu")
        except Exception as e:  # torch raises RuntimeError/ValueError/zipfile errors by input kind
            raise LegPolicyError(
                f"leg policy {self.path}: expected a TorchScript archive (torch.jit.save), "
                f"got a file torch.jit.load rejects ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
        self._module.eval()
        self.recurrent = hasattr(self._module, "reset_memory")
        """Whether the module keeps a hidden state between calls (it has ``reset_memory``)."""
        self.last_action = np.zeros(NUM_LEG_JOINTS)
        """Raw action (12,) of the latest :meth:`step` (zeros after :meth:`reset`): the next observation's
        ``prev_action``."""
        self._run(np.zeros(OBS_DIM, dtype=np.float32))  # interface check
        self.fast: _LstmMlp | None = _LstmMlp.matching(self._module, self._run, self.reset)
        """The same network in numpy (~10x cheaper per call than TorchScript in the 500 Hz loop's
        thread), used only when it reproduced the module's actions on a test sequence at load."""
        self.reset()

    def reset(self) -> None:
        """Clear the recurrent state and the previous action (a fresh start)."""
        if self.recurrent:
            self._module.reset_memory()
        if getattr(self, "fast", None) is not None:
            self.fast.reset()
        self.last_action = np.zeros(NUM_LEG_JOINTS)

    def _run(self, obs: np.ndarray) -> np.ndarray:
        torch = self._torch
        try:
            with torch.inference_mode():
                out = self._module(torch.from_numpy(obs).reshape(1, OBS_DIM))
        except Exception as e:
            raise LegPolicyError(
                f"leg policy {self.path.name}: expected a module mapping a (1, {OBS_DIM}) float32 observation "
                f"to {NUM_LEG_JOINTS} actions; calling it failed ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:200] if str(e) else ''})") from e
        if not isinstance(out, torch.Tensor) or out.numel() != NUM_LEG_JOINTS:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise LegPolicyError(
                f"leg policy {self.path.name}: expected {NUM_LEG_JOINTS} actions per call, got {got}")
        action = out.detach().reshape(NUM_LEG_JOINTS).double().numpy().copy()
        if not np.all(np.isfinite(action)):
            raise LegPolicyError(f"leg policy {self.path.name}: returned non-finite actions {action}")
        return action

    def step(self, obs) -> np.ndarray:
        """Leg joint position targets (12,) rad, motor order 0..11, for observation ``obs`` (47,)
        (see :func:`build_leg_observation`). Advances the recurrent state; sets :attr:`last_action`."""
        obs = _vector("obs", obs, OBS_DIM).astype(np.float32)
        if self.fast is not None:
            action = self.fast.step(obs)
            if not np.all(np.isfinite(action)):
                raise LegPolicyError(f"leg policy {self.path.name}: returned non-finite actions {action}")
            self.last_action = action
        else:
            self.last_action = self._run(obs)
        return LEG_DEFAULT_Q_RAD + ACTION_SCALE_RAD * self.last_action


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class _LstmMlp:
    """One-layer LSTM, then an MLP of Linear and ELU layers, in float32 numpy: the network Unitree's
    ``motion.pt`` is (``memory`` nn.LSTM(47, 64), ``actor`` Linear-ELU-Linear), read from the
    module's parameters. PyTorch's gate order (input, forget, cell, output)."""

    def __init__(self, w_ih, w_hh, b, layers):
        self.w_ih, self.w_hh, self.b = w_ih, w_hh, b
        self.layers = layers
        """[(weight, bias, elu alpha or None)] in order."""
        self.hidden = w_hh.shape[1]
        self.reset()

    def reset(self) -> None:
        self.h = np.zeros(self.hidden, np.float32)
        self.c = np.zeros(self.hidden, np.float32)

    def step(self, obs: np.ndarray) -> np.ndarray:
        n = self.hidden
        g = self.w_ih @ obs + self.w_hh @ self.h + self.b
        i, f, o = _sigmoid(g[:n]), _sigmoid(g[n:2 * n]), _sigmoid(g[3 * n:])
        self.c = f * self.c + i * np.tanh(g[2 * n:3 * n])
        self.h = o * np.tanh(self.c)
        x = self.h
        for w, bias, alpha in self.layers:
            x = w @ x + bias
            if alpha is not None:
                x = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
        return x.astype(np.float64)

    @classmethod
    def matching(cls, module, run_module, reset_module, steps: int = 200, tol: float = 1e-4) -> _LstmMlp | None:
        """The numpy network for ``module`` if it has that structure AND reproduces ``run_module``'s
        actions on a seeded sequence of observations (from a reset, so the recurrent state is
        compared too); None otherwise (the caller keeps TorchScript)."""
        try:
            kids = dict(module.named_children())
            mem, actor = kids.get("memory"), kids.get("actor")
            if set(kids) != {"memory", "actor"} or getattr(mem, "original_name", "") != "LSTM" or \
                    getattr(actor, "original_name", "") != "Sequential" or int(mem.num_layers) != 1 or \
                    bool(getattr(mem, "bidirectional", False)) or int(getattr(mem, "proj_size", 0)):
                return None
            sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in module.state_dict().items()}
            layers = []
            for name, layer in actor.named_children():
                kind = getattr(layer, "original_name", "")
                if kind == "Linear":
                    layers.append([sd[f"actor.{name}.weight"], sd[f"actor.{name}.bias"], None])
                elif kind == "ELU" and layers and layers[-1][2] is None:
                    layers[-1][2] = np.float32(getattr(layer, "alpha", 1.0))
                else:
                    return None
            net = cls(sd["memory.weight_ih_l0"], sd["memory.weight_hh_l0"],
                      sd["memory.bias_ih_l0"] + sd["memory.bias_hh_l0"], [tuple(x) for x in layers])
            rng = np.random.default_rng(0)
            reset_module()
            for k in range(steps):
                obs = (rng.standard_normal(OBS_DIM) * (0.2 + k % 5 * 0.3)).astype(np.float32)
                if not np.allclose(net.step(obs), run_module(obs), atol=tol, rtol=0):
                    return None
            return net
        except Exception:  # noqa: BLE001 - any surprise: TorchScript stays in charge
            return None
        finally:
            reset_module()


class VelocityOuterLoop:
    """PI outer loop on the body-frame velocity: the command to feed the policy so the robot moves
    at the desired velocity (removes the policy's drift and under-shoot on this model).

    The measured velocity is first averaged over ``window_s`` (default one gait period: the
    pelvis sways and yaws with every step, +-0.2 m/s and +-2 rad/s, and a full-period mean removes
    that exactly). Then ``e = desired - mean measured``, ``integral += ki * e * dt`` and
    ``command = desired + kp * e + integral``; the integral is clamped to ``+-integral_limit`` and
    does not grow while the command saturates at ``+-command_limit`` in the direction of the error
    (anti-windup). Vectors are [vx m/s, vy m/s, yaw rate rad/s].

    Defaults (tuned on the Menagerie G1 behind :class:`BasePathTracker`, benchmarks/legs.py):
    ``ki = (0.2, 0.2, 0.2)`` 1/s (0.5 removes drift faster when used alone, but behind the path
    tracker it winds up while the robot accelerates and the robot overshoots a 1 m walk by 30 cm),
    ``kp = (0, 0, 0)`` (the averaged measurement lags by half a gait period; proportional action on
    it only adds oscillation), ``integral_limit = (0.3, 0.3, 0.3)`` (the policy alone drifts up to
    ~0.25 m/s), ``command_limit = COMMAND_LIMITS``.
    """

    def __init__(self, ki_per_s=(0.2, 0.2, 0.2), kp=(0.0, 0.0, 0.0), integral_limit=(0.3, 0.3, 0.3),
                 command_limit=COMMAND_LIMITS, dt_s: float = POLICY_DT_S, window_s: float = GAIT_PERIOD_S):
        self.ki_per_s = _vector("ki_per_s", ki_per_s, 3)
        self.kp = _vector("kp", kp, 3)
        self.integral_limit = np.abs(_vector("integral_limit", integral_limit, 3))
        self.command_limit = np.abs(_vector("command_limit", command_limit, 3))
        if not dt_s > 0:
            raise ValueError(f"dt_s: expected > 0, got {dt_s}")
        if not window_s >= 0:
            raise ValueError(f"window_s: expected >= 0, got {window_s}")
        self.dt_s = float(dt_s)
        self.window = max(1, round(window_s / self.dt_s))
        """Number of measurements averaged."""
        self.reset()

    def reset(self, integral=None) -> None:
        """Zero the integral (or set it, e.g. to a known drift compensation) and forget the measurements."""
        self.integral = np.zeros(3) if integral is None else np.clip(
            _vector("integral", integral, 3), -self.integral_limit, self.integral_limit)
        """Current integral term [m/s, m/s, rad/s]."""
        self._samples = np.zeros((self.window, 3))
        self._count = 0

    @property
    def measured_mean(self) -> np.ndarray:
        """The averaged measured velocity (3,) the loop acts on (zeros before the first update)."""
        n = min(self._count, self.window)
        return self._samples[:n].mean(axis=0) if n else np.zeros(3)

    def update(self, desired, measured, dt_s: float | None = None) -> np.ndarray:
        """Command (3,) for the policy, given the desired and the measured body-frame velocity (3,),
        once per policy tick (``dt_s`` defaults to the constructor's)."""
        desired = _vector("desired", desired, 3)
        self._samples[self._count % self.window] = _vector("measured", measured, 3)
        self._count += 1
        err = desired - self.measured_mean
        dt = self.dt_s if dt_s is None else float(dt_s)
        raw = desired + self.kp * err + self.integral
        saturated = (np.abs(raw) >= self.command_limit) & (np.sign(raw) == np.sign(err))
        self.integral = np.where(saturated, self.integral,
                                 np.clip(self.integral + self.ki_per_s * err * dt, -self.integral_limit,
                                         self.integral_limit))
        return np.clip(desired + self.kp * err + self.integral, -self.command_limit, self.command_limit)


class BasePathTracker:
    """Makes the base follow the path its velocity commands describe, not just their speed.

    The reference planar pose (x, y, heading) integrates the desired body-frame command; the output
    is that command (rotated into the measured heading) plus ``k_per_s`` times the pose error,
    expressed in the measured heading frame and clamped to ``+-max_correction``. The robot thus
    ends where the commands lead (it stops on the target instead of coasting past it, and holds its
    place against drift while the command is zero). Feed its output to :class:`VelocityOuterLoop`.
    The measured pose is averaged over ``window_s`` (the pelvis sways with every step).

    Defaults (benchmarks/legs.py): ``k_per_s = (1.0, 1.0, 1.0)`` 1/s, ``max_correction =
    (0.3, 0.2, 0.5)`` [m/s, m/s, rad/s], ``window_s`` one gait period.
    """

    def __init__(self, k_per_s=(1.0, 1.0, 1.0), max_correction=(0.3, 0.2, 0.5), dt_s: float = POLICY_DT_S,
                 window_s: float = GAIT_PERIOD_S):
        self.k_per_s = _vector("k_per_s", k_per_s, 3)
        self.max_correction = np.abs(_vector("max_correction", max_correction, 3))
        if not dt_s > 0:
            raise ValueError(f"dt_s: expected > 0, got {dt_s}")
        self.dt_s = float(dt_s)
        self.window = max(1, round(window_s / self.dt_s))
        self.reference: np.ndarray | None = None
        """Reference pose [x m, y m, heading rad] in the world (None before the first update)."""
        self._samples: list[np.ndarray] = []

    def reset(self) -> None:
        """Forget the reference: the next update starts it at the measured pose."""
        self.reference = None
        self._samples = []

    def update(self, desired, pose_world) -> np.ndarray:
        """Body-frame command (3,) given the desired one (3,) and the measured planar pose
        [x m, y m, heading rad] (odometry), once per policy tick."""
        desired = _vector("desired", desired, 3)
        pose = _vector("pose_world", pose_world, 3)
        if self._samples:  # unwrap the heading against the previous sample before averaging
            prev = self._samples[-1][2]  # measured heading of the previous tick
            pose[2] = prev + (pose[2] - prev + np.pi) % (2 * np.pi) - np.pi
        if self.reference is None:
            self.reference = pose.copy()
        ref = self.reference
        c, s = np.cos(ref[2]), np.sin(ref[2])
        ref[0] += (c * desired[0] - s * desired[1]) * self.dt_s
        ref[1] += (s * desired[0] + c * desired[1]) * self.dt_s
        ref[2] += desired[2] * self.dt_s
        # Both averaged over the same window: the error carries no averaging lag.
        self._samples = (self._samples + [np.concatenate([pose, ref])])[-self.window:]
        mean = np.mean(self._samples, axis=0)
        meas, ref_mean = mean[:3], mean[3:]
        dyaw = ref[2] - meas[2]
        cm, sm = np.cos(meas[2]), np.sin(meas[2])
        ex, ey = ref_mean[0] - meas[0], ref_mean[1] - meas[1]
        err = np.array([cm * ex + sm * ey, -sm * ex + cm * ey, ref_mean[2] - meas[2]])
        cd, sd = np.cos(dyaw), np.sin(dyaw)
        ff = np.array([cd * desired[0] - sd * desired[1], sd * desired[0] + cd * desired[1], desired[2]])
        return ff + np.clip(self.k_per_s * err, -self.max_correction, self.max_correction)


def body_velocity(lin_vel_world_m_s, ang_vel_body_rad_s, base_quat_wxyz) -> np.ndarray:
    """Measured [vx, vy, yaw rate] in the heading frame (yaw-only body frame) from odometry: linear
    velocity in the world (3,), angular velocity in the body (3,), base orientation (4,) wxyz."""
    # One vector at 50 Hz inside the control loop: scalar math (numpy's per-call cost dominates here).
    w, x, y, z = _vector("base_quat_wxyz", base_quat_wxyz, 4).tolist()
    vx, vy, _ = _vector("lin_vel_world_m_s", lin_vel_world_m_s, 3).tolist()
    ox, oy, oz = _vector("ang_vel_body_rad_s", ang_vel_body_rad_s, 3).tolist()
    n2 = w * w + x * x + y * y + z * z
    # world z of the body angular velocity: row 2 of the rotation matrix (normalised by |q|^2)
    wz = (2 * (x * z - y * w) * ox + 2 * (y * z + x * w) * oy + (n2 - 2 * (x * x + y * y)) * oz) / n2
    yaw = math.atan2(2 * (x * y + z * w), n2 - 2 * (y * y + z * z))  # as _yaw: the body x axis on the floor
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([c * vx + s * vy, -s * vx + c * vy, wz])


def _yaw(quat_wxyz: np.ndarray) -> np.ndarray:
    """Heading (T,) rad of (T, 4) quaternions wxyz: the yaw of the body x axis projected on the floor."""
    w, x, y, z = np.moveaxis(quat_wxyz, -1, 0)
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian smoothing along axis 0; the edges are extended by point reflection (odd), which keeps
    a constant velocity at the clip's ends instead of slowing it down."""
    if sigma_frames <= 0 or len(x) < 2:
        return x.copy()
    r = int(np.ceil(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    k /= k.sum()
    pad = np.pad(x, ((r, r), (0, 0)), mode="reflect", reflect_type="odd")
    return np.stack([np.convolve(pad[:, j], k, mode="valid") for j in range(x.shape[1])], axis=1)


LIN_DEADBAND_M_S = 0.15
"""Planar speeds below this become 0 in :func:`base_velocity_commands`: a person swaying or shifting
weight moves the pelvis at up to ~0.1 m/s. (legged_gym zeroes planar commands under 0.2 m/s in
training, so slower ones are outside what the policy learnt anyway.)"""
YAW_DEADBAND_RAD_S = 0.2
"""Yaw rates below this become 0 in :func:`base_velocity_commands`."""
SMOOTHING_S = 0.2
"""Standard deviation of the Gaussian that smooths the root trajectory, seconds."""


def base_velocity_commands(root_pos_world_m, root_quat_wxyz, fps: float, smoothing_s: float = SMOOTHING_S,
                           lin_deadband_m_s: float = LIN_DEADBAND_M_S,
                           yaw_deadband_rad_s: float = YAW_DEADBAND_RAD_S) -> np.ndarray:
    """Body-frame commands (T, 3) [vx m/s, vy m/s, yaw rate rad/s] from a root (pelvis) trajectory.

    ``root_pos_world_m`` (T, 3) and ``root_quat_wxyz`` (T, 4) at ``fps`` frames per second. The
    positions and the unwrapped heading are smoothed (Gaussian, ``smoothing_s``), differentiated,
    and the planar velocity is expressed in the heading frame (yaw only: pitch and roll of the
    pelvis do not leak into it). A planar speed below ``lin_deadband_m_s`` or a yaw rate below
    ``yaw_deadband_rad_s`` becomes 0, so actions done standing do not make the robot shuffle; each
    bout of motion is then scaled so it still covers the distance and angle of its ramps
    (:func:`_restore_ramps`).
    """
    pos = np.asarray(root_pos_world_m, dtype=np.float64)
    quat = np.asarray(root_quat_wxyz, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"root_pos_world_m: expected shape (T, 3), got {pos.shape}")
    if quat.shape != (len(pos), 4):
        raise ValueError(f"root_quat_wxyz: expected shape ({len(pos)}, 4), got {quat.shape}")
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
        raise ValueError("root trajectory: expected finite values")
    norms = np.linalg.norm(quat, axis=1)
    if np.any(norms < 1e-6):
        raise ValueError("root_quat_wxyz: expected non-zero quaternions")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps: expected > 0, got {fps}")
    t = len(pos)
    if t < 2:
        return np.zeros((t, 3))
    yaw = np.unwrap(_yaw(quat / norms[:, None]))
    smooth = _smooth(np.column_stack([pos[:, :2], yaw]), smoothing_s * fps)
    vel = np.gradient(smooth, 1.0 / fps, axis=0)
    c, s = np.cos(smooth[:, 2]), np.sin(smooth[:, 2])
    vx = c * vel[:, 0] + s * vel[:, 1]
    vy = -s * vel[:, 0] + c * vel[:, 1]
    raw = np.column_stack([vx, vy, vel[:, 2]])
    out = raw.copy()
    speed, turn = np.hypot(vx, vy), np.abs(raw[:, 2])
    out[speed < lin_deadband_m_s, :2] = 0.0
    out[turn < yaw_deadband_rad_s, 2] = 0.0
    bout = max(1, round(RAMP_MIN_BOUT_S * fps))
    _restore_ramps(raw[:, :2], out[:, :2], speed, speed >= lin_deadband_m_s, bout)
    _restore_ramps(raw[:, 2:], out[:, 2:], turn, turn >= yaw_deadband_rad_s, bout)
    return out


RAMP_GAIN_MAX = 1.5
"""The most :func:`_restore_ramps` scales a bout of motion up by."""
RAMP_MIN_BOUT_S = 0.5
"""Shorter bouts (blips just above the deadband: a sway, a weight shift) are left as they are."""


def _restore_ramps(raw: np.ndarray, out: np.ndarray, magnitude: np.ndarray, kept: np.ndarray,
                   min_frames: int) -> None:
    """Give each bout of motion (a run of at least ``min_frames`` ``kept`` frames in ``out``, in
    place) back the displacement the deadband took from its start and end: the bout is scaled so
    that it covers what ``raw`` covers over the bout and its ramps (the frames on either side while
    ``magnitude`` keeps falling away from the bout; a frame between two bouts counts for the first).
    Without it a 1 m walk is commanded as 0.91 m and a 90 degree turn as 87. The scale is at least 1
    and at most RAMP_GAIN_MAX."""
    t = len(kept)
    i = prev_end = 0
    while i < t:
        if not kept[i]:
            i += 1
            continue
        j = i
        while j < t and kept[j]:
            j += 1
        a, b = i, j
        while a > prev_end and not kept[a - 1] and magnitude[a - 1] <= magnitude[a]:
            a -= 1
        while b < t and not kept[b] and magnitude[b] <= magnitude[b - 1]:
            b += 1
        have, want = out[i:j].sum(axis=0), raw[a:b].sum(axis=0)
        hh = float(have @ have)
        if hh > 0 and j - i >= min_frames:
            out[i:j] *= min(max(float(want @ have) / hh, 1.0), RAMP_GAIN_MAX)
        i, prev_end = j, b


def needs_locomotion(cmds, min_duration_s: float = 0.0, fps: float | None = None) -> bool:
    """Whether commands (T, 3) from :func:`base_velocity_commands` ask the base to move: some
    component non-zero (for at least ``min_duration_s`` consecutive seconds when ``fps`` is given)."""
    c = np.asarray(cmds, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"cmds: expected shape (T, 3), got {c.shape}")
    moving = np.any(c != 0.0, axis=1)
    if fps is None or min_duration_s <= 0:
        return bool(moving.any())
    need = max(1, int(np.ceil(min_duration_s * fps)))
    run = 0
    for m in moving:
        run = run + 1 if m else 0
        if run >= need:
            return True
    return False


@dataclass
class LegTick:
    """One policy tick's output: leg targets (12,) rad with the gains to send them with, and the
    command (3,) the policy was given (after the outer loop)."""

    q_target_rad: np.ndarray
    kp_nm_per_rad: np.ndarray
    kd_nm_s_per_rad: np.ndarray
    command: np.ndarray


class LegController:
    """Policy + observation + outer loops: call :meth:`tick` every :data:`POLICY_DT_S` with the state.

    ``path_tracker`` (optional) turns the desired command into one that also corrects the pose
    error against the integrated command; ``outer_loop`` (optional) then corrects the velocity.
    With neither, the desired command goes straight to the policy (clamped to COMMAND_LIMITS).
    """

    def __init__(self, policy: LegPolicy, outer_loop: VelocityOuterLoop | None = None,
                 path_tracker: BasePathTracker | None = None):
        self.policy = policy
        self.outer_loop = outer_loop
        self.path_tracker = path_tracker
        self._t0: float | None = None

    def reset(self) -> None:
        """A fresh start: policy state, loops and gait clock."""
        self.policy.reset()
        if self.outer_loop is not None:
            self.outer_loop.reset()
        if self.path_tracker is not None:
            self.path_tracker.reset()
        self._t0 = None

    def tick(self, time_s: float, base_ang_vel_rad_s, base_quat_wxyz, leg_q_rad, leg_dq_rad_s,
             desired_command, measured_velocity=None, pose_world=None) -> LegTick:
        """Targets for the legs now. ``measured_velocity`` (3,) body-frame [vx, vy, yaw rate] from
        odometry (see :func:`body_velocity`; required with an outer loop); ``pose_world`` (3,)
        [x m, y m, heading rad] from odometry (required with a path tracker). The gait clock starts
        at the first tick."""
        if self._t0 is None:
            self._t0 = float(time_s)
        cmd = _vector("desired_command", desired_command, 3)
        if self.path_tracker is not None:
            if pose_world is None:
                raise ValueError("pose_world: required by the path tracker")
            cmd = self.path_tracker.update(cmd, pose_world)
        if self.outer_loop is not None:
            if measured_velocity is None:
                raise ValueError("measured_velocity: required by the outer loop")
            cmd = self.outer_loop.update(cmd, measured_velocity)
        else:
            cmd = np.clip(cmd, -COMMAND_LIMITS, COMMAND_LIMITS)
        obs = build_leg_observation(base_ang_vel_rad_s, base_quat_wxyz, leg_q_rad, leg_dq_rad_s, cmd,
                                    max(0.0, float(time_s) - self._t0), self.policy.last_action)
        return LegTick(self.policy.step(obs), LEG_KP_NM_PER_RAD.copy(), LEG_KD_NM_S_PER_RAD.copy(), cmd)
