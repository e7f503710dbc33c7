#!/usr/bin/env python3
"""Whole-body benchmark: every action of the vocabulary on the free-standing simulated G1 (no band).

    source scripts/env.sh && python benchmarks/whole_body.py [--actions walk,turn] [--out result.json]

Per action: the synthetic backend's human (``anny``) performs the planner's default step; its
true joints (no video, no estimation: this measures retargeting and control) are retargeted by
the tracking node's default retargeter (mink, same parameters), then executed by the tracking
node's controller (JointTrackingController + PolicyLowerBody + ControlLoop: the safety layer, the
leg policy at 50 Hz with its outer loops on ground-truth odometry, the fall check) on the
project's MuJoCo G1 at 500 Hz, in simulated time (the figures do not depend on this machine's
load). The simulator starts as the ``g1_sim`` node does: hanging on the band, which is lowered
over 2 s once the legs are driven; the robot first balances 4 s at the hold pose, then the step
runs (ramp-in, trajectory) and it holds 2 s more. Steps the leg policy cannot do are refused,
as the node refuses them without a gantry (``whole_body_reason``), and listed as such.

Figures per action:
- fell: pelvis tilted over 45 deg or below 0.5 m (the run stops);
- plan / moved: base displacement [x m, y m, heading deg] in the start heading frame, of the
  retargeted root trajectory (what the step asks for) and of the robot's pelvis;
- dist err: |moved - plan| (x, y) in % of the planned distance (steps that move >= 0.1 m);
  heading err: moved minus planned heading change (deg);
- upper RMSE: waist and arm joints (motors 12-28) measured against the retargeted trajectory
  while it plays (rad);
- slide: horizontal speed of a foot while it touches the floor, mean over contact time (cm/s);
- retarget fps: frames retargeted per second (one core).
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FPS = 30.0
SETTLE_S = 4.0
"""Balancing at the hold pose before the step (the band is gone after 3 s)."""
HOLD_AFTER_S = 2.0
FALL_HEIGHT_M = 0.5
UPPER = slice(12, 29)
FEET = ("left_ankle_roll_link", "right_ankle_roll_link")
MOVING_M = 0.1


def heading(quat_wxyz) -> float:
    w, x, y, z = quat_wxyz
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def planar_delta(p0_xy, yaw0: float, p1_xy, yaw1: float) -> np.ndarray:
    """[x m, y m, heading rad] of pose 1 relative to pose 0, in pose 0's heading frame."""
    c, s = np.cos(yaw0), np.sin(yaw0)
    dx, dy = np.asarray(p1_xy, float) - np.asarray(p0_xy, float)
    return np.array([c * dx + s * dy, -s * dx + c * dy, (yaw1 - yaw0 + np.pi) % (2 * np.pi) - np.pi])


def true_motion(body, action: str):
    """The vocabulary's default step for ``action``, performed by the synthetic human: HumanMotion
    from its true joints."""
    from exoactor.motion.grounding import motion_from_keypoints  # noqa: PLC0415
    from exoactor.planning.vocabulary import VOCABULARY, Step  # noqa: PLC0415
    from exoactor.skeleton import HUMAN_KEYPOINTS  # noqa: PLC0415
    from exoactor.video.choreography import segment_poses  # noqa: PLC0415

    spec = VOCABULARY[action]
    step = Step(action=action, side=spec.default_side, amount=spec.default_amount, amount_unit=spec.amount_unit,
                direction="forward" if spec.has_direction else "", duration_s=spec.default_duration_s)
    poses = segment_poses([step], 0, FPS)
    kp = np.zeros((len(poses), len(HUMAN_KEYPOINTS), 3))
    for b0 in range(0, len(poses), 16):
        for k, posed in enumerate(body.pose_batch(poses[b0:b0 + 16])):
            kp[b0 + k] = posed.keypoints_world_m
    n = len(kp)
    return motion_from_keypoints(kp, np.ones(kp.shape[:2]), np.zeros(n, np.uint8), FPS, "truth")


