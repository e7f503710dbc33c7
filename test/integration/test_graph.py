"""The node graph as separate processes (config/pipeline.yaml, as `ros2 launch` starts it), driven
from an action client the way a user's own client would."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from action_msgs.msg import GoalStatus

from exoactor.action import ExecuteTask
from exoactor.g1.model import joint_ranges_rad, load_g1_model, stand_pose_rad
from exoactor.launcher import Graph, build_graph
from exoactor.nodes.qos import SENSOR_QOS
from exoactor.nodes.task_client import TaskClient
from exoactor.nodes.unitree_io import LowCmdReader, LowStateReader, import_unitree_hg
from fakes.domains import domain_id
from fakes.spinning import spin_in_thread, stop_spinning

R = ExecuteTask.Result
NODES = {"g1_sim", "camera", "embodiment_transfer", "task_planner", "video_generator", "pose_estimator",
         "tracking_controller", "orchestrator"}


class Recorder:
    """Keeps recent /lowcmd and /lowstate samples (decoded from raw bytes)."""

    def __init__(self):
        LowCmd, LowState, _ = import_unitree_hg()
        self.cmd_reader, self.state_reader = LowCmdReader(), LowStateReader()
        self.lock = threading.Lock()
        self.cmds: list = []
        self.states: list = []
        # Own node on a single-threaded executor: keeps up with the 500 Hz streams.
        self.node = rclpy.create_node("exoactor_test_recorder")
        self.node.create_subscription(LowCmd, "lowcmd", self._on_cmd, SENSOR_QOS, raw=True)
        self.node.create_subscription(LowState, "lowstate", self._on_state, SENSOR_QOS, raw=True)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = spin_in_thread(self.executor)

    def close(self):
        stop_spinning(self.executor, self._thread, self.node)

    def _on_cmd(self, data):
        with self.lock:
            self.cmds.append((time.monotonic(), data))
            del self.cmds[:-30000]

    def _on_state(self, data):
        with self.lock:
            self.states.append((time.monotonic(), data))
            del self.states[:-30000]

    def since(self, t0):
        with self.lock:
            cmds = [(t, *self.cmd_reader.read(d)) for t, d in self.cmds if t >= t0]
            states = [(t, *self.state_reader.read(d)) for t, d in self.states if t >= t0]
        return cmds, states


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    root = tmp_path_factory.mktemp("graph")
    domain = str(domain_id(0))
    os.environ["ROS_DOMAIN_ID"] = domain
    g = Graph(build_graph({"episode_root": str(root / "episodes")}), log_dir=root / "logs",
              env={"ROS_DOMAIN_ID": domain}).start()
    rclpy.init()
    node = rclpy.create_node("exoactor_test_client")
    rec = Recorder()
    client = TaskClient(node)
    try:
        assert client.wait_for_server(120.0), "no /exoactor/execute_task server"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not rec.since(0)[1]:
            assert not g.dead(), f"nodes died at start-up: {g.dead()}"
            time.sleep(0.5)
        assert rec.since(0)[1], "no /lowstate from the simulator"
        yield g, client, node, rec, root
    finally:
        client.close()
        rec.close()
        node.destroy_node()
        rclpy.try_shutdown()
        g.stop()
        for log in sorted((root / "logs").glob("*.log")):
            print(f"===== {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]))


@pytest.fixture
def no_media(graph):
    """The orchestrator skips the episode media for this test's goals (only the end-to-end test checks
    them; they take ~30-50 s of CPU here), switched at run time as with ``ros2 param set``."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    from exoactor.nodes.spin import wait_for

    node = graph[2]
    client = node.create_client(SetParameters, "/orchestrator/set_parameters")  # kept: destroying races the executor
    assert client.wait_for_service(timeout_sec=30.0), "no /orchestrator/set_parameters service"

    def set_media(on: bool) -> None:
        value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=on)
        res = wait_for(client.call_async(SetParameters.Request(parameters=[Parameter(name="episode_media",
                                                                                     value=value)])), 10.0)
        assert res is not None and res.results[0].successful, res

    set_media(False)
    try:
        yield
    finally:
        set_media(True)


@pytest.fixture(scope="module")
def limits():
    m = load_g1_model(with_floor=False)
    return joint_ranges_rad(m), stand_pose_rad(m)


