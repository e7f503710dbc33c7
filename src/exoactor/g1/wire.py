"""Fast wire encoding of LowCmd / LowState: C struct bytes <-> ROS 2 CDR bytes with numpy.

Both messages are fixed-size, so their CDR serialisation (XCDR1 little-endian, as rmw_fastrtps
and rmw_cyclonedds write it) differs from the C struct the CRC is defined on only by padding.
From one field list, :func:`byte_map` derives both layouts and a byte permutation between them:
encoding a 500 Hz LowCmd is one numpy indexing operation instead of building 35 nested Python
message objects. :func:`check_against` verifies the map against rclpy's own serializer at start-up;
callers fall back to message objects if it ever disagrees.
"""
from __future__ import annotations

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

    def to_cdr(self, c_bytes: bytes) -> bytes:
        """C struct bytes -> CDR message bytes (with the encapsulation header)."""
        src = np.frombuffer(c_bytes, dtype=np.uint8)
        src = np.concatenate([src, np.zeros(1, np.uint8)])  # index -1 -> a zero byte
        return CDR_LE_HEADER + src[self.cdr_from_c].tobytes()

    def to_c(self, cdr_bytes: bytes) -> bytes:
        """CDR message bytes -> C struct bytes (padding zero). Raises ValueError on a foreign encoding."""
        if len(cdr_bytes) != 4 + self.cdr_size or cdr_bytes[:2] != CDR_LE_HEADER[:2]:
            raise ValueError(f"not a little-endian CDR payload of {4 + self.cdr_size} bytes")
        src = np.frombuffer(cdr_bytes, dtype=np.uint8, offset=4)
        out = np.zeros(self.c_size, dtype=np.uint8)
        valid = self.cdr_from_c >= 0
        out[self.cdr_from_c[valid]] = src[valid]
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


def check_against(bmap: ByteMap, msg_type, c_record_of) -> bool:
    """True if rclpy serialises a sample message exactly as ``bmap`` predicts.

    ``c_record_of(msg)`` must return the C struct bytes of a message object.
    """
    from rclpy.serialization import serialize_message  # noqa: PLC0415

    msg = msg_type()
    rng = np.random.default_rng(7)
    _fill_random(msg, rng)
    try:
        ours = np.frombuffer(bmap.to_cdr(c_record_of(msg)), dtype=np.uint8)
        theirs = np.frombuffer(serialize_message(msg), dtype=np.uint8)
    except Exception:  # noqa: BLE001 - any failure means: do not use the fast path
        return False
    if ours.shape != theirs.shape or not np.array_equal(ours[:2], theirs[:2]):
        return False
    data = np.concatenate([np.zeros(4, bool), bmap.cdr_from_c >= 0])  # the serializer leaves padding unset
    return bool(np.array_equal(ours[data], theirs[data]))


def _fill_random(msg, rng) -> None:
    """Fill every numeric field of a (nested, fixed-size) message with random values."""
    for name, typ in msg.get_fields_and_field_types().items():
        val = getattr(msg, name)
        if hasattr(val, "get_fields_and_field_types"):
            _fill_random(val, rng)
        elif isinstance(val, list) and val and hasattr(val[0], "get_fields_and_field_types"):
            for v in val:
                _fill_random(v, rng)
        else:
            base = typ.split("[")[0]
            n = len(val) if not np.isscalar(val) else None
            gen = (lambda: float(np.float32(rng.normal()))) if base.startswith("float") else (
                lambda: int(rng.integers(0, 120 if base in ("uint8", "int8") else 30000)))
            setattr(msg, name, [gen() for _ in range(n)] if n is not None else gen())
