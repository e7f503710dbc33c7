"""MuJoCo G1 simulation obeying the Unitree motor PD law, with an elastic band and a camera.

The Menagerie G1's position actuators are turned into torque motors at load, so each motor runs
exactly ``tau = tau_ff + kp (q_des - q) + kd (dq_des - dq)`` (clipped to the motor's torque
limit) from the latest command, as on the robot and in unitree_mujoco.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from exoactor.g1.joints import NUM_BODY_JOINTS
from exoactor.g1.lowcmd import LowCmdFrame
from exoactor.g1.model import (
    check_joint_layout,
    joint_dof_addresses,
    joint_qpos_addresses,
    load_g1_spec,
    mesh_file_paths,
    robot_body_ids,
    torque_limits_nm,
)
from exoactor.geometry import PinholeCamera, matrix_to_quat_wxyz, quat_mul_wxyz


@dataclass
class ElasticBand:
    """Virtual spring-damper pulling a body towards an anchor above the robot (unitree_mujoco).

    force = (stiffness * (|d| - length_m) - damping * v.d/|d|) * d/|d|, d = anchor - body position.
    """

    enabled: bool = True
    stiffness_n_m: float = 200.0
    damping_n_s_m: float = 100.0
    anchor_world_m: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 3.0]))
    length_m: float = 0.0
    body: str = "torso_link"

    def force(self, pos_world_m: np.ndarray, vel_world_m_s: np.ndarray) -> np.ndarray:
        """Force (3,) in newtons on the attached body."""
        d = self.anchor_world_m - pos_world_m
        dist = float(np.linalg.norm(d))
        if not self.enabled or dist < 1e-9:
            return np.zeros(3)
        u = d / dist
        return (self.stiffness_n_m * (dist - self.length_m) - self.damping_n_s_m * float(vel_world_m_s @ u)) * u


@dataclass
class G1State:
    """Measured state in Unitree motor order; IMU in the pelvis frame, quaternion (w, x, y, z)."""

    time_s: float
    q_rad: np.ndarray
    dq_rad_s: np.ndarray
    ddq_rad_s2: np.ndarray
    tau_nm: np.ndarray
    imu_quat_wxyz: np.ndarray
    imu_gyro_rad_s: np.ndarray
    imu_acc_m_s2: np.ndarray
    base_pos_world_m: np.ndarray
    base_quat_wxyz: np.ndarray
    base_lin_vel_world_m_s: np.ndarray = field(default_factory=lambda: np.zeros(3))
    base_ang_vel_body_rad_s: np.ndarray = field(default_factory=lambda: np.zeros(3))


class G1Simulator:
    """The G1 in its scene. Not thread-safe except :meth:`set_command` (any thread)."""

    def __init__(self, band: ElasticBand | None = None, model_dir: str | None = None,
                 camera: PinholeCamera | None = None, scene_objects: bool = True):
        import mujoco  # noqa: PLC0415

        self._mj = mujoco
        spec = load_g1_spec(model_dir, with_floor=True)
        if scene_objects:
            _add_scene_objects(spec)
        self.camera = camera
        if camera is not None:
            rot_mj = camera.rot_world_from_optical @ np.diag([1.0, -1.0, -1.0])
            spec.worldbody.add_camera(name="exocentric", pos=camera.pos_world_m,
                                      quat=matrix_to_quat_wxyz(rot_mj), fovy=camera.fovy_deg)
        self.model = spec.compile()
        self.mesh_paths = mesh_file_paths(spec)
        """Source file of each mesh, indexed by mesh id (for mesh markers and the URDF)."""
        check_joint_layout(self.model)
        m = self.model
        links = np.array(robot_body_ids(m)[1:])
        self.link_frames = [(m.body(m.body_parentid[b]).name, m.body(b).name) for b in links]
        """(parent, child) of every robot link below the pelvis, in :meth:`link_transforms` order."""
        hinge = m.body_jntnum[links] > 0
        joint = np.where(hinge, m.body_jntadr[links], 0)
        self._link_offset = (m.body_pos[links].copy(), m.body_quat[links].copy())
        self._link_hinge = (hinge, m.jnt_qposadr[joint], np.where(hinge[:, None], m.jnt_axis[joint], 0.0))
        # Position actuators -> torque motors: ctrl is the joint torque.
        m.actuator_gainprm[:, :] = 0.0
        m.actuator_gainprm[:, 0] = 1.0
        m.actuator_biasprm[:, :] = 0.0
        m.actuator_ctrllimited[:] = 0
        self.data = mujoco.MjData(m)
        self.band = band if band is not None else ElasticBand()
        self._band_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, self.band.body)
        self._qadr, self._vadr = joint_qpos_addresses(m), joint_dof_addresses(m)
        self.torque_limit_nm = torque_limits_nm(m)
        self._imu_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "imu_in_pelvis")
        self._gyro_adr = m.sensor_adr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, "imu-pelvis-angular-velocity")]
        self._acc_adr = m.sensor_adr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, "imu-pelvis-linear-acceleration")]
        self._cmd_lock = threading.Lock()
        self._cmd: LowCmdFrame | None = None
        self._physics_lock = threading.Lock()
        self._render_data = mujoco.MjData(m)
        self._renderer = None
        self._prev_dq = np.zeros(NUM_BODY_JOINTS)
        self._band_release: tuple[float, float] | None = None
        self.reset()

    @property
    def timestep_s(self) -> float:
        return float(self.model.opt.timestep)

    def reset(self, keyframe: str = "stand") -> None:
        """Put the robot in a keyframe pose, at rest, with no command (motors off)."""
        mj = self._mj
        k = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_KEY, keyframe)
        with self._physics_lock:  # a reset may come from a service while the physics thread steps
            if k >= 0:
                mj.mj_resetDataKeyframe(self.model, self.data, k)
            else:
                mj.mj_resetData(self.model, self.data)
            mj.mj_forward(self.model, self.data)
        if self.band.length_m <= 0.0:
            # Automatic length: at the start pose the band carries the robot's whole weight.
            p = self.data.xpos[self._band_body]
            weight_n = float(self.model.body_subtreemass[1] * -self.model.opt.gravity[2])
            stretch_m = weight_n / self.band.stiffness_n_m
            self.band.length_m = float(np.linalg.norm(self.band.anchor_world_m - p)) - stretch_m
        with self._cmd_lock:
            self._cmd = None
            self._band_release = None

    def set_command(self, cmd: LowCmdFrame) -> None:
        """Latest LowCmd (motor slots 0..28 drive the body). Thread-safe."""
        with self._cmd_lock:
            self._cmd = cmd

    def motor_torques(self) -> np.ndarray:
        """Torques (29,) the motors apply now under the PD law (0 for disabled motors)."""
        with self._cmd_lock:
            cmd = self._cmd
        if cmd is None:
            return np.zeros(NUM_BODY_JOINTS)
        n = NUM_BODY_JOINTS
        q = self.data.qpos[self._qadr]
        dq = self.data.qvel[self._vadr]
        tau = cmd.tau[:n] + cmd.kp[:n] * (cmd.q[:n] - q) + cmd.kd[:n] * (cmd.dq[:n] - dq)
        tau = np.where(cmd.mode[:n] == 1, tau, 0.0)
        tau = np.where(np.isfinite(tau), tau, 0.0)
        return np.clip(tau, -self.torque_limit_nm, self.torque_limit_nm)

    def step(self, n: int = 1) -> None:
        """Advance n physics steps, recomputing motor torques and band force each step."""
        mj, m, d = self._mj, self.model, self.data
        with self._physics_lock:
            for _ in range(n):
                d.ctrl[:NUM_BODY_JOINTS] = self.motor_torques()
                d.xfrc_applied[self._band_body, :3] = self.band_scale() * self.band.force(
                    d.xpos[self._band_body], self._body_linvel(self._band_body))
                self._prev_dq = d.qvel[self._vadr].copy()
                mj.mj_step(m, d)

    def lower_band(self, delay_s: float = 0.0, duration_s: float = 2.0) -> None:
        """Lower the band (a gantry): its force fades to zero over ``duration_s`` after ``delay_s``
        (simulated time). Thread-safe; a second call while lowering changes nothing."""
        with self._cmd_lock:
            if self._band_release is None:
                self._band_release = (float(self.data.time) + max(0.0, delay_s), max(1e-3, duration_s))

    def band_scale(self) -> float:
        """1 while the band carries the robot, 0 once it has been lowered."""
        rel = self._band_release
        if rel is None:
            return 1.0
        return float(min(1.0, max(0.0, 1.0 - (self.data.time - rel[0]) / rel[1])))

    def _body_linvel(self, body: int) -> np.ndarray:
        v = np.zeros(6)
        self._mj.mj_objectVelocity(self.model, self.data, self._mj.mjtObj.mjOBJ_BODY, body, v, 0)
        return v[3:]

    def state(self) -> G1State:
        d = self.data
        dq = d.qvel[self._vadr].copy()
        rot = d.site_xmat[self._imu_site].reshape(3, 3)
        return G1State(
            time_s=float(d.time), q_rad=d.qpos[self._qadr].copy(), dq_rad_s=dq,
            ddq_rad_s2=(dq - self._prev_dq) / self.timestep_s, tau_nm=d.ctrl[:NUM_BODY_JOINTS].copy(),
            imu_quat_wxyz=matrix_to_quat_wxyz(rot),
            imu_gyro_rad_s=d.sensordata[self._gyro_adr:self._gyro_adr + 3].copy(),
            imu_acc_m_s2=d.sensordata[self._acc_adr:self._acc_adr + 3].copy(),
            base_pos_world_m=d.qpos[0:3].copy(), base_quat_wxyz=d.qpos[3:7].copy(),
            base_lin_vel_world_m_s=d.qvel[0:3].copy(), base_ang_vel_body_rad_s=d.qvel[3:6].copy())

    def body_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """World pose of every robot body: name -> (position m, quaternion w, x, y, z)."""
        mj = self._mj
        out = {}
        for b in range(1, self.model.nbody):
            name = mj.mj_id2name(self.model, mj.mjtObj.mjOBJ_BODY, b)
            if name and not name.startswith("scene_"):
                out[name] = (self.data.xpos[b].copy(), self.data.xquat[b].copy())
        return out

    def link_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Every robot link (:attr:`link_frames`) in its parent link, as TF: positions (n, 3) m and
        quaternions (n, 4) w, x, y, z. Computed from the joint positions as robot_state_publisher does
        from the URDF (exoactor.g1.urdf; link names are the body names), so it matches ``state()``."""
        pos, quat = self._link_offset
        hinge, qadr, axis = self._link_hinge
        half = np.where(hinge, self.data.qpos[qadr], 0.0)[:, None] / 2
        return pos, quat_mul_wxyz(quat, np.concatenate([np.cos(half), axis * np.sin(half)], axis=1))

    def open_renderer(self) -> None:
        """Create the OpenGL context and upload the model to it (no-op when done). This holds the
        GIL for 0.3-0.8 s on a loaded machine (MuJoCo's ``MjrContext`` does not release it): call it
        from the rendering thread *before* another thread steps in real time, or that thread stalls."""
        if self.camera is None:
            raise RuntimeError("simulator created without a camera")
        if self._renderer is None:
            self.model.vis.quality.shadowsize = 0
            self._renderer = self._mj.Renderer(self.model, self.camera.height, self.camera.width)

    def render(self) -> np.ndarray:
        """RGB image (H, W, 3) uint8 from the exocentric camera.

        Safe to call from a thread other than the one stepping: it renders a snapshot of the
        state, and the physics keeps running meanwhile (MuJoCo releases the GIL while drawing).
        Call it from one thread only (the GL context belongs to the thread that first renders).
        """
        mj = self._mj
        self.open_renderer()
        with self._physics_lock:
            mj.mj_copyData(self._render_data, self.model, self.data)
        self._renderer.update_scene(self._render_data, camera="exocentric")
        for flag in (mj.mjtRndFlag.mjRND_SHADOW, mj.mjtRndFlag.mjRND_REFLECTION, mj.mjtRndFlag.mjRND_SKYBOX):
            self._renderer.scene.flags[flag] = 0
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _add_scene_objects(spec) -> None:
    """A chair and a small table with a bottle, so the scene has something to act on."""
    mj = __import__("mujoco")
    box, cyl = mj.mjtGeom.mjGEOM_BOX, mj.mjtGeom.mjGEOM_CYLINDER
    chair = spec.worldbody.add_body(name="scene_chair", pos=[-0.45, 0.0, 0.0])
    wood = [0.55, 0.35, 0.2, 1.0]
    chair.add_geom(type=box, size=[0.2, 0.2, 0.02], pos=[0, 0, 0.45], rgba=wood)
    chair.add_geom(type=box, size=[0.02, 0.2, 0.25], pos=[-0.2, 0, 0.72], rgba=wood)
    for x in (-0.18, 0.18):
        for y in (-0.18, 0.18):
            chair.add_geom(type=box, size=[0.02, 0.02, 0.22], pos=[x, y, 0.22], rgba=wood)
    table = spec.worldbody.add_body(name="scene_table", pos=[0.6, 0.75, 0.0])
    table.add_geom(type=box, size=[0.25, 0.4, 0.02], pos=[0, 0, 0.7], rgba=[0.8, 0.8, 0.75, 1])
    table.add_geom(type=box, size=[0.03, 0.03, 0.34], pos=[0, 0, 0.34], rgba=[0.3, 0.3, 0.3, 1])
    table.add_geom(type=cyl, size=[0.035, 0.1], pos=[-0.1, -0.15, 0.82], rgba=[0.1, 0.5, 0.2, 1])
