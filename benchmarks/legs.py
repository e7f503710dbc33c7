#!/usr/bin/env python3
"""Leg benchmark: Unitree's pre-trained G1 leg policy on the band-less Menagerie 29-DoF G1.

    source scripts/env.sh && python benchmarks/legs.py [--mode path|timed|open] [--out result.json]

Physics 500 Hz (dt 0.002 s) in the project's simulator (exoactor.sim.g1_sim: the Unitree motor PD
law with torque limits; band disabled, no scene objects); the policy at 50 Hz (LegController);
the 17 waist and arm joints held by PD at zero (the pose the policy was trained with): arms with
DEFAULT_KP/KD, the waist with WAIST_HOLD_KP/KD (DEFAULT_KD's 1 lets the torso sway and the robot
falls: try ``--waist-kp 60 --waist-kd 1``). Odometry for the outer loops is MuJoCo's ground truth.

Scenarios (1 s of standing first, not counted): stand 10 s; walk 1 m forward (0.5 m/s for 2 s,
then zero for 3 s); turn left 90 deg (pi/4 rad/s for 2 s, then zero for 3 s); side step 0.3 m
left (0.3 m/s for 1 s, then zero for 3 s); stand 10 s while the right arm waves (1 Hz).

Modes: ``path`` (default) BasePathTracker then VelocityOuterLoop: the robot follows the
integrated command, so it stops where the commands lead; ``timed`` VelocityOuterLoop only, the
schedule as commanded; ``open`` the policy alone. Fell: pelvis below 0.5 m or tilted over 45 deg
at any tick. Errors at the end: |displacement - commanded| in the start heading frame (m, and %
of the commanded distance), heading change minus the commanded one (deg).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

FALL_HEIGHT_M = 0.5
FALL_TILT_DEG = 45.0
SETTLE_S = 1.0
"""Standing (zero command) before each scenario's clock starts."""
WAVE_HZ = 1.0


@dataclass
class Scenario:
    name: str
    command: tuple[float, float, float]
    """Velocity [vx m/s, vy m/s, yaw rate rad/s] for ``move_s``, then zero."""
    move_s: float
    total_s: float
    wave: bool = False
    target: np.ndarray = field(init=False)
    """Commanded displacement [x m, y m, yaw rad] in the start heading frame (straight commands)."""

    def __post_init__(self):
        self.target = np.asarray(self.command, dtype=float) * self.move_s


SCENARIOS = [
    Scenario("stand", (0.0, 0.0, 0.0), 0.0, 10.0),
    Scenario("walk 1 m", (0.5, 0.0, 0.0), 2.0, 5.0),
    Scenario("turn left 90 deg", (0.0, 0.0, np.pi / 4), 2.0, 5.0),
    Scenario("side step 0.3 m", (0.0, 0.3, 0.0), 1.0, 4.0),
    Scenario("stand, right arm waves", (0.0, 0.0, 0.0), 0.0, 10.0, wave=True),
]


def make_sim():
    from exoactor.sim.g1_sim import ElasticBand, G1Simulator

    return G1Simulator(band=ElasticBand(enabled=False), scene_objects=False)


def start_pose(sim) -> np.ndarray:
    """Reset with the legs at the policy's default pose and the upper body at zero, lowered until a
    foot touches the floor. Returns the (29,) joint targets to hold."""
    import mujoco

    from exoactor.control.leg_policy import LEG_DEFAULT_Q_RAD
    from exoactor.g1.model import joint_qpos_addresses

    m, d = sim.model, sim.data
    sim.reset("stand")
    hold = np.zeros(29)
    hold[:12] = LEG_DEFAULT_Q_RAD
    d.qpos[joint_qpos_addresses(m)] = hold
    for _ in range(300):  # 1 mm at a time
        mujoco.mj_forward(m, d)
        if d.ncon:
            break
        d.qpos[2] -= 0.001
    return hold


def heading(quat_wxyz) -> float:
    w, x, y, z = quat_wxyz
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def tilt_deg(quat_wxyz) -> float:
    from exoactor.control.leg_policy import projected_gravity

    return float(np.degrees(np.arccos(np.clip(-projected_gravity(quat_wxyz)[2], -1, 1))))


