"""Fast wire encoding of LowCmd / LowState: C struct bytes <-> ROS 2 CDR bytes with numpy.

Both messages are fixed-size, so their CDR serialisation (XCDR1 little-endian, as rmw_fastrtps
and rmw_cyclonedds write it) differs from the C struct the CRC is defined on only by padding.
From one field list, :func:`byte_map` derives both layouts and a byte permutation between them:
encoding a 500 Hz LowCmd is one numpy indexing operation instead of building 35 nested Python
message objects. ROS-free: :func:`exoactor.nodes.unitree_io.check_against` verifies a map against
rclpy's own serializer at start-up, and the nodes fall back to message objects if it ever disagrees.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from exoactor.g1.joints import NUM_MOTOR_SLOTS

CDR_LE_HEADER = b"\x00\x01\x00\x00"

# Field lists: (primitive size in bytes, count) or ("struct", fields, count).
MOTOR_CMD = [(1, 1), (4, 5), (4, 1)]                      # mode, q dq tau kp kd, reserve
LOWCMD = [(1, 2), ("struct", MOTOR_CMD, NUM_MOTOR_SLOTS), (4, 4), (4, 1)]
IMU_STATE = [(4, 4), (4, 3), (4, 3), (4, 3), (2, 1)]       # quaternion, gyro, acc, rpy, temperature
MOTOR_STATE = [(1, 1), (4, 4), (2, 2), (4, 1), (4, 2), (4, 1), (4, 4)]
LOWSTATE = [(4, 2), (1, 2), (4, 1), ("struct", IMU_STATE, 1), ("struct", MOTOR_STATE, NUM_MOTOR_SLOTS),
            (1, 40), (4, 4), (4, 1)]


def _align(off: int, a: int) -> int:
    return (off + a - 1) // a * a


def _max_align(fields) -> int:
    return max(_max_align(f[1]) if f[0] == "struct" else f[0] for f in fields)


def _walk(fields, c_off: int, cdr_off: int, out: list) -> tuple[int, int]:
    """Append (size, c_offset, cdr_offset) per primitive; return the end offsets."""
    for f in fields:
        if f[0] == "struct":
            _, sub, count = f
            a = _max_align(sub)
            for _ in range(count):
                c_off = _align(c_off, a)
                start = c_off
                c_off, cdr_off = _walk(sub, c_off, cdr_off, out)
                c_off = start + _align(c_off - start, a)
        else:
            size, count = f
            for _ in range(count):
                c_off, cdr_off = _align(c_off, size), _align(cdr_off, size)
                out.append((size, c_off, cdr_off))
                c_off += size
                cdr_off += size
    return c_off, cdr_off


@dataclass(frozen=True)
class ByteMap:
    """c_size/cdr_size: payload sizes; cdr_from_c[i] = C byte index for CDR byte i (-1 = padding)."""

    c_size: int
    cdr_size: int
    cdr_from_c: np.ndarray

    @functools.cached_property
    def _gather(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Index arrays prepared once (the 500 Hz path is one numpy take each way): the C byte of
        every CDR byte (c_size = a zero byte), and the CDR bytes that carry data with their C bytes."""
        valid = self.cdr_from_c >= 0
        return (np.where(valid, self.cdr_from_c, self.c_size), np.flatnonzero(valid), self.cdr_from_c[valid])

    def to_cdr(self, c_bytes: bytes) -> bytes:
        """C struct bytes -> CDR message bytes (with the encapsulation header)."""
        if len(c_bytes) != self.c_size:
            raise ValueError(f"expected a {self.c_size}-byte C struct, got {len(c_bytes)} bytes")
        src = np.empty(self.c_size + 1, dtype=np.uint8)
        src[:-1] = np.frombuffer(c_bytes, dtype=np.uint8)
        src[-1] = 0  # index c_size -> a zero byte (padding)
        return CDR_LE_HEADER + src.take(self._gather[0]).tobytes()

    def to_c(self, cdr_bytes: bytes) -> bytes:
        """CDR message bytes -> C struct bytes (padding zero). Raises ValueError on a foreign encoding."""
        if len(cdr_bytes) != 4 + self.cdr_size or cdr_bytes[:2] != CDR_LE_HEADER[:2]:
            raise ValueError(f"not a little-endian CDR payload of {4 + self.cdr_size} bytes")
        _, data_cdr, data_c = self._gather
        out = np.zeros(self.c_size, dtype=np.uint8)
        out[data_c] = np.frombuffer(cdr_bytes, dtype=np.uint8, offset=4).take(data_cdr)
        return out.tobytes()


def byte_map(fields) -> ByteMap:
    prims: list = []
    c_end, cdr_end = _walk(fields, 0, 0, prims)
    c_size = _align(c_end, _max_align(fields))
    m = np.full(cdr_end, -1, dtype=np.int64)
    for size, c, d in prims:
        m[d:d + size] = np.arange(c, c + size)
    return ByteMap(c_size, cdr_end, m)


LOWCMD_MAP = byte_map(LOWCMD)
"""LowCmd: 1004-byte C struct <-> 1000-byte CDR payload."""
LOWSTATE_MAP = byte_map(LOWSTATE)
"""LowState: 2092-byte C struct <-> 2088-byte CDR payload."""
