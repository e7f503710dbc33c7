"""The tracking controller's execution backends on ROS: parameters and publishers for the sinks.

``backend`` = ``lowcmd`` (the node's own 500 Hz /lowcmd loop: no sink), ``sonic``
(:class:`exoactor.control.sinks.SonicSink`, ZMQ to a SONIC deployment) or ``arm_sdk``
(:class:`exoactor.control.sinks.ArmSdkSink`: unitree_hg/LowCmd on ``arm_sdk.topic``, CRC set by
:class:`exoactor.nodes.unitree_io.LowCmdWriter`, and unitree_api/Request on
``arm_sdk.sport_request_topic`` for the built-in locomotion). Each backend's parameters are
declared as ``<backend>.<key>`` only when that backend is chosen.
"""
from __future__ import annotations

import itertools
import time
from typing import Callable

import numpy as np

from exoactor.control.arm_sdk import ARM_SDK_JOINTS
from exoactor.control.sinks import ArmSdkSink, ExecutionSink, SonicSink
from exoactor.control.sonic import DEFAULT_ENDPOINT, SonicError
from exoactor.g1.joints import DEFAULT_KD, DEFAULT_KP
from exoactor.g1.lowcmd import LowCmdFrame
from exoactor.g1.safety import CommandLimits
from exoactor.nodes.params import ConfigError, declare
from exoactor.nodes.unitree_io import LowCmdWriter, declare_unitree_qos, import_unitree_hg

BACKENDS = ("lowcmd", "arm_sdk", "sonic")
"""Values of the tracking controller's ``backend`` parameter."""
BACKEND_DESCRIPTION = ("execution backend: lowcmd (the 500 Hz /lowcmd loop, built-in controller released), "
                       "arm_sdk (upper body over /arm_sdk on top of the built-in walking controller, root motion "
                       "as SetVelocity requests on /api/sport/request) or sonic (stream to a SONIC deployment over "
                       "ZMQ); every joint target passes the same command limits")


def import_unitree_api():
    """unitree_api's Request message (from unitree_ros2, or the offline copy); clear error if absent."""
    try:
        from unitree_api.msg import Request  # noqa: PLC0415
    except ImportError as e:
        raise RuntimeError(
            "backend 'arm_sdk' needs the unitree_api messages (locomotion requests): build unitree_ros2's "
            "unitree_api in your workspace (real robot) or run scripts/setup_env.sh (offline copy)") from e
    return Request


def request_msg(Request, request: dict, request_id: int):
    """A unitree_api/Request from a plain ``{"api_id", "parameter"}`` dict (exoactor.control.arm_sdk)."""
    msg = Request()
    msg.header.identity.id = int(request_id)
    msg.header.identity.api_id = int(request["api_id"])
    msg.parameter = str(request.get("parameter", ""))
    return msg


