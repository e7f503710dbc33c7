"""LowState's C memory layout (2092 bytes) and its CRC, for the simulator and for checks.

Layout: version u32[2] @0, mode_pr u8 @8, mode_machine u8 @9, tick u32 @12, imu_state @16
(quaternion f32[4] w,x,y,z, gyroscope f32[3], accelerometer f32[3], rpy f32[3], temperature i16;
56 bytes), motor_state[35] @72 (56 bytes each: mode u8, q, dq, ddq, tau_est f32 @4..19,
temperature i16[2] @20, vol f32 @24, sensor u32[2] @28, motorstate u32 @36, reserve u32[4] @40),
wireless_remote u8[40] @2032, reserve u32[4] @2072, crc u32 @2088 over bytes 0..2087.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exoactor.g1.joints import NUM_BODY_JOINTS, NUM_MOTOR_SLOTS
from exoactor.g1.lowcmd import unitree_crc32

IMU_DTYPE = np.dtype({"names": ["quaternion", "gyroscope", "accelerometer", "rpy", "temperature"],
                      "formats": [("<f4", (4,)), ("<f4", (3,)), ("<f4", (3,)), ("<f4", (3,)), "<i2"],
                      "offsets": [0, 16, 28, 40, 52], "itemsize": 56})
MOTOR_STATE_DTYPE = np.dtype({"names": ["mode", "q", "dq", "ddq", "tau_est", "temperature", "vol", "sensor",
                                        "motorstate", "reserve"],
                              "formats": ["u1", "<f4", "<f4", "<f4", "<f4", ("<i2", (2,)), "<f4", ("<u4", (2,)),
                                          "<u4", ("<u4", (4,))],
                              "offsets": [0, 4, 8, 12, 16, 20, 24, 28, 36, 40], "itemsize": 56})
LOWSTATE_DTYPE = np.dtype({"names": ["version", "mode_pr", "mode_machine", "tick", "imu_state", "motor_state",
                                     "wireless_remote", "reserve", "crc"],
                           "formats": [("<u4", (2,)), "u1", "u1", "<u4", IMU_DTYPE,
                                       (MOTOR_STATE_DTYPE, (NUM_MOTOR_SLOTS,)), ("u1", (40,)), ("<u4", (4,)), "<u4"],
                           "offsets": [0, 8, 9, 12, 16, 72, 2032, 2072, 2088], "itemsize": 2092})


def lowstate_crc(record: np.ndarray) -> int:
    """CRC of a LOWSTATE_DTYPE record (bytes 0..2087)."""
    return unitree_crc32(record.tobytes()[:2088])


@dataclass(frozen=True)
class LowStateSample:
    """What the controller uses of one LowState (body motors 0..28, Unitree motor order).

    q_rad, dq_rad_s: (29,); temperature_c: (29,) the hotter of each motor's two sensors (deg C);
    motorstate: (29,) motor error flags (nonzero = fault); crc_ok: the CRC matched the content;
    imu_quat_wxyz: (4,) pelvis IMU orientation (w, x, y, z); imu_gyro_rad_s: (3,) its angular
    velocity in the IMU (pelvis) frame.
    """

    q_rad: np.ndarray
    dq_rad_s: np.ndarray
    mode_machine: int
    tick: int
    temperature_c: np.ndarray
    motorstate: np.ndarray
    crc_ok: bool
    imu_quat_wxyz: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))
    imu_gyro_rad_s: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def problem(self) -> str:
        """Why this state must not be used ('' if it may): bad CRC, non-finite joint or IMU values."""
        if not self.crc_ok:
            return "bad CRC"
        if not (np.all(np.isfinite(self.q_rad)) and np.all(np.isfinite(self.dq_rad_s))):
            return "non-finite joint values"
        n = float(np.linalg.norm(self.imu_quat_wxyz)) if np.all(np.isfinite(self.imu_quat_wxyz)) else float("nan")
        if not (abs(n - 1.0) < 0.05 and np.all(np.isfinite(self.imu_gyro_rad_s))):
            return "invalid IMU values"
        return ""

    def tilt_rad(self) -> float:
        """Angle between the pelvis's z axis and the world's (0 upright)."""
        w, x, y, z = self.imu_quat_wxyz / np.linalg.norm(self.imu_quat_wxyz)
        return float(np.arccos(np.clip(1.0 - 2.0 * (x * x + y * y), -1.0, 1.0)))

    def faults(self) -> list[tuple[int, int]]:
        """(motor index, error flags) of every body motor reporting a fault."""
        return [(int(i), int(self.motorstate[i])) for i in np.flatnonzero(self.motorstate)]


def sample_from_c_bytes(c_bytes: bytes) -> LowStateSample:
    """LowStateSample from the 2092-byte C struct (CRC checked over bytes 0..2087)."""
    if len(c_bytes) != LOWSTATE_DTYPE.itemsize:
        raise ValueError(f"LowState is {LOWSTATE_DTYPE.itemsize} bytes, got {len(c_bytes)}")
    rec = np.frombuffer(c_bytes, dtype=LOWSTATE_DTYPE)[0]
    ms = rec["motor_state"][:NUM_BODY_JOINTS]
    crc_ok = unitree_crc32(c_bytes[:2088]) == int(rec["crc"])
    return LowStateSample(ms["q"].astype(float), ms["dq"].astype(float), int(rec["mode_machine"]), int(rec["tick"]),
                          ms["temperature"].max(axis=1).astype(float), ms["motorstate"].copy(), crc_ok,
                          rec["imu_state"]["quaternion"].astype(float), rec["imu_state"]["gyroscope"].astype(float))
