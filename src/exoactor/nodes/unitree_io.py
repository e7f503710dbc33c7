"""unitree_hg LowCmd / LowState on the wire, with the CRC the robot checks.

The 500 Hz streams use the numpy byte maps of :mod:`exoactor.g1.wire` (serialised bytes in, out)
when a start-up check shows they agree with rclpy's serializer, else message objects. Readers
check what they read (size, CRC, finite values) and say why a message must be dropped.

QoS of ``/lowcmd`` and ``/lowstate``: unitree_ros2's G1 examples create both with a plain depth
(``create_publisher<LowCmd>("/lowcmd", 10)``), i.e. RELIABLE, VOLATILE, KEEP_LAST 10; that is
the default here, settable per node (``lowcmd_qos.*``, ``lowstate_qos.*``, :func:`declare_unitree_qos`).
"""
from __future__ import annotations

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message

from exoactor.g1.joints import NUM_BODY_JOINTS, NUM_MOTOR_SLOTS
from exoactor.g1.lowcmd import LOWCMD_DTYPE, BodyCommandPacker, LowCmdFrame, unitree_crc32
from exoactor.g1.lowstate import LOWSTATE_DTYPE, LowStateSample, lowstate_crc, sample_from_c_bytes
from exoactor.g1.wire import LOWCMD_MAP, LOWSTATE_MAP, ByteMap
from exoactor.nodes.params import ConfigError, declare

_CMD_FIELDS = ("q", "dq", "tau", "kp", "kd")
_STATE_FIELDS = ("q", "dq", "ddq", "tau_est", "vol", "motorstate")


UNITREE_QOS_DEFAULTS = {"reliability": "reliable", "depth": 10}
"""unitree_ros2's G1 examples: a plain depth-10 QoS (reliable, volatile, keep last 10)."""


def unitree_qos(reliability: str = "reliable", depth: int = 10):
    """QoSProfile for /lowcmd or /lowstate; raises ValueError on an unknown reliability or depth < 1."""
    policies = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
    if reliability not in policies:
        raise ValueError(f"reliability must be one of {', '.join(policies)}, got {reliability!r}")
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    return QoSProfile(depth=depth, reliability=policies[reliability], durability=DurabilityPolicy.VOLATILE,
                      history=HistoryPolicy.KEEP_LAST)


def declare_unitree_qos(node, topic: str):
    """Declare ``<topic>_qos.reliability`` and ``<topic>_qos.depth`` on ``node``; returns the QoSProfile.

    A wrong value stops the node at start-up with one line (ConfigError)."""
    rel = declare(node, f"{topic}_qos.reliability", UNITREE_QOS_DEFAULTS["reliability"],
                  f"/{topic} QoS reliability: reliable (unitree_ros2's G1 examples) or best_effort; both ends "
                  "must agree (a best_effort subscriber accepts a reliable publisher, not the other way round)")
    depth = declare(node, f"{topic}_qos.depth", UNITREE_QOS_DEFAULTS["depth"],
                    f"/{topic} QoS history depth (keep last)")
    try:
        return unitree_qos(rel, depth)
    except ValueError as e:
        raise ConfigError(f"parameter '{topic}_qos': {e}") from None


def import_unitree_hg():
    """The user's unitree_hg messages (from unitree_ros2, or the offline copy); clear error if absent."""
    try:
        from unitree_hg.msg import LowCmd, LowState, MotorCmd  # noqa: PLC0415
    except ImportError as e:
        raise RuntimeError(
            "the unitree_hg messages are not installed: build unitree_ros2's unitree_hg in your workspace "
            "(real robot) or run scripts/setup_env.sh (offline copy)") from e
    return LowCmd, LowState, MotorCmd


# ---- the fast path's start-up check ---------------------------------------------------------
def check_against(bmap: ByteMap, msg_type, c_record_of) -> bool:
    """True if rclpy serialises a sample message exactly as ``bmap`` predicts.

    ``c_record_of(msg)`` must return the C struct bytes of a message object.
    """
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


