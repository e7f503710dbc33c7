"""The numpy CDR fast path must agree with rclpy's own serializer, both ways."""
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message

from exoactor.g1.wire import LOWCMD_MAP, LOWSTATE_MAP, byte_map
from exoactor.nodes.unitree_io import (LowCmdReader, LowCmdWriter, LowStateReader, LowStateWriter,
                                       import_unitree_hg, lowcmd_msg_to_record)


def test_layout_sizes():
    assert (LOWCMD_MAP.c_size, LOWCMD_MAP.cdr_size) == (1004, 1000)
    assert (LOWSTATE_MAP.c_size, LOWSTATE_MAP.cdr_size) == (2092, 2088)
    assert byte_map([(1, 1), (4, 1)]).cdr_from_c.tolist() == [0, -1, -1, -1, 4, 5, 6, 7]


def test_lowcmd_bytes_deserialise_to_the_commanded_values():
    LowCmd, _, _ = import_unitree_hg()
    w = LowCmdWriter()
    assert w.fast
    q = np.linspace(-1.2, 1.3, 29)
    msg = deserialize_message(w.build(q, -q, np.full(29, 40.0), np.full(29, 1.5), mode_machine=5), LowCmd)
    assert msg.mode_machine == 5
    np.testing.assert_allclose([msg.motor_cmd[i].q for i in range(29)], q, atol=1e-6)
    np.testing.assert_allclose([msg.motor_cmd[i].dq for i in range(29)], -q, atol=1e-6)
    assert [msg.motor_cmd[i].mode for i in range(35)] == [1] * 29 + [0] * 6
    assert msg.crc == int(lowcmd_msg_to_record(msg)["crc"])  # CRC survives the round trip


def test_lowcmd_reader_reads_rclpy_serialised_messages_and_checks_crc():
    LowCmd, _, _ = import_unitree_hg()
    w, r = LowCmdWriter(fast=False), LowCmdReader()
    msg = w.build(np.full(29, 0.3), np.zeros(29), np.full(29, 50.0), np.ones(29), mode_machine=5)
    frame, ok = r.read(serialize_message(msg))
    assert ok and np.allclose(frame.q[:29], 0.3) and frame.kp[0] == 50.0
    msg.crc ^= 1
    assert r.read(serialize_message(msg))[1] is False


def test_lowstate_round_trip():
    _, LowState, _ = import_unitree_hg()
    w, r = LowStateWriter(mode_machine=5), LowStateReader()
    assert w.fast and r.fast
    q = np.linspace(0, 1, 29)
    data = w.build(9, q, q * 2, q * 3, q * 4, [1, 0, 0, 0], [0.1, 0.2, 0.3], [0, 0, 9.8], [0, 0, 0])
    msg = deserialize_message(data, LowState)
    assert msg.tick == 9 and abs(msg.motor_state[28].dq - 2.0) < 1e-6
    assert abs(msg.imu_state.accelerometer[2] - 9.8) < 1e-5
    q2, dq2, mm, fault, crc_ok = r.read(serialize_message(msg))
    assert crc_ok and mm == 5 and not fault and np.allclose(q2, q, atol=1e-6)


def test_lowstate_message_object_fallback_matches_the_fast_path():
    _, LowState, _ = import_unitree_hg()
    q = np.linspace(-0.5, 0.5, 29)
    args = (4, q, -q, q * 2, q * 3, [1, 0, 0, 0], [0.1, 0.2, 0.3], [0, 0, 9.8], [0.01, 0.02, 0.03])
    msg = LowStateWriter(mode_machine=5, fast=False).build(*args)
    assert isinstance(msg, LowState)
    q2, dq2, mm, fault, crc_ok = LowStateReader().read(serialize_message(msg))
    assert crc_ok and mm == 5 and not fault and np.allclose(q2, q, atol=1e-6) and np.allclose(dq2, -q, atol=1e-6)
    fast = np.frombuffer(LowStateWriter(mode_machine=5).build(*args), np.uint8)
    data = np.concatenate([np.ones(4, bool), LOWSTATE_MAP.cdr_from_c >= 0])
    assert np.array_equal(np.frombuffer(serialize_message(msg), np.uint8)[data], fast[data])


def test_lowstate_checks_use_exact_tests_when_the_fast_ones_overflow():
    from exoactor.g1.lowstate import LowStateSample

    z = np.zeros(29)
    ok = dict(q_rad=z, dq_rad_s=z, mode_machine=0, tick=0, temperature_c=z, motorstate=np.zeros(29, np.uint32),
              crc_ok=True)
    assert LowStateSample(**ok).problem() == ""
    huge = np.full(29, 1e200)  # finite, but its square overflows: not "non-finite"
    assert LowStateSample(**{**ok, "q_rad": huge}).problem() == ""
    for bad in (np.nan, np.inf, -np.inf):
        v = z.copy()
        v[11] = bad
        assert LowStateSample(**{**ok, "dq_rad_s": v}).problem() == "non-finite joint values"
    assert LowStateSample(**ok, imu_quat_wxyz=np.array([np.nan, 0, 0, 0])).problem() == "invalid IMU values"
    assert LowStateSample(**ok, imu_quat_wxyz=np.array([0.5, 0, 0, 0])).problem() == "invalid IMU values"
    assert LowStateSample(**ok, imu_gyro_rad_s=np.array([0, np.inf, 0])).problem() == "invalid IMU values"
    assert LowStateSample(**ok, imu_gyro_rad_s=np.array([1e200, 0, 0])).problem() == ""