def wave_targets(hold: np.ndarray, t: float) -> np.ndarray:
    """The right arm raised forward and out (1 s ramp), shoulder roll and elbow swinging at WAVE_HZ."""
    q = hold.copy()
    ramp = min(1.0, t)
    swing = np.sin(2 * np.pi * WAVE_HZ * t)
    q[22] = hold[22] - 0.6 * ramp                        # right shoulder pitch (forward/up)
    q[23] = hold[23] - ramp * (1.0 - 0.3 * swing)        # right shoulder roll (out)
    q[25] = hold[25] - ramp * (0.4 - 0.5 * swing)        # right elbow
    return q


def progress(pos_xy, quat_wxyz, p0: np.ndarray, yaw0: float) -> np.ndarray:
    """[x m, y m, yaw rad] of the base since the scenario start, in the start heading frame."""
    c, s = np.cos(yaw0), np.sin(yaw0)
    dx, dy = np.asarray(pos_xy) - p0
    dyaw = (heading(quat_wxyz) - yaw0 + np.pi) % (2 * np.pi) - np.pi
    return np.array([c * dx + s * dy, -s * dx + c * dy, dyaw])


def run_scenario(sc: Scenario, policy, args) -> dict:
    from exoactor.control.leg_policy import (
        POLICY_DT_S,
        BasePathTracker,
        LegController,
        VelocityOuterLoop,
        body_velocity,
    )
    from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP, NUM_BODY_JOINTS
    from exoactor.g1.lowcmd import LowCmdFrame

    sim = make_sim()
    hold = start_pose(sim)
    d = sim.data
    loop = None if args.mode == "open" else VelocityOuterLoop(ki_per_s=(args.ki,) * 3)
    tracker = BasePathTracker(k_per_s=(args.k_path,) * 3) if args.mode == "path" else None
    ctl = LegController(policy, loop, tracker)
    ctl.reset()
    n = NUM_BODY_JOINTS
    cmd = LowCmdFrame()
    cmd.mode[:n] = 1
    cmd.kp[12:n], cmd.kd[12:n] = DEFAULT_KP[12:], DEFAULT_KD[12:]
    cmd.kp[12:15], cmd.kd[12:15] = args.waist_kp, args.waist_kd
    substeps = round(POLICY_DT_S / sim.timestep_s)
    fell_at, p0, yaw0 = None, None, 0.0
    commands, policy_s = [], []
    for k in range(round((SETTLE_S + sc.total_s) / POLICY_DT_S)):
        tc = k * POLICY_DT_S - SETTLE_S  # scenario clock
        st = sim.state()
        if p0 is None and tc >= -1e-9:
            p0, yaw0 = st.base_pos_world_m[:2].copy(), heading(st.base_quat_wxyz)
        desired = np.asarray(sc.command, dtype=float) if 0 <= tc < sc.move_s else np.zeros(3)
        t0 = time.perf_counter()
        tick = ctl.tick(k * POLICY_DT_S, st.imu_gyro_rad_s, st.imu_quat_wxyz, st.q_rad[:12], st.dq_rad_s[:12],
                        desired, measured_velocity=body_velocity(d.qvel[0:3], d.qvel[3:6], d.qpos[3:7]),
                        pose_world=[d.qpos[0], d.qpos[1], heading(d.qpos[3:7])])
        policy_s.append(time.perf_counter() - t0)
        cmd.q[:12], cmd.kp[:12], cmd.kd[:12] = tick.q_target_rad, tick.kp_nm_per_rad, tick.kd_nm_s_per_rad
        cmd.q[12:n] = (wave_targets(hold, max(0.0, tc)) if sc.wave else hold)[12:]
        sim.set_command(cmd)
        sim.step(substeps)
        commands.append(tick.command)
        if args.trace and k % 10 == 0:
            print(f"  t {tc:5.2f} want {np.round(desired, 2)} cmd {np.round(tick.command, 2)} "
                  f"pos {np.round(d.qpos[:3], 2)} tilt {tilt_deg(d.qpos[3:7]):4.1f}")
        if d.qpos[2] < FALL_HEIGHT_M or tilt_deg(d.qpos[3:7]) > FALL_TILT_DEG:
            fell_at = tc
            break
    disp = progress(d.qpos[:2], d.qpos[3:7], p0, yaw0) if p0 is not None else np.zeros(3)
    dist = float(np.linalg.norm(sc.target[:2]))
    pos_err = float(np.linalg.norm(disp[:2] - sc.target[:2]))
    return {
        "scenario": sc.name, "fell": fell_at is not None, "fell_at_s": fell_at,
        "commanded": {"x_m": float(sc.target[0]), "y_m": float(sc.target[1]),
                      "yaw_deg": float(np.degrees(sc.target[2]))},
        "displacement": {"x_m": float(disp[0]), "y_m": float(disp[1]), "yaw_deg": float(np.degrees(disp[2]))},
        "position_error_m": pos_err,
        "distance_error_pct": 100.0 * pos_err / dist if dist > 0 else None,
        "heading_error_deg": float(np.degrees(disp[2] - sc.target[2])),
        "tick_ms_mean": 1e3 * float(np.mean(policy_s)),
        "max_abs_command": np.abs(np.array(commands)).max(axis=0).tolist(),
    }


