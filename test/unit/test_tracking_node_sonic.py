"""The tracking node with ``backend: sonic``: a goal's trajectory reaches a SONIC deployment (a local
ZMQ subscriber here) as decoded frames within the joint limits, nothing goes out on /lowcmd, and a
missing deployment fails the goal with a clear message while the node keeps serving."""
import socket
import threading
import time

import numpy as np
import pytest
import zmq
from action_msgs.msg import GoalStatus

from test_tracking_node_safety import _goal, _run, tracking_rig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rig(g1_model, tmp_path_factory):
    port = _free_port()
    root = tmp_path_factory.mktemp("sonic")
    with tracking_rig(g1_model, {"backend": "sonic", "sonic.endpoint": f"tcp://127.0.0.1:{port}",
                                 "sonic.wait_for_subscriber_s": "2.0", "episode_root": str(root),
                                 "lowstate_timeout_s": "1.0"}, 70) as (node, _helper, robot, client):
        yield node, robot, client, port, root


def test_no_sonic_deployment_fails_the_goal_clearly_and_the_node_keeps_serving(rig, standing_keypoints):
    node, robot, client, port, _ = rig
    status, result, _, _ = _run(client, _goal(standing_keypoints, seconds=1.0))
    assert status == GoalStatus.STATUS_ABORTED, result.message
    assert "no SONIC deployment subscribed" in result.message and "\n" not in result.message
    assert node.context.ok()


def test_a_goal_streams_to_sonic_within_limits_and_sends_no_lowcmd(rig, standing_keypoints, g1_model):
    from exoactor.control.sonic import decode_frame
    from exoactor.g1.model import joint_ranges_rad

    node, robot, client, port, root = rig
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"pose")
    sub.setsockopt(zmq.RCVTIMEO, 200)
    sub.connect(f"tcp://127.0.0.1:{port}")
    frames, stop = [], threading.Event()

    def receive():
        while not stop.is_set():
            try:
                frames.append(decode_frame(sub.recv()))
            except zmq.Again:
                pass

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    goal = _goal(standing_keypoints, seconds=2.0)
    goal.episode_dir = str(root)
    t0 = time.monotonic()
    try:
        status, result, _, _ = _run(client, goal)
    finally:
        stop.set()
        t.join(2.0)
        sub.close(0)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert result.backend.endswith("sonic")
    assert len(frames) >= 80  # 2 s at 50 Hz (a frame or two may precede the subscription)
    q = np.concatenate([f["joint_pos"] for f in frames])
    rng = joint_ranges_rad(g1_model)
    assert np.all(q >= rng[:, 0] - 1e-6) and np.all(q <= rng[:, 1] + 1e-6)
    idx = np.concatenate([f["frame_index"] for f in frames])
    assert np.all(np.diff(idx) == 1)
    assert list(root.glob("sonic_*/joint_pos.csv"))  # SONIC's CSV motion folder too
    assert not robot.since(t0)  # nothing on /lowcmd: SONIC drives the motors