def make_sink(node, backend: str, limits: CommandLimits, measured_q: Callable[[], np.ndarray | None],
              state_problem: Callable[[], str] | None = None,
              mode_machine: Callable[[], int] | None = None) -> ExecutionSink | None:
    """The sink for ``backend`` with its parameters declared on ``node`` (None for ``lowcmd``).

    measured_q: the robot's measured joint positions (29, Unitree order) or None when unknown
    (arm_sdk blends in from them); state_problem: why the robot must not be driven now ('' =
    fine), checked by arm_sdk while it runs; mode_machine: LowState's mode_machine for /arm_sdk
    (default 0). Raises ConfigError for a bad parameter, RuntimeError when a message package is missing.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"parameter 'backend' must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "lowcmd":
        return None
    if backend == "sonic":
        return _sonic(node, limits)
    return _arm_sdk(node, limits, measured_q, state_problem, mode_machine)


def _sonic(node, limits: CommandLimits) -> SonicSink:
    endpoint = declare(node, "sonic.endpoint", DEFAULT_ENDPOINT,
                       "ZMQ endpoint the SONIC stream binds (SONIC's deploy program connects to it with "
                       "--zmq-host/--zmq-port), e.g. tcp://*:5556")
    version = declare(node, "sonic.protocol_version", 1,
                      "SONIC ZMQ protocol version: 1 (joint positions/velocities and root orientation; v3 needs "
                      "SMPL joints the G1 trajectory does not carry)")
    wait_s = declare(node, "sonic.wait_for_subscriber_s", 5.0,
                     "a goal fails when no SONIC deployment has subscribed within this time (s)")
    export_csv = declare(node, "sonic.export_csv", True,
                         "also write each goal's limited motion as SONIC's CSV motion folder "
                         "<episode_dir>/sonic_XX/ (needs the goal's episode_dir)")
    try:
        return SonicSink(limits, endpoint, version, wait_s, export_csv)
    except SonicError as e:
        raise ConfigError(f"parameter 'sonic.endpoint': {e}") from None
    except ValueError as e:
        raise ConfigError(f"SONIC backend parameters: {e}") from None


def _arm_sdk(node, limits: CommandLimits, measured_q, state_problem, mode_machine) -> ArmSdkSink:
    rate = declare(node, "arm_sdk.rate_hz", 50.0, "/arm_sdk command rate (Hz); Unitree's examples use 50 Hz")
    ramp_in = declare(node, "arm_sdk.ramp_in_s", 1.0,
                      "blend weight ramp 0 -> 1 from the measured upper-body pose to the first frame (s)")
    ramp_out = declare(node, "arm_sdk.ramp_out_s", 2.0,
                       "blend weight ramp 1 -> 0 after the motion or a cancel (s; Unitree: about 2 s)")
    topic = declare(node, "arm_sdk.topic", "arm_sdk", "unitree_hg/LowCmd topic of the upper-body override")
    sport_topic = declare(node, "arm_sdk.sport_request_topic", "api/sport/request",
                          "unitree_api/Request topic of the built-in locomotion service (SetVelocity 7105)")
    walk = declare(node, "arm_sdk.locomotion", True,
                   "send the trajectory's root motion as SetVelocity requests (false: upper body only, no "
                   "request is ever sent)")
    kp = declare(node, "arm_sdk.kp", DEFAULT_KP[ARM_SDK_JOINTS].tolist(),
                 "position gains of motors 12..28 (waist, arms) on /arm_sdk (17)")
    kd = declare(node, "arm_sdk.kd", DEFAULT_KD[ARM_SDK_JOINTS].tolist(),
                 "velocity gains of motors 12..28 (waist, arms) on /arm_sdk (17)")
    for name, v in (("rate_hz", rate), ("ramp_in_s", ramp_in), ("ramp_out_s", ramp_out)):
        if not (np.isfinite(v) and v > 0):
            raise ConfigError(f"parameter 'arm_sdk.{name}' must be > 0, got {v}")
    if not 1.0 <= rate <= 500.0:
        raise ConfigError(f"parameter 'arm_sdk.rate_hz' must be in [1, 500] Hz, got {rate}")
    LowCmd, _, _ = import_unitree_hg()
    Request = import_unitree_api()
    writer = LowCmdWriter()
    pub_cmd = node.create_publisher(LowCmd, topic, declare_unitree_qos(node, "arm_sdk"))
    pub_req = node.create_publisher(Request, sport_topic, 10)
    ids = itertools.count(time.time_ns())  # unique request ids, as Unitree's SDK (a time stamp)

    def publish_arm_sdk(frame: LowCmdFrame) -> None:
        pub_cmd.publish(writer.build_frame(frame))

    def send_request(request: dict) -> None:
        pub_req.publish(request_msg(Request, request, next(ids)))

    try:
        return ArmSdkSink(limits, publish_arm_sdk, send_request, measured_q, rate, ramp_in, ramp_out, kp, kd,
                          walk=walk, state_problem=state_problem, mode_machine=mode_machine)
    except ValueError as e:
        raise ConfigError(f"arm_sdk backend parameters: {e}") from None
