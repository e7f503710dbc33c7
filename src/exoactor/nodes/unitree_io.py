"""unitree_hg LowCmd / LowState <-> arrays, with the CRC the robot checks."""
from __future__ import annotations

import numpy as np

from exoactor.g1.joints import NUM_BODY_JOINTS, NUM_MOTOR_SLOTS
from exoactor.g1.lowcmd import LowCmdFrame
from exoactor.g1.lowstate import LOWSTATE_DTYPE, lowstate_crc


def import_unitree_hg():
    """The user's unitree_hg messages (from unitree_ros2, or the offline copy); clear error if absent."""
    try:
        from unitree_hg.msg import LowCmd, LowState, MotorCmd  # noqa: PLC0415
    except ImportError as e:
        raise RuntimeError(
            "the unitree_hg messages are not installed: build unitree_ros2's unitree_hg in your workspace "
            "(real robot) or run scripts/setup_env.sh (offline copy)") from e
    return LowCmd, LowState, MotorCmd


class LowCmdWriter:
    """Builds LowCmd messages: body motors enabled, unused slots zeroed, padding zero, CRC set."""

    def __init__(self):
        self.LowCmd, _, self.MotorCmd = import_unitree_hg()

    def build(self, q: np.ndarray, dq: np.ndarray, kp: np.ndarray, kd: np.ndarray, mode_machine: int,
              tau: np.ndarray | None = None, mode_pr: int = 0):
        """A fresh LowCmd for 29 body joints (Unitree motor order)."""
        n = NUM_BODY_JOINTS
        frame = LowCmdFrame(mode_pr=mode_pr, mode_machine=int(mode_machine))
        frame.q[:n], frame.dq[:n], frame.kp[:n], frame.kd[:n] = q, dq, kp, kd
        if tau is not None:
            frame.tau[:n] = tau
        frame.mode[:n] = 1
        rec = frame.to_struct()  # float32-rounded values and their CRC
        m = rec["motor"]
        msg = self.LowCmd()
        msg.mode_pr = int(rec["mode_pr"])
        msg.mode_machine = int(rec["mode_machine"])
        qs, dqs, taus, kps, kds, modes = (m[f].tolist() for f in ("q", "dq", "tau", "kp", "kd", "mode"))
        cmds = msg.motor_cmd
        for i in range(NUM_MOTOR_SLOTS):
            c = cmds[i]
            c.mode, c.q, c.dq, c.tau, c.kp, c.kd = modes[i], qs[i], dqs[i], taus[i], kps[i], kds[i]
        msg.crc = int(rec["crc"])
        return msg


def lowcmd_to_frame(msg) -> tuple[LowCmdFrame, bool]:
    """LowCmd message -> (frame, crc_ok)."""
    f = LowCmdFrame(mode_pr=int(msg.mode_pr), mode_machine=int(msg.mode_machine), reserve=tuple(int(r) for r in msg.reserve))
    for i, c in enumerate(msg.motor_cmd):
        f.mode[i], f.q[i], f.dq[i], f.tau[i], f.kp[i], f.kd[i] = c.mode, c.q, c.dq, c.tau, c.kp, c.kd
    return f, f.crc() == int(msg.crc)


class LowStateWriter:
    """Fills LowState messages from simulator state, CRC included."""

    def __init__(self, mode_machine: int):
        _, self.LowState, _ = import_unitree_hg()
        self.mode_machine = int(mode_machine)
        self._rec = np.zeros((), dtype=LOWSTATE_DTYPE)

    def build(self, tick: int, q, dq, ddq, tau, imu_quat_wxyz, gyro, acc, rpy):
        rec = self._rec
        rec["mode_machine"] = self.mode_machine
        rec["tick"] = tick & 0xFFFFFFFF
        imu = rec["imu_state"]
        imu["quaternion"], imu["gyroscope"], imu["accelerometer"], imu["rpy"] = imu_quat_wxyz, gyro, acc, rpy
        ms = rec["motor_state"]
        n = NUM_BODY_JOINTS
        ms["mode"][:n] = 1
        ms["q"][:n], ms["dq"][:n], ms["ddq"][:n], ms["tau_est"][:n] = q, dq, ddq, tau
        rec["crc"] = lowstate_crc(rec)
        msg = self.LowState()
        msg.mode_machine = self.mode_machine
        msg.tick = int(rec["tick"])
        msg.imu_state.quaternion = imu["quaternion"].tolist()
        msg.imu_state.gyroscope = imu["gyroscope"].tolist()
        msg.imu_state.accelerometer = imu["accelerometer"].tolist()
        msg.imu_state.rpy = imu["rpy"].tolist()
        qs, dqs, ddqs, taus = (ms[f].tolist() for f in ("q", "dq", "ddq", "tau_est"))
        for i in range(NUM_MOTOR_SLOTS):
            s = msg.motor_state[i]
            s.mode, s.q, s.dq, s.ddq, s.tau_est = int(ms["mode"][i]), qs[i], dqs[i], ddqs[i], taus[i]
        msg.crc = int(rec["crc"])
        return msg


def lowstate_joints(msg) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """(q (29,), dq (29,), mode_machine, any motor fault) from a LowState message."""
    ms = msg.motor_state
    q = np.array([ms[i].q for i in range(NUM_BODY_JOINTS)])
    dq = np.array([ms[i].dq for i in range(NUM_BODY_JOINTS)])
    fault = any(ms[i].motorstate != 0 for i in range(NUM_BODY_JOINTS))
    return q, dq, int(msg.mode_machine), fault