class Rig:
    """The tracking node's controller and safety layer, driving the simulator in simulated time."""

    def __init__(self, policy, retargeter, gravity: bool = True):
        import mujoco  # noqa: PLC0415

        from exoactor.control.balance import BaseOdometry, PolicyLowerBody  # noqa: PLC0415
        from exoactor.control.loop import ControlLoop  # noqa: PLC0415
        from exoactor.control.tracker import JointTrackingController  # noqa: PLC0415
        from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP  # noqa: PLC0415
        from exoactor.g1.lowcmd import LowCmdFrame  # noqa: PLC0415
        from exoactor.g1.lowstate import LowStateSample  # noqa: PLC0415
        from exoactor.g1.model import joint_ranges_rad, stand_pose_rad, torque_limits_nm  # noqa: PLC0415
        from exoactor.g1.safety import DEFAULT_KD_MAX, DEFAULT_KP_MAX, CommandLimits  # noqa: PLC0415
        from exoactor.sim.g1_sim import ElasticBand, G1Simulator  # noqa: PLC0415

        self._odom_cls, self._sample_cls, self._frame_cls = BaseOdometry, LowStateSample, LowCmdFrame
        model = retargeter.model
        self.limits = CommandLimits.from_ranges(joint_ranges_rad(model), 6.0, 0.02, 0.002, DEFAULT_KP_MAX,
                                                DEFAULT_KD_MAX, tau_max_nm=torque_limits_nm(model))
        self.lower_body = PolicyLowerBody(policy, closed_loop=True)
        from exoactor.control.gravity import GravityModel  # noqa: PLC0415
        from exoactor.g1.model import load_g1_model  # noqa: PLC0415

        self.controller = JointTrackingController(self.limits, DEFAULT_KP, DEFAULT_KD, stand_pose_rad(model),
                                                  lower_body=self.lower_body,
                                                  gravity=GravityModel(load_g1_model(with_floor=False)) if gravity
                                                  else None)
        self.loop = ControlLoop(self.controller, lambda sample: sample, lambda cmd, _mm: cmd)
        self.sim = G1Simulator(band=ElasticBand(), scene_objects=False)
        self.sim.reset()
        self.t = 0.0
        self.band_lowering = False
        m = self.sim.model
        self._feet = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b) for b in FEET]
        self._floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self.contact_s = 0.0
        self.slide_m = 0.0

    def state(self):
        st = self.sim.state()
        sample = self._sample_cls(st.q_rad, st.dq_rad_s, 5, int(self.t * 1e3), np.full(29, 30.0),
                                  np.zeros(29, np.uint32), True, st.imu_quat_wxyz, st.imu_gyro_rad_s)
        odom = self._odom_cls(st.base_pos_world_m, st.base_quat_wxyz, st.base_lin_vel_world_m_s,
                              st.base_ang_vel_body_rad_s)
        return st, sample, odom

    def _foot_contacts(self) -> list[bool]:
        d, m = self.sim.data, self.sim.model
        touching = [False, False]
        for c in d.contact[:d.ncon]:
            for g, other in ((c.geom1, c.geom2), (c.geom2, c.geom1)):
                if other == self._floor and m.geom_bodyid[g] in self._feet:
                    touching[self._feet.index(m.geom_bodyid[g])] = True
        return touching

    def run(self, seconds: float, on_tick=None) -> str:
        """Advance ``seconds`` of simulated time; '' or why the run stopped (a fall, a stop)."""
        dt = self.sim.timestep_s
        for _ in range(int(round(seconds / dt))):
            st, sample, odom = self.state()
            self.loop.on_lowstate(sample, self.t)
            self.loop.on_odometry(odom, self.t)
            cmd = self.loop.tick(self.t)
            if cmd is not None:
                frame = self._frame_cls()
                frame.mode[:29] = 1
                frame.q[:29], frame.dq[:29], frame.kp[:29], frame.kd[:29] = cmd.q_rad, cmd.dq_rad_s, cmd.kp, cmd.kd
                if cmd.tau_nm is not None:
                    frame.tau[:29] = cmd.tau_nm
                self.sim.set_command(frame)
                if not self.band_lowering and np.any(cmd.kp[:12] > 0):  # as the g1_sim node does
                    self.band_lowering = True
                    self.sim.lower_band(1.0, 2.0)
            self.loop.after_tick(self.t)
            feet0 = self.sim.data.xpos[self._feet, :2].copy()
            self.sim.step(1)
            self.t += dt
            moved = np.linalg.norm(self.sim.data.xpos[self._feet, :2] - feet0, axis=1)
            for i, touching in enumerate(self._foot_contacts()):
                if touching:
                    self.contact_s += dt
                    self.slide_m += float(moved[i])
            if on_tick is not None:
                on_tick(self.t, st)
            z = self.sim.data.qpos[2]
            if z < FALL_HEIGHT_M:
                return f"the robot fell (pelvis at {z:.2f} m)"
            if self.loop.stopped.is_set():
                return self.loop.stop_reason
        return ""


