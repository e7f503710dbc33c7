"""LowState's C memory layout (2092 bytes) and its CRC, for the simulator and for checks.

Layout: version u32[2] @0, mode_pr u8 @8, mode_machine u8 @9, tick u32 @12, imu_state @16
(quaternion f32[4] w,x,y,z, gyroscope f32[3], accelerometer f32[3], rpy f32[3], temperature i16;
56 bytes), motor_state[35] @72 (56 bytes each: mode u8, q, dq, ddq, tau_est f32 @4..19,
temperature i16[2] @20, vol f32 @24, sensor u32[2] @28, motorstate u32 @36, reserve u32[4] @40),
wireless_remote u8[40] @2032, reserve u32[4] @2072, crc u32 @2088 over bytes 0..2087.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from exoactor.finite import all_finite
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
        quat = self.imu_quat_wxyz
        if not all_finite(self.q_rad, self.dq_rad_s):  # 500 Hz: one reduction per array
            return "non-finite joint values"
        if not all_finite(self.imu_gyro_rad_s) or not abs(math.sqrt(float(quat @ quat)) - 1.0) < 0.05:
            return "invalid IMU values"  # sqrt(nan) is nan: abs(nan - 1) < 0.05 is False
        return ""

    def tilt_rad(self) -> float:
        """Angle between the pelvis's z axis and the world's (0 upright)."""
        w, x, y, z = self.imu_quat_wxyz / np.linalg.norm(self.imu_quat_wxyz)
        return float(np.arccos(np.clip(1.0 - 2.0 * (x * x + y * y), -1.0, 1.0)))

    def faults(self) -> list[tuple[int, int]]:
        """(motor index, error flags) of every body motor reporting a fault."""
        if not np.count_nonzero(self.motorstate):  # the 500 Hz case, without building a list
            return []
        return [(int(i), int(self.motorstate[i])) for i in np.flatnonzero(self.motorstate)]


def _strided(dtype: np.dtype, field: str, base: int, stride: int, count: int) -> slice:
    """Element slice of ``field`` of ``count`` structs ``stride`` bytes apart from byte ``base``,
    in a flat array of ``dtype``'s scalar type (offsets from the structured dtypes above)."""
    off = base + MOTOR_STATE_DTYPE.fields[field][1] if field in MOTOR_STATE_DTYPE.names else base
    size = dtype.itemsize
    assert off % size == 0 and stride % size == 0
    return slice(off // size, off // size + stride // size * count, stride // size)


_MS0 = LOWSTATE_DTYPE.fields["motor_state"][1]
_IMU0 = LOWSTATE_DTYPE.fields["imu_state"][1]
_MS_STRIDE = MOTOR_STATE_DTYPE.itemsize
_Q = _strided(np.dtype("<f4"), "q", _MS0, _MS_STRIDE, NUM_BODY_JOINTS)
_DQ = _strided(np.dtype("<f4"), "dq", _MS0, _MS_STRIDE, NUM_BODY_JOINTS)
_MOTORSTATE = _strided(np.dtype("<u4"), "motorstate", _MS0, _MS_STRIDE, NUM_BODY_JOINTS)
_TEMP_A = _strided(np.dtype("<i2"), "temperature", _MS0, _MS_STRIDE, NUM_BODY_JOINTS)
_TEMP_B = slice(_TEMP_A.start + 1, _TEMP_A.stop + 1, _TEMP_A.step)
_QUAT = slice((_IMU0 + IMU_DTYPE.fields["quaternion"][1]) // 4, (_IMU0 + IMU_DTYPE.fields["quaternion"][1]) // 4 + 4)
_GYRO = slice((_IMU0 + IMU_DTYPE.fields["gyroscope"][1]) // 4, (_IMU0 + IMU_DTYPE.fields["gyroscope"][1]) // 4 + 3)
_CRC_AT = LOWSTATE_DTYPE.fields["crc"][1]
_MODE_MACHINE_AT = LOWSTATE_DTYPE.fields["mode_machine"][1]
_TICK_AT = LOWSTATE_DTYPE.fields["tick"][1]


def sample_from_c_bytes(c_bytes: bytes) -> LowStateSample:
    """LowStateSample from the 2092-byte C struct (CRC checked over bytes 0..2087).

    Read through flat strided views (offsets from LOWSTATE_DTYPE): this runs for every 500 Hz
    LowState, and a structured-array field access costs several times more."""
    if len(c_bytes) != LOWSTATE_DTYPE.itemsize:
        raise ValueError(f"LowState is {LOWSTATE_DTYPE.itemsize} bytes, got {len(c_bytes)}")
    f4 = np.frombuffer(c_bytes, dtype="<f4")
    u4 = np.frombuffer(c_bytes, dtype="<u4")
    i2 = np.frombuffer(c_bytes, dtype="<i2")
    crc_ok = unitree_crc32(c_bytes[:_CRC_AT]) == int(u4[_CRC_AT // 4])
    return LowStateSample(f4[_Q].astype(float), f4[_DQ].astype(float), c_bytes[_MODE_MACHINE_AT],
                          int(u4[_TICK_AT // 4]), np.maximum(i2[_TEMP_A], i2[_TEMP_B]).astype(float),
                          u4[_MOTORSTATE].copy(), crc_ok, f4[_QUAT].astype(float), f4[_GYRO].astype(float))
