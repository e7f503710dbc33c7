"""The tracking node with ``backend: sonic``: a goal's trajectory reaches a SONIC deployment (a local
ZMQ subscriber here) as decoded frames within the joint limits, nothing goes out on /lowcmd, and a
missing deployment fails the goal with a clear message while the node keeps serving."""
import os
import socket
import threading
import time

import numpy as np
import pytest
import rclpy
import zmq
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor

from test_tracking_node_safety import FakeRobot, _goal, _run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rig(g1_model, tmp_path_factory):
    from exoactor.g1.model import stand_pose_rad
    from exoactor.nodes.tracking_node import TrackingNode

    os.environ["ROS_DOMAIN_ID"] = str(30 + os.getpid() % 60)
    port = _free_port()
    root = tmp_path_factory.mktemp("sonic")
    rclpy.init(args=["--ros-args", "-p", "backend:=sonic", "-p", f"sonic.endpoint:=tcp://127.0.0.1:{port}",
                     "-p", "sonic.wait_for_subscriber_s:=2.0", "-p", f"episode_root:={root}",
                     "-p", "lowstate_timeout_s:=1.0"])
    helper = rclpy.create_node("exoactor_test_sonic_robot")
    robot = FakeRobot(helper, stand_pose_rad(g1_model))
    node = TrackingNode()
    robot.capture(node)
    ex = MultiThreadedExecutor(num_threads=6)
    ex.add_node(node)
    ex.add_node(helper)
    threading.Thread(target=ex.spin, daemon=True).start()
    from exoactor.action import TrackMotion

    client = ActionClient(helper, TrackMotion, "exoactor/track_motion")
    assert client.wait_for_server(30.0)
    deadline = time.monotonic() + 30
    while node.core.state(time.monotonic())[0] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield node, robot, client, port, root
    finally:
        robot.close()
        node.close()
        ex.shutdown(timeout_sec=2.0)
        node.destroy_node()
        helper.destroy_node()
        rclpy.try_shutdown()


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