# ---- message objects <-> C records (the slow, obviously-correct path) --------------------------
def lowcmd_msg_to_record(msg) -> np.ndarray:
    rec = np.zeros((), dtype=LOWCMD_DTYPE)
    rec["mode_pr"], rec["mode_machine"], rec["crc"] = msg.mode_pr, msg.mode_machine, msg.crc
    rec["reserve"] = list(msg.reserve)
    m = rec["motor"]
    for i, c in enumerate(msg.motor_cmd):
        m["mode"][i] = c.mode
        for f in _CMD_FIELDS:
            m[f][i] = getattr(c, f)
        m["reserve"][i] = c.reserve
    return rec


def record_to_lowcmd_msg(rec: np.ndarray, LowCmd):
    msg = LowCmd()
    msg.mode_pr, msg.mode_machine, msg.crc = int(rec["mode_pr"]), int(rec["mode_machine"]), int(rec["crc"])
    msg.reserve = [int(v) for v in rec["reserve"]]
    m = rec["motor"]
    cols = {f: m[f].tolist() for f in _CMD_FIELDS}
    for i in range(NUM_MOTOR_SLOTS):
        c = msg.motor_cmd[i]
        c.mode, c.reserve = int(m["mode"][i]), int(m["reserve"][i])
        for f in _CMD_FIELDS:
            setattr(c, f, cols[f][i])
    return msg


def lowstate_msg_to_record(msg) -> np.ndarray:
    rec = np.zeros((), dtype=LOWSTATE_DTYPE)
    rec["version"], rec["mode_pr"] = list(msg.version), msg.mode_pr
    rec["mode_machine"], rec["tick"] = msg.mode_machine, msg.tick
    imu = rec["imu_state"]
    for f in ("quaternion", "gyroscope", "accelerometer", "rpy", "temperature"):
        imu[f] = getattr(msg.imu_state, f)
    for i, s in enumerate(msg.motor_state):
        ms = rec["motor_state"][i]
        for f in ("mode", "q", "dq", "ddq", "tau_est", "temperature", "vol", "sensor", "motorstate", "reserve"):
            ms[f] = getattr(s, f) if not isinstance(getattr(s, f), (list, np.ndarray)) else list(getattr(s, f))
    rec["wireless_remote"], rec["reserve"], rec["crc"] = list(msg.wireless_remote), list(msg.reserve), msg.crc
    return rec


def record_to_lowstate_msg(rec: np.ndarray, LowState):
    """The slow path: a LowState message object filled field by field from a C record."""
    msg = LowState()
    msg.version, msg.mode_pr = [int(v) for v in rec["version"]], int(rec["mode_pr"])
    msg.mode_machine, msg.tick = int(rec["mode_machine"]), int(rec["tick"])
    for f in ("quaternion", "gyroscope", "accelerometer", "rpy"):
        setattr(msg.imu_state, f, rec["imu_state"][f].tolist())
    msg.imu_state.temperature = int(rec["imu_state"]["temperature"])
    for i in range(NUM_MOTOR_SLOTS):
        ms, s = rec["motor_state"][i], msg.motor_state[i]
        s.mode, s.motorstate = int(ms["mode"]), int(ms["motorstate"])
        for f in ("q", "dq", "ddq", "tau_est", "vol"):
            setattr(s, f, float(ms[f]))
        for f in ("temperature", "sensor", "reserve"):
            setattr(s, f, ms[f].tolist())
    msg.wireless_remote, msg.reserve = rec["wireless_remote"].tolist(), rec["reserve"].tolist()
    msg.crc = int(rec["crc"])
    return msg


