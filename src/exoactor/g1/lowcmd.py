"""LowCmd as plain arrays, its C memory layout, and the CRC the G1 checks.

The layout follows ``unitree_hg::msg::dds_::LowCmd_`` (naturally aligned, little-endian,
1004 bytes): byte 0 mode_pr, 1 mode_machine, 2-3 zero padding; motor i at 4 + 28*i: mode (u8),
3 zero padding bytes, q, dq, tau, kp, kd (f32), reserve (u32); bytes 984-999 reserve[0..3];
bytes 1000-1003 crc. The CRC covers bytes 0..999 (see :func:`unitree_crc32`).
"""
from __future__ import annotations

import array
import binascii
from dataclasses import dataclass, field

import numpy as np

from exoactor.g1.joints import NUM_MOTOR_SLOTS

LOWCMD_DTYPE = np.dtype({
    "names": ["mode_pr", "mode_machine", "motor", "reserve", "crc"],
    "formats": [
        "u1", "u1",
        (np.dtype({"names": ["mode", "q", "dq", "tau", "kp", "kd", "reserve"],
                   "formats": ["u1", "<f4", "<f4", "<f4", "<f4", "<f4", "<u4"],
                   "offsets": [0, 4, 8, 12, 16, 20, 24], "itemsize": 28}), (NUM_MOTOR_SLOTS,)),
        ("<u4", (4,)), "<u4"],
    "offsets": [0, 1, 4, 984, 1000],
    "itemsize": 1004,
})
"""numpy structured dtype with exactly the C struct layout of LowCmd (padding bytes zero)."""

# Bit-reversal of every byte value: lets zlib's reflected CRC-32 compute the non-reflected one.
_BITREV8 = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], dtype=np.uint8)
_BITREV8_TABLE = _BITREV8.tobytes()
assert array.array("I").itemsize == 4


def _bitrev32(x: int) -> int:
    return int(f"{x:032b}"[::-1], 2)


def unitree_crc32(payload: bytes) -> int:
    """Unitree's CRC-32 of ``payload`` (length a multiple of 4).

    Polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final XOR, fed 32-bit
    little-endian words most-significant bit first (= CRC-32/MPEG-2 over each word's bytes
    reversed). Computed through zlib's reflected CRC-32 on bit-reversed bytes.
    """
    if len(payload) % 4:
        raise ValueError(f"payload length {len(payload)} is not a multiple of 4")
    words = array.array("I", bytes(payload).translate(_BITREV8_TABLE))  # every byte bit-reversed (C speed)
    words.byteswap()  # reverses the 4 bytes of every word in memory, whatever the host's byte order
    return _bitrev32(binascii.crc32(words) ^ 0xFFFFFFFF)


@dataclass
class LowCmdFrame:
    """One LowCmd as arrays over the 35 motor slots (Unitree motor order).

    q: rad, dq: rad/s, tau: N*m feed-forward, kp: N*m/rad, kd: N*m*s/rad, mode: 1 enable / 0 off.
    """

    q: np.ndarray = field(default_factory=lambda: np.zeros(NUM_MOTOR_SLOTS))
    dq: np.ndarray = field(default_factory=lambda: np.zeros(NUM_MOTOR_SLOTS))
    tau: np.ndarray = field(default_factory=lambda: np.zeros(NUM_MOTOR_SLOTS))
    kp: np.ndarray = field(default_factory=lambda: np.zeros(NUM_MOTOR_SLOTS))
    kd: np.ndarray = field(default_factory=lambda: np.zeros(NUM_MOTOR_SLOTS))
    mode: np.ndarray = field(default_factory=lambda: np.zeros(NUM_MOTOR_SLOTS, dtype=np.uint8))
    mode_pr: int = 0
    mode_machine: int = 0
    reserve: tuple[int, int, int, int] = (0, 0, 0, 0)

    def to_struct(self) -> np.ndarray:
        """The frame as a zero-initialised LOWCMD_DTYPE record with its CRC filled in."""
        rec = np.zeros((), dtype=LOWCMD_DTYPE)
        rec["mode_pr"] = self.mode_pr
        rec["mode_machine"] = self.mode_machine
        m = rec["motor"]
        m["mode"] = self.mode
        m["q"] = self.q
        m["dq"] = self.dq
        m["tau"] = self.tau
        m["kp"] = self.kp
        m["kd"] = self.kd
        rec["reserve"] = self.reserve
        rec["crc"] = unitree_crc32(rec.tobytes()[:1000])
        return rec

    def crc(self) -> int:
        """CRC the robot expects in LowCmd.crc for this frame (float32-rounded values)."""
        return int(self.to_struct()["crc"])


class BodyCommandPacker:
    """The 29 body motors' command into LowCmd C bytes, CRC set: the 500 Hz encoder.

    Byte-identical to ``LowCmdFrame(...).to_struct().tobytes()`` for the same values (slots 29-34
    off, reserve zero), but the struct is prepared once and written through flat float32 views
    (offsets from LOWCMD_DTYPE): no frame objects, no structured-array field access per command.
    """

    def __init__(self, n_motors: int):
        if not 0 < n_motors <= NUM_MOTOR_SLOTS:
            raise ValueError(f"n_motors must be 1-{NUM_MOTOR_SLOTS}, got {n_motors}")
        rec = np.zeros((), dtype=LOWCMD_DTYPE)
        rec["motor"]["mode"][:n_motors] = 1
        self._buf = np.frombuffer(bytearray(rec.tobytes()), dtype=np.uint8)
        self._f4 = self._buf[:1000].view("<f4")
        self._u4 = self._buf.view("<u4")
        motor0, motor = LOWCMD_DTYPE.fields["motor"][1], LOWCMD_DTYPE.fields["motor"][0].base
        stride = motor.itemsize // 4

        def sl(name):
            start = (motor0 + motor.fields[name][1]) // 4
            return slice(start, start + stride * n_motors, stride)

        self._q, self._dq, self._tau, self._kp, self._kd = (sl(f) for f in ("q", "dq", "tau", "kp", "kd"))
        self._mode_pr_at = LOWCMD_DTYPE.fields["mode_pr"][1]
        self._mode_machine_at = LOWCMD_DTYPE.fields["mode_machine"][1]
        self._crc_at = LOWCMD_DTYPE.fields["crc"][1]

    def pack(self, q, dq, kp, kd, mode_machine: int, tau=None, mode_pr: int = 0) -> bytes:
        """(n_motors,) arrays (rad, rad/s, N*m/rad, N*m*s/rad, N*m) -> the 1004 C bytes."""
        f4, buf = self._f4, self._buf
        f4[self._q], f4[self._dq], f4[self._kp], f4[self._kd] = q, dq, kp, kd
        f4[self._tau] = 0.0 if tau is None else tau
        buf[self._mode_pr_at], buf[self._mode_machine_at] = mode_pr, mode_machine
        self._u4[self._crc_at // 4] = unitree_crc32(buf[:self._crc_at].tobytes())
        return buf.tobytes()
