#!/usr/bin/env python3
"""Safety fuzz: 10^5 adversarial trajectories through the safety layer; no command may leave the limits.

    source scripts/env.sh && python benchmarks/safety_fuzz.py [--trajectories 100000] [--ticks 200]

Part 1 (vectorised, one core): every trajectory is a stream of raw joint targets at a 500 Hz clock
that jitters and stalls (1% of ticks last 50 ms - 1 s), of one of these kinds: slow motions inside
the limits, smooth motions beyond the joint limits, a discontinuity every tick, step jumps, huge
values (1e6 .. 3.4e38, 1e300), constant out-of-limit targets, NaN/Inf injected into q, dq, kp,
kd or tau; with random gains up to 4x / 16x the defaults (some negative) and feed-forward torques
up to 1e30. Each tick goes through
``CommandLimits.apply_batch`` (the very function the controller's tick uses, on a batch) and every
output is checked independently of the implementation: q inside the joint window minus the margin;
|q - q_prev| <= vmax * nominal period whatever the stall; |dq| <= vmax; dq = tau = 0 where q was
clamped; 0 <= kp <= kp_max, 0 <= kd <= kd_max, |tau| <= tau_max; finite and exactly float32 (what
the wire carries); a non-finite input gives the damping command. The final command of each
trajectory is encoded as a LowCmd and decoded back: its CRC must be valid.

Part 2 (the whole loop, ``--loop-trajectories``): the ControlLoop with the tracking controller, fed
valid, NaN, wrong-CRC, truncated and garbage LowStates, stalls, e-stops, cancels, unsafe
trajectories (NaN inside the loop) and a failing encoder; every LowCmd it sends is decoded and checked.

Prints the number of commands outside the limits (must be 0) and the time taken; exits 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KINDS = ("inside_limits", "smooth_beyond_limits", "discontinuous", "step_jumps", "huge", "out_of_limits", "non_finite",
         "mixed")


def _limits():
    from exoactor.g1.model import joint_ranges_rad, load_g1_model, stand_pose_rad, torque_limits_nm
    from exoactor.g1.safety import CommandLimits

    m = load_g1_model(with_floor=False)
    return (CommandLimits.from_ranges(joint_ranges_rad(m), 6.0, 0.02, 1 / 500.0, tau_max_nm=torque_limits_nm(m)),
            stand_pose_rad(m))


def check(lim, out, q_in, dq_in, kp_in, kd_in, tau_in, prev) -> np.ndarray:
    """Per command: True where a guarantee is broken (stated without using the safety module)."""
    def f32(a):
        return a.astype(np.float32).astype(np.float64)

    finite_in = np.isfinite(q_in) & np.isfinite(dq_in) & np.isfinite(kp_in) & np.isfinite(kd_in) & np.isfinite(tau_in)
    row_ok = finite_in.all(axis=-1, keepdims=True)
    bad = np.zeros(out.q.shape, bool)
    for a in (out.q, out.dq, out.kp, out.kd, out.tau):
        bad |= ~np.isfinite(a) | (f32(a) != a)
    bad |= (out.q < lim.q_min_rad) | (out.q > lim.q_max_rad)
    if prev is not None:
        bad |= np.abs(out.q - prev) > lim.dq_max_rad_s * lim.period_s
    bad |= np.abs(out.dq) > lim.dq_max_rad_s
    clamped = row_ok & (np.abs(out.q - np.where(finite_in, q_in, 0.0)) > 1e-6)
    bad |= clamped & ((out.dq != 0) | (out.tau != 0))
    bad |= (out.kp < 0) | (out.kp > lim.kp_max) | (out.kd < 0) | (out.kd > lim.kd_max)
    bad |= np.abs(out.tau) > lim.tau_max_nm
    damping = (out.kp == 0) & (out.kd == lim.damping_kd) & (out.dq == 0) & (out.tau == 0)
    bad |= ~row_ok & ~damping
    return bad.any(axis=-1)


def self_test(lim) -> None:
    """The checker is not vacuous: each kind of bad command is caught."""
    from exoactor.g1.safety import SafeCommand

    prev = ((lim.q_min_rad + lim.q_max_rad) / 2).astype(np.float32).astype(np.float64)
    q_in = prev.copy()
    z = np.zeros(29)

    def cmd(**kw):
        a = {"q": prev.copy(), "dq": z.copy(), "tau": z.copy(), "kp": z.copy(), "kd": z.copy()}
        a.update(kw)
        return SafeCommand(clamped=np.zeros(29, bool), ok=np.array(True), **a)

    assert not check(lim, cmd(), q_in, z, z, z, z, prev)
    step = lim.dq_max_rad_s * lim.period_s
    far = q_in + 1.0
    cases = {"outside the window": cmd(q=np.where(np.arange(29) == 0, lim.q_max_rad + 1e-3, prev)),
             "step too large (elapsed-time scaling)": cmd(q=(prev + 2 * step).astype(np.float32).astype(float)),
             "dq on a clamped joint": cmd(q=(prev + step / 2).astype(np.float32).astype(float), dq=z + 0.5),
             "kp above kp_max": cmd(kp=lim.kp_max + 1), "NaN": cmd(kd=z + np.nan),
             "not float32": cmd(q=prev + 1e-12)}
    for what, c in cases.items():
        clamp = "clamped" in what
        assert check(lim, c, far if clamp else q_in, z + 0.5 if clamp else z, z, z, z, prev), what


def fuzz_chunk(lim, b: int, ticks: int, rng: np.random.Generator) -> dict:
    from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP

    n = 29
    kind = rng.integers(0, len(KINDS), b)
    rows = {name: np.flatnonzero(kind == i) for i, name in enumerate(KINDS)}
    mixed = rows.pop("mixed")  # a bit of everything: discontinuities, huge velocities, NaN/Inf
    rows["discontinuous"] = np.union1d(rows["discontinuous"], mixed)
    rows["non_finite"] = np.union1d(rows["non_finite"], mixed)
    mid, half = (lim.q_min_rad + lim.q_max_rad) / 2, (lim.q_max_rad - lim.q_min_rad) / 2
    inside = (kind == KINDS.index("inside_limits"))[:, None]
    amp = half * np.where(inside, rng.uniform(0.0, 0.8, (b, n)), rng.uniform(0.5, 3.0, (b, n)))
    freq = np.where(inside, rng.uniform(0.0, 0.3, (b, n)), rng.uniform(0.0, 15.0, (b, n)))
    phase = rng.uniform(0, 2 * np.pi, (b, n))
    jump_t = rng.uniform(0, 0.6, (b, n))
    jump = rng.uniform(-10, 10, (b, n))
    const = np.where(rng.random((b, n)) < 0.5, lim.q_min_rad - rng.uniform(0, 5, (b, n)),
                     lim.q_max_rad + rng.uniform(0, 5, (b, n)))
    huge = rng.choice([1e6, -1e6, 1e30, -1e30, 3.4e38, -3.4e38, 1e300, -1e300], (b, n))
    kp = DEFAULT_KP * rng.uniform(0, 4, (b, n)) * np.where(rng.random((b, 1)) < 0.05, -1, 1)
    kd = DEFAULT_KD * rng.uniform(0, 16, (b, n))
    tau = rng.uniform(-500, 500, (b, n)) * np.where(rng.random((b, 1)) < 0.05, 1e27, 1)
    t = np.zeros((b, 1))
    prev = None
    counts = {"commands": 0, "outside_limits": 0, "clamped": 0, "refused_non_finite": 0, "stalls": 0}
    for _ in range(ticks):
        dt = np.full((b, 1), 0.002) + rng.uniform(0, 0.002, (b, 1)) * (rng.random((b, 1)) < 0.2)
        stall = rng.random((b, 1)) < 0.01
        dt = np.where(stall, rng.uniform(0.05, 1.0, (b, 1)), dt)
        t = t + dt
        counts["stalls"] += int(stall.sum())
        w = 2 * np.pi * freq
        q = mid + amp * np.sin(w * t + phase)
        dq = amp * w * np.cos(w * t + phase)
        r = rows["discontinuous"]
        q[r] = mid + rng.uniform(-50, 50, (len(r), n))
        r = rows["step_jumps"]
        q[r] += jump[r] * (t[r] > jump_t[r])
        r = rows["huge"]
        q[r] = huge[r] * rng.uniform(0.5, 1.0, (len(r), n))
        dq[r] = huge[r, ::-1]
        r = rows["out_of_limits"]
        q[r] = const[r]
        kpt, kdt, taut = kp, kd, tau
        r = rows["non_finite"][rng.random(len(rows["non_finite"])) < 0.05]  # this tick's poisoned rows
        if len(r):
            kpt, kdt, taut = kp.copy(), kd.copy(), tau.copy()
            which = rng.integers(0, 5, len(r))
            hit = rng.random((len(r), n)) < 0.3
            val = rng.choice([np.nan, np.inf, -np.inf], (len(r), n))
            for i, arr in enumerate((q, dq, kpt, kdt, taut)):
                sel = r[which == i]
                arr[sel] = np.where(hit[which == i], val[which == i], arr[sel])
        out = lim.apply_batch(q, dq, prev, kpt, kdt, taut)
        bad = check(lim, out, q, dq, kpt, kdt, taut, prev)
        counts["commands"] += b
        counts["outside_limits"] += int(bad.sum())
        counts["clamped"] += int(out.clamped.any(axis=-1).sum())
        counts["refused_non_finite"] += int((~out.ok).sum())
        prev = out.q
    counts["last"] = out
    return counts


def crc_check(last_commands, n: int) -> tuple[int, int]:
    """Encode the final commands as LowCmds, decode them: (checked, failures)."""
    from exoactor.nodes.unitree_io import LowCmdReader, LowCmdWriter

    w, r = LowCmdWriter(), LowCmdReader()
    checked = bad = 0
    for out in last_commands:
        for i in range(min(n - checked, len(out.q))):
            frame, ok = r.read(w.build(out.q[i], out.dq[i], out.kp[i], out.kd[i], 5, tau=out.tau[i]))
            same = all(np.array_equal(getattr(frame, f)[:29], getattr(out, f)[i])
                       for f in ("q", "dq", "kp", "kd", "tau"))
            bad += int(not (ok and same))
            checked += 1
    return checked, bad


def loop_fuzz(lim, stand, n: int, rng: np.random.Generator) -> dict:
    """The whole ControlLoop (tracking controller, LowState intake, watchdogs, e-stop) on random events."""
    from exoactor.control.loop import ControlLoop
    from exoactor.control.tracker import JointTrackingController
    from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP
    from exoactor.nodes.unitree_io import LowCmdReader, LowCmdWriter, LowStateReader, LowStateWriter
    from exoactor.retarget.trajectory import G1JointTrajectory

    cw, cr, sw, sr = LowCmdWriter(), LowCmdReader(), LowStateWriter(5), LowStateReader()
    z = np.zeros(29)
    counts = {"trajectories": n, "commands": 0, "outside_limits": 0, "bad_crc": 0, "stops": 0}
    events = ["robot"] * 12 + ["tick", "stall", "bad_state", "start", "start", "cancel", "estop", "reset", "poison",
                                "encoder_fails", "encoder_works", "hot", "fault"]
    for _ in range(n):
        c = JointTrackingController(lim, DEFAULT_KP * rng.uniform(0.5, 2), DEFAULT_KD * rng.uniform(0.5, 2), stand,
                                    ramp_in_min_s=rng.uniform(0.01, 0.3), ramp_speed_rad_s=rng.uniform(0.5, 50))
        broken = [False]

        def encode(cmd, mm, broken=broken):
            if broken[0]:
                raise RuntimeError("encoder broken")
            return cw.build(cmd.q_rad, cmd.dq_rad_s, cmd.kp, cmd.kd, mm, cmd.tau_nm)

        loop = ControlLoop(c, sr.parse, encode, state_timeout_s=0.25)
        t, prev, traj, temp, flags = 0.0, None, None, np.full(29, 40.0), np.zeros(29, np.uint32)

        def good(temp, flags):
            return sw.build(1, stand, z, z, z, [1, 0, 0, 0], [0] * 3, [0] * 3, [0] * 3, temp, flags)
        for ev in rng.choice(events, rng.integers(50, 300)):
            if ev == "bad_state":
                data = bytearray(good(temp, flags))
                choice = rng.integers(0, 4)
                if choice == 0:
                    data[-1] ^= 0xFF
                elif choice == 1:
                    data = data[:rng.integers(0, len(data))]
                elif choice == 2:
                    data = bytearray(rng.integers(0, 256, len(data)).astype(np.uint8).tobytes())
                else:
                    data = bytearray(sw.build(1, np.where(rng.random(29) < 0.2, np.nan, stand), z, z, z, [1, 0, 0, 0],
                                              [0] * 3, [0] * 3, [0] * 3, temp, flags))
                loop.on_lowstate(bytes(data), t)
                continue
            if ev == "start":
                sample, _ = loop.state(t)
                if sample is not None and not loop.begin_goal():
                    q = np.clip(stand + rng.uniform(-3, 3, (int(rng.integers(1, 40)), 29)) * rng.choice([0.1, 1, 5]),
                                -1e3, 1e3)
                    traj = G1JointTrajectory(30.0, q, np.gradient(q, 1 / 30, axis=0) if len(q) > 1 else 0 * q,
                                             np.zeros((len(q), 3)), np.tile([1.0, 0, 0, 0], (len(q), 1)))
                    ramp = bool(rng.random() < 0.7)
                    loop.start_motion(lambda c=c, tr=traj, q=sample.q_rad, now=t, r=ramp:
                                      c.start(tr, q, now, ramp_in=r))
                continue
            if ev == "cancel":
                loop.start_motion(lambda c=c, now=t: c.go_to_hold(now))
            elif ev == "estop":
                loop.estop("fuzz")
            elif ev == "reset":
                loop.end_goal()
                loop.estop_reset()
            elif ev == "poison" and traj is not None:
                traj.positions_rad[rng.integers(0, len(traj.positions_rad))] = np.nan
            elif ev in ("encoder_fails", "encoder_works"):
                broken[0] = ev == "encoder_fails"
            elif ev == "hot":
                temp = np.where(rng.random(29) < 0.1, rng.uniform(80, 110), 40.0)
            elif ev == "fault":
                flags = np.where(rng.random(29) < 0.05, 1, 0).astype(np.uint32)
            if ev in ("robot", "tick", "stall"):
                t += 0.002 if ev != "stall" else rng.uniform(0.05, 1.0)
                if ev == "robot":
                    loop.on_lowstate(good(temp, flags), t)
                out = loop.tick(t)
                if out is None:
                    continue
                frame, ok = cr.read(out)
                counts["commands"] += 1
                counts["bad_crc"] += int(not ok)
                q, dq, kp, kd = frame.q[:29], frame.dq[:29], frame.kp[:29], frame.kd[:29]
                stiff_pair = prev is not None and prev.kp[:29].any() and kp.any()
                bad = not (np.all(np.isfinite(q)) and np.all((q >= lim.q_min_rad) & (q <= lim.q_max_rad))
                           and np.all(np.abs(dq) <= lim.dq_max_rad_s) and np.all((kp >= 0) & (kp <= lim.kp_max))
                           and np.all((kd >= 0) & (kd <= lim.kd_max)) and not frame.tau[:29].any()
                           and (not stiff_pair or np.all(np.abs(q - prev.q[:29]) <= lim.dq_max_rad_s * lim.period_s))
                           and (not (loop.stopped.is_set() or loop.estopped) or (not kp.any() and not dq.any())))
                counts["outside_limits"] += int(bad or not ok)
                prev = frame
        counts["stops"] += int(loop.stopped.is_set())
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trajectories", type=int, default=100_000)
    ap.add_argument("--ticks", type=int, default=200, help="commands per trajectory (500 Hz ticks)")
    ap.add_argument("--chunk", type=int, default=5_000, help="trajectories processed at once")
    ap.add_argument("--crc-samples", type=int, default=20_000, help="final commands encoded and CRC-checked")
    ap.add_argument("--loop-trajectories", type=int, default=300, help="runs of the whole ControlLoop")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("MENAGERIE_ROOT", str(REPO.parent / "shared" / "assets" / "menagerie"))
    lim, stand = _limits()
    self_test(lim)
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    total = {"commands": 0, "outside_limits": 0, "clamped": 0, "refused_non_finite": 0, "stalls": 0}
    last = []
    done = 0
    while done < args.trajectories:
        b = min(args.chunk, args.trajectories - done)
        c = fuzz_chunk(lim, b, args.ticks, rng)
        last.append(c.pop("last"))
        for key in total:
            total[key] += c[key]
        done += b
    t_vec = time.perf_counter() - t0
    t1 = time.perf_counter()
    crc_n, crc_bad = crc_check(last, args.crc_samples)
    t_crc = time.perf_counter() - t1
    t2 = time.perf_counter()
    lp = loop_fuzz(lim, stand, args.loop_trajectories, rng) if args.loop_trajectories else None
    t_loop = time.perf_counter() - t2

    print(f"safety fuzz, seed {args.seed}")
    print(f"  part 1: {done} trajectories x {args.ticks} ticks = {total['commands']} commands through "
          f"CommandLimits.apply_batch in {t_vec:.1f} s ({total['commands'] / t_vec / 1e6:.2f} M commands/s)")
    print(f"          {total['clamped']} clamped, {total['refused_non_finite']} non-finite refused (damping), "
          f"{total['stalls']} stalls of 50 ms - 1 s")
    print(f"          commands outside limits: {total['outside_limits']}")
    print(f"          LowCmd CRC: {crc_n} final commands encoded and decoded, {crc_bad} failures ({t_crc:.1f} s)")
    bad_loop = 0
    if lp:
        bad_loop = lp["outside_limits"] + lp["bad_crc"]
        print(f"  part 2: {lp['trajectories']} ControlLoop runs, {lp['commands']} LowCmds decoded in {t_loop:.1f} s, "
              f"{lp['stops']} ended stopped (damping); outside limits: {lp['outside_limits']}, "
              f"bad CRC: {lp['bad_crc']}")
    failures = total["outside_limits"] + crc_bad + bad_loop
    print(f"commands outside limits: {failures} (total time {time.perf_counter() - t0:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