def _joint_names() -> tuple[str, ...]:
    from exoactor.g1.joints import G1_JOINT_NAMES  # noqa: PLC0415

    return G1_JOINT_NAMES


def hold_trajectory(q: np.ndarray, seconds: float):
    from exoactor.retarget.trajectory import G1JointTrajectory  # noqa: PLC0415

    n = int(seconds * FPS) + 1
    return G1JointTrajectory(FPS, np.tile(q, (n, 1)), np.zeros((n, 29)), np.tile([0.0, 0.0, 0.79], (n, 1)),
                             np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)))


def run_action(action: str, motion, retargeter, policy, gravity: bool = True) -> dict:
    from exoactor.control.balance import whole_body_reason  # noqa: PLC0415
    from exoactor.control.tracker import Phase  # noqa: PLC0415
    from exoactor.progress import no_progress  # noqa: PLC0415

    row: dict = {"action": action}
    t0 = time.perf_counter()
    traj = retargeter.retarget(motion, no_progress, threading.Event())
    row["retarget_fps"] = traj.num_frames / (time.perf_counter() - t0)
    row["ik_residual_p95_cm"] = 100 * float(np.percentile(traj.ik_residual_m, 95)) if traj.ik_residual_m is not None \
        else float("nan")
    why = whole_body_reason(traj)
    if why:
        row.update(refused=why, fell=False)
        return row
    rig = Rig(policy, retargeter, gravity)
    _, sample, _ = rig.state()
    rig.controller.start(hold_trajectory(traj.positions_rad[0], SETTLE_S), sample.q_rad, rig.t, ramp_in=True,
                         legs_from_policy=True)
    stop = rig.run(SETTLE_S)
    st0, sample, _ = rig.state()
    rig.contact_s = rig.slide_m = 0.0
    rig.controller.start(traj, sample.q_rad, rig.t, ramp_in=True, legs_from_policy=True)
    errs: list[np.ndarray] = []
    track0: list[float] = []

    def on_tick(t: float, st) -> None:
        if rig.controller.phase == Phase.TRACKING:
            if not track0:
                track0.append(t)
            q_des, _ = traj.sample(t - track0[0])
            errs.append(st.q_rad[UPPER] - q_des[UPPER])

    if not stop:
        stop = rig.run(traj.duration_s + 1.0 + HOLD_AFTER_S, on_tick)
    st1, _, _ = rig.state()
    plan = planar_delta(traj.root_pos_world_m[0, :2], heading(traj.root_quat_wxyz[0]),
                        traj.root_pos_world_m[-1, :2], heading(traj.root_quat_wxyz[-1]))
    moved = planar_delta(st0.base_pos_world_m[:2], heading(st0.base_quat_wxyz), st1.base_pos_world_m[:2],
                         heading(st1.base_quat_wxyz))
    dist = float(np.linalg.norm(plan[:2]))
    row.update(
        fell=bool(stop), stop_reason=stop, lower_body="policy",
        plan={"x_m": plan[0], "y_m": plan[1], "heading_deg": float(np.degrees(plan[2]))},
        moved={"x_m": moved[0], "y_m": moved[1], "heading_deg": float(np.degrees(moved[2]))},
        distance_error_pct=100 * float(np.linalg.norm(moved[:2] - plan[:2])) / dist if dist >= MOVING_M else None,
        position_error_m=float(np.linalg.norm(moved[:2] - plan[:2])),
        heading_error_deg=float(np.degrees((moved[2] - plan[2] + np.pi) % (2 * np.pi) - np.pi)),
        upper_rmse_rad=float(np.sqrt(np.mean(np.square(errs)))) if errs else float("nan"),
        upper_rmse_by_joint_rad=dict(zip(_joint_names()[UPPER],
                                         np.sqrt(np.mean(np.square(errs), axis=0)).round(4).tolist())) if errs else {},
        upper_mean_error_by_joint_rad=dict(zip(_joint_names()[UPPER],
                                               np.mean(errs, axis=0).round(4).tolist())) if errs else {},
        slide_cm_s=100 * rig.slide_m / rig.contact_s if rig.contact_s > 0 else float("nan"),
        clamped=int(rig.controller.clamped_total),
    )
    return row