def main(argv=None) -> int:
    from_lib = _library_defaults()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default=None, help="motion.pt (default: $EXOACTOR_LEG_POLICY or ../shared)")
    ap.add_argument("--mode", choices=("path", "timed", "open"), default="path")
    ap.add_argument("--ki", type=float, default=from_lib["ki"], help="VelocityOuterLoop integral gain, 1/s")
    ap.add_argument("--k-path", type=float, default=from_lib["k_path"], help="BasePathTracker gain, 1/s")
    ap.add_argument("--waist-kp", type=float, default=from_lib["waist_kp"], help="N*m/rad (DEFAULT_KP: 60, 40, 40)")
    ap.add_argument("--waist-kd", type=float, default=from_lib["waist_kd"], help="N*m*s/rad (DEFAULT_KD: 1)")
    ap.add_argument("--only", default=None, help="run the scenarios whose name contains this")
    ap.add_argument("--trace", action="store_true", help="print the state every 0.2 s")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from exoactor.control.leg_policy import LegPolicy

    policy = LegPolicy(args.policy)
    wall0 = time.perf_counter()
    results = [run_scenario(sc, policy, args) for sc in SCENARIOS if not args.only or args.only in sc.name]
    wall = time.perf_counter() - wall0

    hdr = (f"{'scenario':24} {'fell':>5} {'cmd x, y m':>13} {'got x, y m':>13} {'cmd yaw':>8} {'got yaw':>8} "
           f"{'pos err':>8} {'dist err':>8} {'yaw err':>8}")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        c, g = r["commanded"], r["displacement"]
        de = "-" if r["distance_error_pct"] is None else f"{r['distance_error_pct']:.1f}%"
        fell = f"{r['fell_at_s']:.1f}s" if r["fell"] else "no"
        print(f"{r['scenario']:24} {fell:>5} {c['x_m']:6.2f},{c['y_m']:6.2f} {g['x_m']:6.2f},{g['y_m']:6.2f} "
              f"{c['yaw_deg']:7.1f}° {g['yaw_deg']:7.1f}° {r['position_error_m']:7.3f}m {de:>8} "
              f"{r['heading_error_deg']:7.1f}°")
    falls = sum(r["fell"] for r in results)
    ok = falls == 0 and all(r["distance_error_pct"] <= 10.0 for r in results if r["scenario"].startswith("walk")) \
        and all(abs(r["heading_error_deg"]) <= 10.0 for r in results if r["scenario"].startswith("turn"))
    ms = float(np.mean([r["tick_ms_mean"] for r in results]))
    print(f"\nmode {args.mode} (ki {args.ki}, k_path {args.k_path}, waist {args.waist_kp:g}/{args.waist_kd:g}); "
          f"falls {falls}; controller tick (obs + loops + inference) {ms:.2f} ms; "
          f"targets (0 falls, walk <= 10%, turn <= 10 deg) {'MET' if ok else 'NOT met'}; wall {wall:.1f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "mode": args.mode, "ki_per_s": args.ki, "k_path_per_s": args.k_path,
            "waist_kp": args.waist_kp, "waist_kd": args.waist_kd, "targets_met": ok,
            "scenarios": results}, indent=2))
    return 0 if ok else 1


def _library_defaults() -> dict:
    import inspect

    if not os.environ.get("MENAGERIE_ROOT"):
        shared = REPO.parent / "shared" / "assets" / "menagerie"
        if (shared / "unitree_g1" / "g1.xml").is_file():
            os.environ["MENAGERIE_ROOT"] = str(shared)
    from exoactor.control import leg_policy as lp

    ki = inspect.signature(lp.VelocityOuterLoop).parameters["ki_per_s"].default[0]
    k_path = inspect.signature(lp.BasePathTracker).parameters["k_per_s"].default[0]
    return {"ki": ki, "k_path": k_path, "waist_kp": lp.WAIST_HOLD_KP_NM_PER_RAD,
            "waist_kd": lp.WAIST_HOLD_KD_NM_S_PER_RAD}


if __name__ == "__main__":
    sys.exit(main())
