"""The command safety layer: every joint command leaves through :meth:`CommandLimits.apply_batch`.

For every command it returns (property-tested in test/unit/test_safety_properties.py and fuzzed
by benchmarks/safety_fuzz.py), exactly as float32 on the wire:

- ``q`` inside the joint window shrunk by the margin;
- ``|q - q_prev| <= dq_max * period_s``: the step per tick comes from the NOMINAL control period,
  so a stalled loop never widens it (after a stall the command catches up at the speed limit);
- ``|dq| <= dq_max``; ``dq = tau = 0`` on every joint whose position was clamped, and ``dq`` never
  points out of the window at a bound;
- ``0 <= kp <= kp_max``, ``0 <= kd <= kd_max``, ``|tau| <= tau_max`` (0 unless a bound is given);
- a command with a non-finite value (or the wrong shape) is not made safe by clamping: it is
  refused (:meth:`apply` raises :class:`UnsafeCommandError`; :meth:`apply_batch` marks the row and
  returns the damping command for it) and the caller switches to damping.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from exoactor.g1.joints import DAMPING_KD, DEFAULT_KD, DEFAULT_KP

DEFAULT_KP_MAX = 2.0 * DEFAULT_KP
DEFAULT_KP_MAX[12:15] = 300.0
"""Upper bound of kp per joint (N*m/rad): twice Unitree's example gains (the RL leg policy's
100/150 on hips/knees fits), 300 on the waist (Unitree's 29-DoF deploy of that policy holds the
waist at 300)."""
DEFAULT_KD_MAX = np.maximum(2.0 * DEFAULT_KD, DAMPING_KD)
"""Upper bound of kd per joint (N*m*s/rad): Unitree's damping kd (8), which is above twice every
example gain and the RL leg policy's 2-4."""


class UnsafeCommandError(ValueError):
    """A command that cannot be made safe by clamping (NaN/Inf, wrong shape)."""


def _clip(x, lo, hi):
    """np.clip without its per-call overhead (inputs are finite here)."""
    return np.minimum(np.maximum(x, lo), hi)


def _f32_inward(x: np.ndarray, direction: float) -> np.ndarray:
    """float32-representable values no further out than ``x`` (direction +1: round up, -1: down)."""
    x = np.asarray(x, dtype=np.float64)
    y = x.astype(np.float32)
    out = (y < x) if direction > 0 else (y > x)
    y = np.where(out, np.nextafter(y, np.float32(direction * np.inf)), y)
    return y.astype(np.float64)


@dataclass(frozen=True)
class SafeCommand:
    """One command (or a batch, leading dimensions) after the safety layer, float32-exact values.

    clamped: per joint, True where ``q`` was clamped (window or step); ok: False where the input
    was not finite (the values are then the damping command).
    """

    q: np.ndarray
    dq: np.ndarray
    tau: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    clamped: np.ndarray
    ok: np.ndarray

    @property
    def changed(self) -> int:
        """Number of joints whose position was clamped."""
        return int(np.count_nonzero(self.clamped))


