"""The tracking node with its 500 Hz loop in a process of its own (parameter control_process, the
default), against the fake robot of test_tracking_node_safety: goals run, the e-stop is served by
the control process itself, a control process that dies aborts the goal with its exit status and the
next goal starts a fresh one, and a bad leg policy is refused at start-up in one line."""
import os
import signal
import threading
import time

import numpy as np
import pytest
import rclpy
from action_msgs.msg import GoalStatus
from std_srvs.srv import Trigger

from fakes.domains import domain_id
from test_tracking_node_safety import _damped, _goal, _run, tracking_rig


# First: it needs the default context, which the module's rig holds once it starts.
def test_a_leg_policy_that_cannot_load_is_refused_at_start_up_in_one_line(tmp_path):
    from exoactor.nodes.params import ConfigError
    from exoactor.nodes.tracking_node import TrackingNode

    bad = tmp_path / "motion.pt"
    bad.write_bytes(b"not a TorchScript file")
    os.environ["ROS_DOMAIN_ID"] = str(domain_id(20))
    rclpy.init(args=["--ros-args", "-p", "gantry:=false", "-p", f"leg_policy_path:={bad}",
                     "-p", "control_process:=true"])
    try:
        with pytest.raises(ConfigError) as e:
            TrackingNode()
        assert "leg_policy_path" in str(e.value) and "\n" not in str(e.value)
    finally:
        rclpy.try_shutdown()


@pytest.fixture(scope="module")
def rig(g1_model):
    with tracking_rig(g1_model, {"ramp_in_min_s": "0.2", "ramp_speed_rad_s": "2.0", "lowstate_timeout_s": "1.0",
                                 "lower_body": "trajectory", "gantry": "true", "control_process": "true"}, 40) as r:
        yield r


def _client(helper, name):
    cli = helper.create_client(Trigger, name)
    assert cli.wait_for_service(5.0)
    time.sleep(0.5)  # the response path is matched after the request path: a reply sent sooner is lost
    return cli


def _call(cli):
    fut = cli.call_async(Trigger.Request())
    deadline = time.monotonic() + 5
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    return fut.result()


def test_lowcmd_comes_from_a_single_threaded_child_process(rig, standing_keypoints):
    node, helper, robot, client = rig
    pid = node.core.pid
    assert pid not in (None, os.getpid()) and not hasattr(node, "pub_cmd")
    assert node.core.info["python_threads"] == 1  # the loop; the others in the process are the middleware's
    with open(f"/proc/{pid}/environ", "rb") as f:  # no BLAS worker threads: products run in the loop's thread
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    assert env.get(b"OPENBLAS_NUM_THREADS") == b"1" and env.get(b"OMP_NUM_THREADS") == b"1"
    fifo = "SCHED_FIFO" in node.core.info["control"]
    assert (os.sched_getscheduler(pid) == os.SCHED_FIFO) == fifo, node.core.info
    t0 = time.monotonic()
    status, result, _, _ = _run(client, _goal(standing_keypoints, 1.0))
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert "LowCmd" in result.message and np.isfinite(result.tracking_rmse_rad)
    deadline = time.monotonic() + 10.0
    # graph discovery: the endpoint can be known before its node's name ("_NODE_NAME_UNKNOWN_")
    while (not (pubs := helper.get_publishers_info_by_topic("/lowcmd"))
           or any(p.node_name == "_NODE_NAME_UNKNOWN_" for p in pubs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p.node_name for p in pubs] == ["tracking_controller_lowstate"]
    sent_by_child = node.core.report(t0)["sent_t"]  # the child's own record: ~500 Hz for > 1.2 s
    assert len(sent_by_child) > 300, (len(sent_by_child), result.message)
    # What this busy test process's listener (depth 10, sharing its GIL with the tracking node) took of them
    sent = robot.since(t0)
    assert len(sent) > 100 and all(ok for _, _, ok in sent), (len(sent), result.message)
    held = robot.since(time.monotonic() - 0.2)
    assert held and all(f.kp[:29].any() for _, f, _ in held)  # holding the last pose, not damping
    # gravity feed-forward (the default) on the arms only, never on the legs or the waist
    assert all(f.tau[15:29].any() and not f.tau[:15].any() for _, f, _ in held)


def test_estop_service_is_served_by_the_control_process(rig, standing_keypoints):
    _, helper, robot, client = rig
    estop_cli, reset_cli = _client(helper, "exoactor/estop"), _client(helper, "exoactor/estop_reset")
    answers = []

    def estop(fb):
        if fb.phase == "tracking":
            # from another thread: this callback's group also carries the service client's response
            threading.Thread(target=lambda: answers.append(_call(estop_cli)), daemon=True).start()
            return True
        return False

    status, result, t_done, fired = _run(client, _goal(standing_keypoints), estop)
    assert status == GoalStatus.STATUS_ABORTED and "e-stop engaged (service exoactor/estop)" in result.message
    assert t_done - fired[0] < 0.5
    time.sleep(0.2)
    latched = robot.since(fired[0] + 0.05)
    assert latched and all(_damped(f) for _, f, _ in latched)
    status, result, _, _ = _run(client, _goal(standing_keypoints, 0.5))
    assert status == GoalStatus.STATUS_ABORTED and "estop_reset" in result.message
    assert answers and answers[0] is not None and answers[0].success
    assert _call(reset_cli).success
    status, result, _, _ = _run(client, _goal(standing_keypoints, 0.5))
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message


def test_a_control_process_that_dies_aborts_the_goal_and_the_next_goal_gets_a_new_one(rig, standing_keypoints):
    node, _, _, client = rig
    old = node.core.pid

    def kill(fb):
        if fb.phase == "tracking":
            os.kill(old, signal.SIGKILL)
            return True
        return False

    status, result, t_done, fired = _run(client, _goal(standing_keypoints), kill)
    assert status == GoalStatus.STATUS_ABORTED
    assert "the control process ended (exit code -9)" in result.message, result.message
    assert t_done - fired[0] < 1.0
    status, result, _, _ = _run(client, _goal(standing_keypoints, 0.5), timeout=120.0)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert node.core.pid not in (None, old) and node.core.restarts == 1