def main(argv=None) -> int:
    from exoactor.planning.vocabulary import VOCABULARY

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--actions", default=",".join(VOCABULARY), help="comma-separated vocabulary actions")
    ap.add_argument("--policy", default=None, help="motion.pt (default: $EXOACTOR_LEG_POLICY or ../shared)")
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    ap.add_argument("--no-gravity", action="store_true", help="no gravity feed-forward (position PD alone, as "
                    "with the tracking node's gravity_compensation: false)")
    args = ap.parse_args(argv)
    actions = args.actions.split(",")
    unknown = [a for a in actions if a not in VOCABULARY]
    if unknown:
        ap.error(f"unknown actions {unknown}; known: {', '.join(VOCABULARY)}")
    from exoactor.control.leg_policy import LegPolicy
    from exoactor.registry import load_backend
    from exoactor.retarget import RETARGET_BACKENDS
    from exoactor.video.anny_body import AnnyBody

    policy = LegPolicy(args.policy)
    retargeter = load_backend(RETARGET_BACKENDS, "mink", "retargeting", max_joint_velocity_rad_s=6.0,
                              joint_limit_margin_rad=0.02, max_ik_residual_m=0.15)
    body = AnnyBody({})
    rows = []
    print(f"{'action':10s} {'result':8s} {'plan x,y m / deg':>22s} {'moved x,y m / deg':>22s} {'dist err':>8s} "
          f"{'head err':>8s} {'upper':>7s} {'slide':>6s} {'IK fps':>6s}")
    for action in actions:
        row = run_action(action, true_motion(body, action), retargeter, policy, gravity=not args.no_gravity)
        rows.append(row)
        if row.get("refused"):
            print(f"{action:10s} refused  {row['refused']}", flush=True)
            continue
        p, m = row["plan"], row["moved"]
        de = f"{row['distance_error_pct']:7.1f}%" if row["distance_error_pct"] is not None else f"{'-':>8s}"
        print(f"{action:10s} {'FELL' if row['fell'] else 'ok':8s} {p['x_m']:6.2f} {p['y_m']:6.2f} "
              f"{p['heading_deg']:7.1f}  {m['x_m']:6.2f} {m['y_m']:6.2f} {m['heading_deg']:7.1f}  {de} "
              f"{row['heading_error_deg']:7.1f}° {row['upper_rmse_rad']:7.3f} {row['slide_cm_s']:6.2f} "
              f"{row['retarget_fps']:6.0f}" + (f"  ({row['stop_reason']})" if row["fell"] else ""), flush=True)
    ran = [r for r in rows if not r.get("refused")]
    moving = [r for r in ran if r["distance_error_pct"] is not None]
    print(f"\n{len(rows)} actions: {len(ran)} ran, {sum(r['fell'] for r in ran)} fell, "
          f"{len(rows) - len(ran)} refused (need the gantry)")
    if ran:
        print(f"upper-body RMSE mean {np.nanmean([r['upper_rmse_rad'] for r in ran]):.3f} rad, max "
              f"{np.nanmax([r['upper_rmse_rad'] for r in ran]):.3f}; foot slide mean "
              f"{np.nanmean([r['slide_cm_s'] for r in ran]):.2f} cm/s; heading error max "
              f"{max(abs(r['heading_error_deg']) for r in ran):.1f} deg")
    if moving:
        print(f"distance error (moving steps): max {max(r['distance_error_pct'] for r in moving):.1f}%")
    print(f"retargeting: {np.mean([r['retarget_fps'] for r in rows]):.0f} frames/s mean")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
