"""LowState's C memory layout (2092 bytes) and its CRC, for the simulator and for checks.

Layout: version u32[2] @0, mode_pr u8 @8, mode_machine u8 @9, tick u32 @12, imu_state @16
(quaternion f32[4] w,x,y,z, gyroscope f32[3], accelerometer f32[3], rpy f32[3], temperature i16;
56 bytes), motor_state[35] @72 (56 bytes each: mode u8, q, dq, ddq, tau_est f32 @4..19,
temperature i16[2] @20, vol f32 @24, sensor u32[2] @28, motorstate u32 @36, reserve u32[4] @40),
wireless_remote u8[40] @2032, reserve u32[4] @2072, crc u32 @2088 over bytes 0..2087.
"""
from __future__ import annotations

import numpy as np

from exoactor.g1.joints import NUM_MOTOR_SLOTS
from exoactor.g1.lowcmd import unitree_crc32

IMU_DTYPE = np.dtype({"names": ["quaternion", "gyroscope", "accelerometer", "rpy", "temperature"],
                      "formats": [("<f4", (4,)), ("<f4", (3,)), ("<f4", (3,)), ("<f4", (3,)), "<i2"],
                      "offsets": [0, 16, 28, 40, 52], "itemsize": 56})
MOTOR_STATE_DTYPE = np.dtype({"names": ["mode", "q", "dq", "ddq", "tau_est", "temperature", "vol", "sensor", "motorstate", "reserve"],
                              "formats": ["u1", "<f4", "<f4", "<f4", "<f4", ("<i2", (2,)), "<f4", ("<u4", (2,)), "<u4", ("<u4", (4,))],
                              "offsets": [0, 4, 8, 12, 16, 20, 24, 28, 36, 40], "itemsize": 56})
LOWSTATE_DTYPE = np.dtype({"names": ["version", "mode_pr", "mode_machine", "tick", "imu_state", "motor_state",
                                     "wireless_remote", "reserve", "crc"],
                           "formats": [("<u4", (2,)), "u1", "u1", "<u4", IMU_DTYPE, (MOTOR_STATE_DTYPE, (NUM_MOTOR_SLOTS,)),
                                       ("u1", (40,)), ("<u4", (4,)), "<u4"],
                           "offsets": [0, 8, 9, 12, 16, 72, 2032, 2072, 2088], "itemsize": 2092})


def lowstate_crc(record: np.ndarray) -> int:
    """CRC of a LOWSTATE_DTYPE record (bytes 0..2087)."""
    return unitree_crc32(record.tobytes()[:2088])