@dataclass(frozen=True)
class CommandLimits:
    """Per-joint command bounds in Unitree motor order (29 entries each), float32-representable.

    q_min_rad/q_max_rad: joint position window already shrunk by the safety margin;
    dq_max_rad_s: joint speed bound for commanded velocities and, times ``period_s`` (the nominal
    control period), for the change of the position target between two ticks;
    kp_max/kd_max: gain bounds; damping_kd: kd of the damping command (kp = 0); tau_max_nm:
    feed-forward torque bound (default 0: no feed-forward).
    """

    q_min_rad: np.ndarray
    q_max_rad: np.ndarray
    dq_max_rad_s: np.ndarray
    period_s: float = 1.0 / 500.0
    kp_max: np.ndarray = field(default_factory=lambda: _f32_inward(DEFAULT_KP_MAX, -1))
    kd_max: np.ndarray = field(default_factory=lambda: _f32_inward(DEFAULT_KD_MAX, -1))
    damping_kd: np.ndarray = field(default_factory=lambda: np.full(29, DAMPING_KD))
    tau_max_nm: np.ndarray = field(default_factory=lambda: np.zeros(29))

    @classmethod
    def from_ranges(cls, q_range_rad: np.ndarray, dq_max_rad_s: float | np.ndarray, margin_rad: float = 0.02,
                    period_s: float = 1.0 / 500.0, kp_max: np.ndarray | None = None,
                    kd_max: np.ndarray | None = None, tau_max_nm: np.ndarray | None = None) -> CommandLimits:
        """Build from (29, 2) joint ranges; ``margin_rad`` keeps targets off the hard stops."""
        q_range_rad = np.asarray(q_range_rad, dtype=np.float64)
        lo = _f32_inward(q_range_rad[:, 0] + margin_rad, +1)
        hi = _f32_inward(q_range_rad[:, 1] - margin_rad, -1)
        if not np.isfinite(margin_rad) or margin_rad < 0:
            raise ValueError(f"safety margin must be >= 0, got {margin_rad}")
        if np.any(lo > hi):
            raise ValueError("safety margin larger than a joint range")
        if not (np.isfinite(period_s) and period_s > 0):
            raise ValueError(f"control period must be > 0, got {period_s}")
        n = lo.shape

        def bound(v, what):
            v = np.broadcast_to(np.asarray(v, dtype=np.float64), n).copy()
            if not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ValueError(f"{what} must be finite and >= 0")
            return _f32_inward(v, -1)

        dq = bound(dq_max_rad_s, "joint speed bound")
        kpm = bound(DEFAULT_KP_MAX if kp_max is None else kp_max, "kp_max")
        kdm = bound(DEFAULT_KD_MAX if kd_max is None else kd_max, "kd_max")
        taum = bound(0.0 if tau_max_nm is None else tau_max_nm, "tau_max_nm")
        return cls(lo, hi, dq, float(period_s), kpm, kdm, np.minimum(_f32_inward(np.full(n, DAMPING_KD), -1), kdm),
                   taum)

    def check_finite(self, q: np.ndarray, what: str = "command") -> None:
        """Raise UnsafeCommandError unless ``q`` has the right shape and is finite."""
        q = np.asarray(q)
        if q.shape[-1:] != self.q_min_rad.shape:
            raise UnsafeCommandError(f"{what}: expected {self.q_min_rad.shape[0]} joints, got shape {q.shape}")
        if not np.all(np.isfinite(q)):
            bad = np.argwhere(~np.isfinite(q))[:3].tolist()
            raise UnsafeCommandError(f"{what}: non-finite joint values at {bad}")

    def damping(self, q_rad: np.ndarray | None) -> SafeCommand:
        """The damping command (kp = 0, kd = damping_kd, dq = tau = 0); ``q`` kept inside the window."""
        mid = (self.q_min_rad + self.q_max_rad) / 2
        q = mid if q_rad is None else np.asarray(q_rad, dtype=np.float64)
        q = np.where(np.isfinite(q), q, mid).astype(np.float32).astype(np.float64)
        q = _clip(q, self.q_min_rad, self.q_max_rad)
        z = np.zeros(q.shape)
        return SafeCommand(q, z, z.copy(), z.copy(), np.broadcast_to(self.damping_kd, q.shape).copy(),
                           np.zeros(q.shape, bool), np.ones(q.shape[:-1], bool))

    @functools.cached_property
    def step_max_rad(self) -> np.ndarray:
        """Largest change of a position target between two ticks: dq_max * nominal period."""
        return self.dq_max_rad_s * self.period_s

    def _bound(self, q_in: np.ndarray, dq_in: np.ndarray, kp_in: np.ndarray, kd_in: np.ndarray,
               tau_in: np.ndarray, prev: np.ndarray | None) -> SafeCommand:
        """The bounds themselves, on FINITE float64 inputs of one shape (..., 29): the one definition
        both :meth:`apply` (one command, 500 Hz) and :meth:`apply_batch` use."""
        q_min, q_max = self.q_min_rad, self.q_max_rad
        q = _clip(q_in, q_min, q_max)
        if prev is not None:
            step = self.step_max_rad
            q = _clip(_clip(q, prev - step, prev + step), q_min, q_max)
        # float32 on the wire: round, and where rounding crossed the step bound, move one ulp back.
        q32 = q.astype(np.float32)
        if prev is not None:
            over = np.abs(q32.astype(np.float64) - prev) > step
            if over.any():
                q32 = np.where(over, np.nextafter(q32, prev.astype(np.float32)), q32)
        q = _clip(q32.astype(np.float64), q_min, q_max)
        clamped = (q != q_in) & (np.abs(q - q_in) > 1e-6)  # float32 rounding alone is not a clamp
        dq = _clip(dq_in, -self.dq_max_rad_s, self.dq_max_rad_s)
        dq = np.where(clamped | ((q >= q_max) & (dq > 0)) | ((q <= q_min) & (dq < 0)), 0.0, dq)
        tau = _clip(np.where(clamped, 0.0, tau_in), -self.tau_max_nm, self.tau_max_nm)
        kp = _clip(kp_in, 0.0, self.kp_max)
        kd = _clip(kd_in, 0.0, self.kd_max)
        f32 = np.float32
        return SafeCommand(q, dq.astype(f32).astype(np.float64), tau.astype(f32).astype(np.float64),
                           kp.astype(f32).astype(np.float64), kd.astype(f32).astype(np.float64), clamped,
                           np.ones(q.shape[:-1], bool))

    def apply_batch(self, q_rad: np.ndarray, dq_rad_s: np.ndarray, q_prev_rad: np.ndarray | None = None,
                    kp: np.ndarray | None = None, kd: np.ndarray | None = None,
                    tau_nm: np.ndarray | None = None) -> SafeCommand:
        """Make commands safe; arrays (..., 29), broadcast together. ``q_prev_rad`` (the previous
        output of this method, or None for the first command) bounds the step per tick.

        Rows with a non-finite value get ``ok = False`` and the damping command (holding q_prev).
        """
        q_in = np.asarray(q_rad, dtype=np.float64)
        dq_in = np.asarray(dq_rad_s, dtype=np.float64)
        if q_in.shape[-1:] != self.q_min_rad.shape or dq_in.shape[-1:] != self.q_min_rad.shape:
            raise UnsafeCommandError(f"expected {self.q_min_rad.shape[0]} joints, got shapes {q_in.shape}, "
                                     f"{dq_in.shape}")
        zeros = np.zeros(self.q_min_rad.shape)
        kp_in = np.asarray(zeros if kp is None else kp, dtype=np.float64)
        kd_in = np.asarray(zeros if kd is None else kd, dtype=np.float64)
        tau_in = np.asarray(zeros if tau_nm is None else tau_nm, dtype=np.float64)
        q_in, dq_in, kp_in, kd_in, tau_in = np.broadcast_arrays(q_in, dq_in, kp_in, kd_in, tau_in)
        finite = np.isfinite(q_in) & np.isfinite(dq_in) & np.isfinite(kp_in) & np.isfinite(kd_in) & np.isfinite(tau_in)
        ok = np.all(finite, axis=-1)
        prev = None if q_prev_rad is None else np.broadcast_to(np.asarray(q_prev_rad, dtype=np.float64), q_in.shape)
        if np.all(ok):
            return self._bound(q_in, dq_in, kp_in, kd_in, tau_in, prev)
        out = self._bound(*(np.where(finite, a, 0.0) for a in (q_in, dq_in, kp_in, kd_in, tau_in)), prev)
        bad = ~ok[..., None]
        hold = self.damping(prev).q
        return SafeCommand(np.where(bad, hold, out.q), *(np.where(bad, 0.0, a) for a in (out.dq, out.tau, out.kp)),
                           np.where(bad, self.damping_kd, out.kd), out.clamped | ~finite, ok)

    def apply(self, q_rad: np.ndarray, dq_rad_s: np.ndarray, q_prev_rad: np.ndarray | None = None,
              kp: np.ndarray | None = None, kd: np.ndarray | None = None,
              tau_nm: np.ndarray | None = None) -> SafeCommand:
        """One command (29,) through the same bounds as :meth:`apply_batch`; raises
        UnsafeCommandError on NaN/Inf or a wrong shape (the caller switches to damping)."""
        n = self.q_min_rad.shape
        zeros = self._zeros
        args = []
        for what, v in (("position target", q_rad), ("velocity target", dq_rad_s), ("kp", kp), ("kd", kd),
                        ("feed-forward torque", tau_nm)):
            if v is None:
                args.append(zeros)
                continue
            v = np.asarray(v, dtype=np.float64)
            if v.shape != n or not np.isfinite(v).all():
                self.check_finite(v, what)
                raise UnsafeCommandError(f"{what}: expected one command of shape {n}, got shape {v.shape}")
            args.append(v)
        prev = None if q_prev_rad is None else np.asarray(q_prev_rad, dtype=np.float64)
        if prev is not None and prev.shape != n:
            raise UnsafeCommandError(f"previous command: expected shape {n}, got {prev.shape}")
        return self._bound(*args, prev)

    @functools.cached_property
    def _zeros(self) -> np.ndarray:
        z = np.zeros(self.q_min_rad.shape)
        z.flags.writeable = False
        return z

    def violations(self, cmd: SafeCommand, q_prev_rad: np.ndarray | None = None) -> np.ndarray:
        """Per command (leading dims), True where ``cmd`` breaks a guarantee (for tests and the fuzz)."""
        q, dq = cmd.q, cmd.dq
        bad = ~(np.isfinite(q) & np.isfinite(dq) & np.isfinite(cmd.kp) & np.isfinite(cmd.kd) & np.isfinite(cmd.tau))
        bad |= (q < self.q_min_rad) | (q > self.q_max_rad)
        bad |= np.abs(dq) > self.dq_max_rad_s
        bad |= (cmd.clamped & ((dq != 0) | (cmd.tau != 0)))
        bad |= (cmd.kp < 0) | (cmd.kp > self.kp_max) | (cmd.kd < 0) | (cmd.kd > self.kd_max)
        bad |= np.abs(cmd.tau) > self.tau_max_nm
        if q_prev_rad is not None:
            bad |= np.abs(q - np.asarray(q_prev_rad, dtype=np.float64)) > self.step_max_rad
        for a in (q, dq, cmd.kp, cmd.kd, cmd.tau):  # exactly representable on the wire
            bad |= a.astype(np.float32).astype(np.float64) != a
        return np.any(bad, axis=-1)

    def contains(self, q_rad: np.ndarray, tol: float = 1e-6) -> bool:
        """True when every position lies inside the (margin-shrunk) window."""
        q = np.asarray(q_rad)
        return bool(np.all(q >= self.q_min_rad - tol) and np.all(q <= self.q_max_rad + tol))
