"""make_sink (exoactor.nodes.sinks_ros): backends' parameters, the /arm_sdk LowCmd encoding (CRC) and the
unitree_api/Request publisher. The end-to-end part needs unitree_api (scripts/setup_env.sh builds the
offline copy in third_party/unitree_api) and is skipped without it."""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from exoactor.control.arm_sdk import BLEND_WEIGHT_INDEX, arm_sdk_command
from exoactor.control.sinks import ArmSdkSink, SonicSink
from exoactor.g1.model import joint_ranges_rad, stand_pose_rad
from exoactor.g1.safety import CommandLimits
from exoactor.nodes.params import ConfigError
from exoactor.nodes.sinks_ros import make_sink
from exoactor.retarget.trajectory import G1JointTrajectory
from fakes.domains import domain_id


@pytest.fixture(scope="module")
def limits(g1_model):
    return CommandLimits.from_ranges(joint_ranges_rad(g1_model), 6.0, 0.02, 1.0 / 500.0)


@pytest.fixture
def ros():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain_id(30 + threading.get_native_id() % 20))
    nodes = []

    def node(name="exoactor_test_sinks", **params):
        n = rclpy.create_node(name, context=ctx,
                              parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        nodes.append(n)
        return n

    yield ctx, node
    for n in nodes:
        n.destroy_node()
    rclpy.try_shutdown(context=ctx)


def test_lowcmd_backend_is_no_sink_and_unknown_backends_are_refused(ros, limits):
    _, node = ros
    n = node()
    assert make_sink(n, "lowcmd", limits, lambda: None) is None
    with pytest.raises(ConfigError, match="backend.*lowcmd, arm_sdk, sonic.*'bogus'"):
        make_sink(n, "bogus", limits, lambda: None)
    assert not n.has_parameter("sonic.endpoint") and not n.has_parameter("arm_sdk.rate_hz")


def test_sonic_backend_declares_its_parameters(ros, limits):
    _, node = ros
    n = node(**{"sonic.endpoint": "tcp://127.0.0.1:*", "sonic.wait_for_subscriber_s": 0.5})
    sink = make_sink(n, "sonic", limits, lambda: None)
    try:
        assert isinstance(sink, SonicSink) and sink.endpoint.startswith("tcp://127.0.0.1:")
        assert sink.wait_for_subscriber_s == 0.5 and sink.version == 1 and sink.export_csv is True
        for name in ("sonic.endpoint", "sonic.protocol_version", "sonic.wait_for_subscriber_s", "sonic.export_csv"):
            assert n.describe_parameter(name).description, name
    finally:
        sink.close()
    with pytest.raises(ConfigError, match="SMPL"):
        make_sink(node("exoactor_test_sinks_v3", **{"sonic.protocol_version": 3}), "sonic", limits, lambda: None)


def test_arm_sdk_backend_without_unitree_api_says_what_to_install(ros, limits, monkeypatch):
    _, node = ros
    monkeypatch.setitem(sys.modules, "unitree_api", None)  # import fails as where it is not installed
    monkeypatch.setitem(sys.modules, "unitree_api.msg", None)
    with pytest.raises(RuntimeError, match="arm_sdk.*unitree_api.*scripts/setup_env.sh"):
        make_sink(node(), "arm_sdk", limits, lambda: None)


def test_arm_sdk_frames_encode_with_the_robots_crc():
    from exoactor.nodes.unitree_io import LowCmdReader, LowCmdWriter

    writer, reader = LowCmdWriter(), LowCmdReader()
    frame = arm_sdk_command(np.linspace(-0.5, 0.5, 17), 0.375)
    payload = writer.build_frame(frame)
    if not isinstance(payload, (bytes, bytearray)):
        from rclpy.serialization import serialize_message

        payload = serialize_message(payload)
    got, why = reader.check(bytes(payload))
    assert why == "" and got is not None
    assert got.q[BLEND_WEIGHT_INDEX] == 0.375 and not np.any(got.q[:12]) and not np.any(got.mode[:12])
    np.testing.assert_allclose(got.q[12:29], np.linspace(-0.5, 0.5, 17), atol=1e-6)
    bad = bytearray(payload)
    bad[-1] ^= 0xFF
    assert reader.check(bytes(bad))[1] == "bad CRC"


def test_arm_sdk_backend_publishes_lowcmd_and_requests(ros, limits, g1_model):
    Request = pytest.importorskip("unitree_api.msg").Request
    from exoactor.nodes.unitree_io import LowCmdReader, import_unitree_hg

    ctx, node = ros
    stand = stand_pose_rad(g1_model)
    n = node(**{"arm_sdk.ramp_in_s": 0.1, "arm_sdk.ramp_out_s": 0.1})
    sink = make_sink(n, "arm_sdk", limits, lambda: stand)
    assert isinstance(sink, ArmSdkSink)
    for name in ("arm_sdk.rate_hz", "arm_sdk.ramp_in_s", "arm_sdk.ramp_out_s", "arm_sdk.topic",
                 "arm_sdk.sport_request_topic"):
        assert n.describe_parameter(name).description, name
    LowCmd, _, _ = import_unitree_hg()
    listener = node("exoactor_test_sinks_listener")
    cmds, reqs = [], []
    listener.create_subscription(LowCmd, "arm_sdk", cmds.append, 100, raw=True)
    listener.create_subscription(Request, "api/sport/request", reqs.append, 100)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(listener)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    deadline = time.monotonic() + 5
    while n.count_subscribers("arm_sdk") < 1 or n.count_subscribers("api/sport/request") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    t = np.arange(31) / 30.0
    root = np.column_stack([0.3 * t, 0 * t, 0.75 + 0 * t])
    traj = G1JointTrajectory(30.0, np.tile(stand, (31, 1)), np.zeros((31, 29)), root, np.tile([1.0, 0, 0, 0], (31, 1)))
    sink.execute(traj)
    time.sleep(0.3)
    ex.shutdown(timeout_sec=1.0)
    reader = LowCmdReader()
    frames = [reader.check(bytes(c)) for c in cmds]
    assert len(frames) > 40 and all(why == "" for _, why in frames)
    assert frames[-1][0].q[BLEND_WEIGHT_INDEX] == 0.0
    assert reqs and all(r.header.identity.api_id == 7105 for r in reqs)
    assert len({r.header.identity.id for r in reqs}) == len(reqs)
    assert '"velocity"' in reqs[0].parameter
