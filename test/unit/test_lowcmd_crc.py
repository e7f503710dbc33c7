import numpy as np
import pytest

from exoactor.g1.lowcmd import LOWCMD_DTYPE, BodyCommandPacker, LowCmdFrame, unitree_crc32
from exoactor.g1.lowstate import LOWSTATE_DTYPE


def reference_crc(words):
    """Bit-by-bit CRC-32 (poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no xor-out) as in unitree_sdk2."""
    crc = 0xFFFFFFFF
    for w in words:
        for b in range(31, -1, -1):
            top = crc >> 31
            crc = (crc << 1) & 0xFFFFFFFF
            if top ^ ((w >> b) & 1):
                crc ^= 0x04C11DB7
    return crc


def test_crc_matches_bitwise_reference_on_random_payloads():
    rng = np.random.default_rng(1)
    for n in (4, 16, 1000):
        payload = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert unitree_crc32(payload) == reference_crc(np.frombuffer(payload, "<u4").tolist())


def test_crc_equals_mpeg2_of_byte_reversed_words():
    # CRC-32/MPEG-2 check value: "123456789" -> 0x0376E6E7; here on whole words of "12345678".
    data = b"12345678"
    payload = b"".join(data[i:i + 4][::-1] for i in range(0, 8, 4))
    assert unitree_crc32(payload) == reference_crc([int.from_bytes(data[i:i + 4], "big") for i in (0, 4)])


def test_crc_rejects_unaligned_payload():
    with pytest.raises(ValueError):
        unitree_crc32(b"abc")


def test_struct_layouts_match_unitree_c_structs():
    assert LOWCMD_DTYPE.itemsize == 1004
    assert LOWCMD_DTYPE.fields["motor"][1] == 4 and LOWCMD_DTYPE.fields["reserve"][1] == 984
    assert LOWSTATE_DTYPE.itemsize == 2092
    assert LOWSTATE_DTYPE.fields["motor_state"][1] == 72 and LOWSTATE_DTYPE.fields["crc"][1] == 2088


def test_frame_crc_covers_values_and_keeps_padding_zero():
    f = LowCmdFrame(mode_machine=5)
    f.q[:29] = np.linspace(-1, 1, 29)
    f.mode[:29] = 1
    rec = f.to_struct()
    raw = rec.tobytes()
    assert raw[2:4] == b"\x00\x00" and raw[5:8] == b"\x00\x00\x00"  # padding zero
    assert int(rec["crc"]) == reference_crc(np.frombuffer(raw[:1000], "<u4").tolist())
    f.q[3] += 1e-3
    assert f.crc() != int(rec["crc"])


def test_body_command_packer_is_byte_identical_to_the_frame_struct():
    rng = np.random.default_rng(7)
    packer = BodyCommandPacker(29)
    for k in range(50):
        q, dq, kp, kd, tau = (rng.normal(scale=s, size=29) for s in (1.0, 5.0, 100.0, 3.0, 10.0))
        f = LowCmdFrame(mode_pr=k % 2, mode_machine=int(rng.integers(0, 256)))
        f.q[:29], f.dq[:29], f.kp[:29], f.kd[:29], f.mode[:29] = q, dq, kp, kd, 1
        if k % 3:
            f.tau[:29] = tau
        got = packer.pack(q, dq, kp, kd, f.mode_machine, tau if k % 3 else None, f.mode_pr)
        assert got == f.to_struct().tobytes()
    with pytest.raises(ValueError, match="n_motors"):
        BodyCommandPacker(36)