# ---- LowCmd -------------------------------------------------------------------------------------
class LowCmdWriter:
    """LowCmd for the 29 body motors: enabled, unused slots and padding zero, CRC set.

    ``build`` returns serialised bytes (fast path) or a message object; both can be published.
    """

    def __init__(self, fast: bool = True):
        self.LowCmd, _, _ = import_unitree_hg()
        self.fast = fast and check_against(LOWCMD_MAP, self.LowCmd, lambda m: lowcmd_msg_to_record(m).tobytes())
        self._packer = BodyCommandPacker(NUM_BODY_JOINTS)

    def record(self, q, dq, kp, kd, mode_machine: int, tau=None, mode_pr: int = 0) -> np.ndarray:
        n = NUM_BODY_JOINTS
        frame = LowCmdFrame(mode_pr=mode_pr, mode_machine=int(mode_machine))
        frame.q[:n], frame.dq[:n], frame.kp[:n], frame.kd[:n] = q, dq, kp, kd
        if tau is not None:
            frame.tau[:n] = tau
        frame.mode[:n] = 1
        return frame.to_struct()

    def build(self, q, dq, kp, kd, mode_machine: int, tau=None, mode_pr: int = 0):
        if self.fast:
            return LOWCMD_MAP.to_cdr(self._packer.pack(q, dq, kp, kd, mode_machine, tau, mode_pr))
        return record_to_lowcmd_msg(self.record(q, dq, kp, kd, mode_machine, tau, mode_pr), self.LowCmd)

    def build_frame(self, frame: LowCmdFrame):
        """A whole LowCmdFrame (all 35 slots as given, e.g. an /arm_sdk command with its blend
        weight in slot 29) as bytes or a message object, CRC set."""
        rec = frame.to_struct()
        return LOWCMD_MAP.to_cdr(rec.tobytes()) if self.fast else record_to_lowcmd_msg(rec, self.LowCmd)


class LowCmdReader:
    """Serialised LowCmd bytes -> (LowCmdFrame, crc_ok)."""

    def __init__(self):
        self.LowCmd, _, _ = import_unitree_hg()
        self.fast = check_against(LOWCMD_MAP, self.LowCmd, lambda m: lowcmd_msg_to_record(m).tobytes())

    def check(self, data: bytes) -> tuple[LowCmdFrame | None, str]:
        """(frame, '') for a usable LowCmd, else (None, why it must be dropped). Never raises."""
        try:
            frame, crc_ok = self.read(data)
        except Exception as e:  # noqa: BLE001 - whatever arrives, the receiver survives it
            return None, f"malformed ({type(e).__name__}: {str(e)[:80]})"
        if not crc_ok:
            return None, "bad CRC"
        n = NUM_BODY_JOINTS
        if not all(np.all(np.isfinite(getattr(frame, f)[:n])) for f in _CMD_FIELDS):
            return None, "non-finite values"
        if np.any(frame.kp[:n] < 0) or np.any(frame.kd[:n] < 0):
            return None, "negative gains"
        return frame, ""

    def read(self, data: bytes) -> tuple[LowCmdFrame, bool]:
        if self.fast:
            rec = np.frombuffer(LOWCMD_MAP.to_c(data), dtype=LOWCMD_DTYPE)[0]
        else:
            rec = lowcmd_msg_to_record(deserialize_message(data, self.LowCmd))
        m = rec["motor"]
        frame = LowCmdFrame(q=m["q"].astype(float), dq=m["dq"].astype(float), tau=m["tau"].astype(float),
                            kp=m["kp"].astype(float), kd=m["kd"].astype(float), mode=m["mode"].copy(),
                            mode_pr=int(rec["mode_pr"]), mode_machine=int(rec["mode_machine"]),
                            reserve=tuple(int(v) for v in rec["reserve"]))
        return frame, unitree_crc32(rec.tobytes()[:1000]) == int(rec["crc"])