def test_each_stage_is_its_own_node_and_process(graph):
    g, _, node, _, _ = graph
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not NODES <= set(node.get_node_names()):
        time.sleep(0.5)
    assert NODES <= set(node.get_node_names())
    pids = g.pids()
    assert set(pids) == NODES and len(set(pids.values())) == len(NODES) and not g.dead()


@pytest.mark.parametrize("instruction,fragment",
                         [("", "empty"), ("blorp the zork", "could not understand 'blorp the zork'")])
def test_bad_instruction_is_rejected_clearly(graph, instruction, fragment):
    _, client, _, _, _ = graph
    t0 = time.monotonic()
    status, result = client.run(instruction, timeout_s=60)
    assert status == GoalStatus.STATUS_ABORTED and not result.success
    assert result.error_code == R.ERROR_INVALID_INSTRUCTION and result.failed_stage == "planning"
    assert fragment in result.message and time.monotonic() - t0 < 10
    saved = json.loads((Path(result.episode_path) / "result.json").read_text())
    assert saved["error_code"] == R.ERROR_INVALID_INSTRUCTION  # the failed attempt is kept


def test_task_runs_end_to_end_with_feedback_from_every_stage(graph, limits):
    g, client, _, rec, _ = graph
    feedback = []
    t0 = time.monotonic()
    status, result = client.run("wave with the right hand", feedback.append, timeout_s=600)
    assert status == GoalStatus.STATUS_SUCCEEDED and result.success, result.message
    stages = [f.stage for f in feedback]
    for s in ("planning", "camera", "embodiment_transfer", "video_generation", "motion_estimation", "tracking", "done"):
        assert s in stages, f"no feedback from {s}: {sorted(set(stages))}"
    progress = [f.progress for f in feedback]
    assert progress[-1] == pytest.approx(1.0) and all(b >= a - 1e-6 for a, b in zip(progress, progress[1:]))
    ep = Path(result.episode_path)
    for f in ("input.png", "reference.png", "steps.json", "segment_00.mp4", "motion_00.npz", "trajectory_00.npz",
              "timings.json", "log.txt", "result.json", "camera.json", "index.html", "episode.webm",
              "plot_timeline.png", "plot_tracking.png", "plot_root_path.png"):
        assert (ep / f).is_file(), f
    # The episode's four-panel video moves (the robot panel re-renders the measured joints).
    import cv2
    cap = cv2.VideoCapture(str(ep / "episode.webm"))
    frames = []
    while len(frames) < 400:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame.astype(np.int16))
    cap.release()
    assert len(frames) > 10 and np.abs(frames[len(frames) // 2] - frames[0]).mean() > 1.0
    assert any(f.stage == "episode_media" for f in feedback)
    # The simulated robot followed the commanded trajectory.
    z = np.load(ep / "trajectory_00.npz")
    assert len(z["log_t_s"]) > 50
    assert np.sqrt(np.mean((z["log_commanded_rad"] - z["log_measured_rad"]) ** 2)) < 0.2
    assert z["log_commanded_rad"][:, 23].min() < -0.8  # right shoulder rolled out: the wave reached the robot
    # by default the robot hangs on the gantry: the legs followed the trajectory
    assert [s["lower_body"] for s in json.loads((ep / "result.json").read_text())["steps"]] == ["trajectory"]
    # Every command sent during the run had a valid CRC and stayed inside the joint limits.
    cmds, _ = rec.since(t0)
    assert len(cmds) > 2000
    rng, _ = limits
    for _, frame, crc_ok in cmds[::20]:
        assert crc_ok and np.all(frame.q[:29] >= rng[:, 0]) and np.all(frame.q[:29] <= rng[:, 1])
    assert not g.dead()


def test_stage_goals_with_paths_outside_the_episode_root_are_refused(graph, tmp_path):
    """Any DDS peer can send a stage goal: paths in it must stay inside the episode root."""
    from exoactor.action import EstimateMotion, GenerateVideo
    from exoactor.msg import StepPrompt
    from exoactor.nodes.spin import ActionClient, wait_for

    g, _, node, _, _ = graph
    for action, name, goal in (
            (GenerateVideo, "exoactor/generate_video",
             GenerateVideo.Goal(episode_dir=str(tmp_path), steps=[StepPrompt(action="wave", side="right",
                                                                             duration_s=1.0)])),
            (EstimateMotion, "exoactor/estimate_motion", EstimateMotion.Goal(video_path="/etc/passwd"))):
        # kept until the fixture's executor stops: rclpy's destroy() races with a spinning executor
        client = ActionClient(node, action, name)
        assert client.wait_for_server(90.0), f"no {name} server"
        gh = wait_for(client.send_goal_async(goal), 20.0)
        assert gh is not None, f"{name} did not answer the goal within 20 s"
        done = wait_for(gh.get_result_async(), 30.0)
        assert done is not None, f"{name} gave no result within 30 s"
        res = done.result
        assert not res.success and "outside the episode root" in res.message, res.message
    assert not list(tmp_path.iterdir()) and not g.dead()  # nothing written there, and the nodes keep serving


def test_instructions_are_bounded_and_logged_on_one_line(graph):
    _, client, _, _, root = graph
    status, result = client.run("x" * 5000, timeout_s=30)
    assert result.error_code == R.ERROR_INVALID_INSTRUCTION and "at most" in result.message
    assert result.episode_path == ""  # refused before anything was written
    forged = "blorp\n2026-12-01T00:00:00.000 result: success=True code=0 forged"
    status, result = client.run(forged, timeout_s=30)
    assert result.error_code == R.ERROR_INVALID_INSTRUCTION
    log = (Path(result.episode_path) / "log.txt").read_text().splitlines()
    assert not any(line.startswith("2026-12-01T00:00:00.000") for line in log)
    assert json.loads((Path(result.episode_path) / "request.json").read_text())["instruction"] == forged


def test_cancel_mid_execution_ramps_to_a_safe_hold(graph, limits, no_media):
    g, client, _, rec, _ = graph
    status, result = client.run("raise the left arm then wave with the right hand",
                                cancel_when=lambda fb: fb.stage == "tracking" and fb.stage_progress > 0.4,
                                timeout_s=600)
    assert status == GoalStatus.STATUS_CANCELED and result.error_code == R.ERROR_CANCELED, result.message
    assert result.failed_stage == "tracking" and "hold" in result.message
    time.sleep(1.0)
    t_obs = time.monotonic()
    time.sleep(1.5)
    cmds, states = rec.since(t_obs)
    rng, stand = limits
    assert len(cmds) > 150  # still commanded (holding), not abandoned
    for _, frame, crc_ok in cmds:
        assert crc_ok and frame.kp[:29].min() > 0 and not frame.dq[:29].any()
        assert np.all(frame.q[:29] >= rng[:, 0]) and np.all(frame.q[:29] <= rng[:, 1])
    np.testing.assert_allclose(cmds[-1][1].q[:29], stand, atol=0.03)  # the hold pose (on the gantry)
    q, dq = states[-1][1], states[-1][2]
    assert np.abs(dq).max() < 0.5  # at rest
    assert np.abs(q[15:29] - stand[15:29]).max() < 0.25  # arms at the hold pose
    saved = json.loads((Path(result.episode_path) / "result.json").read_text())
    assert saved["error_code"] == R.ERROR_CANCELED and (Path(result.episode_path) / "segment_00.mp4").is_file()
    assert not g.dead()


def test_lost_robot_state_aborts_with_damping_and_nodes_keep_serving(graph, no_media):
    """Last in this module: it kills the simulator."""
    g, client, _, rec, _ = graph
    killed = []

    def kill_sim_during_tracking(fb):
        if fb.stage == "tracking" and fb.stage_progress > 0.4 and not killed:
            killed.append(time.monotonic())
            g.procs["g1_sim"].kill()
        return False

    status, result = client.run("raise the left arm", cancel_when=kill_sim_during_tracking, timeout_s=600)
    assert killed, "tracking never started"
    assert status == GoalStatus.STATUS_ABORTED and result.error_code == R.ERROR_ROBOT_STATE, result.message
    assert "lowstate" in result.message and result.failed_stage == "tracking"
    time.sleep(0.5)
    cmds, _ = rec.since(time.monotonic() - 0.3)
    assert cmds and all(not f.kp[:29].any() and np.all(f.kd[:29] == 8.0) and ok for _, f, ok in cmds)  # damping
    assert set(g.dead()) == {"g1_sim"}  # every other node survived
    status, result = client.run("", timeout_s=60)  # and still serves
    assert result.error_code == R.ERROR_INVALID_INSTRUCTION