# ---- LowState -----------------------------------------------------------------------------------
class LowStateWriter:
    """LowState from simulator state, CRC included; ``build`` returns bytes or a message object."""

    def __init__(self, mode_machine: int, fast: bool = True):
        _, self.LowState, _ = import_unitree_hg()
        self.mode_machine = int(mode_machine)
        self._rec = np.zeros((), dtype=LOWSTATE_DTYPE)
        self.fast = fast and check_against(LOWSTATE_MAP, self.LowState, lambda m: lowstate_msg_to_record(m).tobytes())

    def build(self, tick: int, q, dq, ddq, tau, imu_quat_wxyz, gyro, acc, rpy, temperature_c=None, motorstate=None):
        """temperature_c: (29,) or (29, 2) motor temperatures; motorstate: (29,) error flags (default 0)."""
        rec = self._rec
        rec["mode_machine"] = self.mode_machine
        rec["tick"] = tick & 0xFFFFFFFF
        imu = rec["imu_state"]
        imu["quaternion"], imu["gyroscope"], imu["accelerometer"], imu["rpy"] = imu_quat_wxyz, gyro, acc, rpy
        ms = rec["motor_state"]
        n = NUM_BODY_JOINTS
        ms["mode"][:n] = 1
        ms["q"][:n], ms["dq"][:n], ms["ddq"][:n], ms["tau_est"][:n] = q, dq, ddq, tau
        if temperature_c is not None:
            t = np.asarray(temperature_c)
            ms["temperature"][:n] = t[:, None] if t.ndim == 1 else t
        if motorstate is not None:
            ms["motorstate"][:n] = motorstate
        rec["crc"] = lowstate_crc(rec)
        return LOWSTATE_MAP.to_cdr(rec.tobytes()) if self.fast else record_to_lowstate_msg(rec, self.LowState)


class LowStateReader:
    """Serialised LowState bytes -> (q (29,), dq (29,), mode_machine, any motor fault, crc_ok)."""

    def __init__(self):
        _, self.LowState, _ = import_unitree_hg()
        self.fast = check_against(LOWSTATE_MAP, self.LowState, lambda m: lowstate_msg_to_record(m).tobytes())

    def parse(self, data: bytes) -> LowStateSample:
        """Everything the controller checks; raises ValueError on a malformed message (size, encoding)."""
        if self.fast:
            return sample_from_c_bytes(LOWSTATE_MAP.to_c(data))
        return sample_from_c_bytes(lowstate_msg_to_record(deserialize_message(data, self.LowState)).tobytes())

    def read(self, data: bytes):
        if self.fast:
            rec = np.frombuffer(LOWSTATE_MAP.to_c(data), dtype=LOWSTATE_DTYPE)[0]
        else:
            rec = lowstate_msg_to_record(deserialize_message(data, self.LowState))
        ms = rec["motor_state"][:NUM_BODY_JOINTS]
        return (ms["q"].astype(float), ms["dq"].astype(float), int(rec["mode_machine"]),
                bool(np.any(ms["motorstate"] != 0)), lowstate_crc(rec) == int(rec["crc"]))


class Dex3Publisher:
    """``unitree_hg/HandCmd`` on ``dex3/left/cmd`` and ``dex3/right/cmd`` from :class:`exoactor.control.dex3.Dex3Hands`
    commands (sent as the tracked step plays; limp when execution stops)."""

    def __init__(self, node, hands, qos=10):
        try:
            from unitree_hg.msg import HandCmd, MotorCmd  # noqa: PLC0415
        except ImportError as e:
            raise RuntimeError("dex3_hands needs the unitree_hg HandCmd message (unitree_ros2, or the offline copy "
                               "from scripts/setup_env.sh)") from e
        self._hand_cmd, self._motor_cmd = HandCmd, MotorCmd
        self.hands = hands
        self._pubs = {side: node.create_publisher(HandCmd, f"dex3/{side}/cmd", qos) for side in ("left", "right")}

    def _publish(self, side: str, cmd) -> None:
        msg = self._hand_cmd()
        msg.motor_cmd = [self._motor_cmd(mode=int(m), q=float(q), dq=0.0, tau=0.0, kp=cmd.kp, kd=cmd.kd)
                         for m, q in zip(cmd.mode, cmd.q_rad)]
        self._pubs[side].publish(msg)

    def send(self, closure) -> None:
        """closure: (2,) left, right in [0, 1]."""
        for side, c in zip(("left", "right"), closure):
            self._publish(side, self.hands.command(side, float(c)))

    def damp(self) -> None:
        for side in ("left", "right"):
            self._publish(side, self.hands.damp(side))
