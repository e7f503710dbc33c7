"""Operations: every node of the graph stays in the node list for the graph's whole life, and the
graph stops cleanly on SIGINT and SIGTERM (no C++ abort text, no traceback, no process left).

Each test starts its own graph (separate processes, as ``ros2 launch`` or ``python -m
exoactor.launcher`` would) on its own ROS domain."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import rclpy
from action_msgs.msg import GoalStatus
from rclpy.context import Context

from exoactor.launcher import Graph, build_graph, group_exists
from exoactor.nodes.task_client import TaskClient
from fakes.domains import domain_id
from fakes.graph import params_file_with

NODES = {"g1_sim", "camera", "embodiment_transfer", "task_planner", "video_generator", "pose_estimator",
         "tracking_controller", "tracking_controller_lowstate", "orchestrator"}
"""Every node of the graph (the tracking controller's process also has its 500 Hz /lowstate node)."""

BAD_OUTPUT = re.compile(r"terminate called|traceback|\babort(?:ed)?\b|segmentation fault|core dumped|"
                        r"fatal python error|exception ignored", re.IGNORECASE)
"""What a clean stop never prints (C++ std::terminate, Python tracebacks, crashes)."""
INTERRUPTED_GOAL = re.compile(r"\[WARN\] \[[\d.]+\] \[orchestrator\.action_server\]: Goal state not set, assuming "
                              r"aborted\. Goal ID: \[[\d ]+\]")
"""rclpy's own line for a task goal cut short by the shutdown itself (the context is gone, so no terminal state
can be published): the task really was interrupted; everything else in BAD_OUTPUT still fails the test."""


def _domain(offset: int) -> str:
    return str(domain_id(offset))


class Lister:
    """A node of its own (own context) that takes the graph's node list."""

    def __init__(self, domain: str):
        self.context = Context()
        rclpy.init(context=self.context, domain_id=int(domain))
        self.node = rclpy.create_node("exoactor_test_lister", context=self.context)

    def names(self) -> set[str]:
        return {name for name, _ns in self.node.get_node_names_and_namespaces()}

    def wait_for(self, names: set[str], timeout_s: float, dead=lambda: {}) -> set[str]:
        """Until every one of ``names`` is listed; returns those still missing."""
        deadline = time.monotonic() + timeout_s
        while (missing := names - self.names()) and time.monotonic() < deadline:
            assert not dead(), f"nodes died at start-up: {dead()}"
            time.sleep(0.5)
        return missing

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _tails(logs: Path) -> str:
    return "\n".join(f"===== {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                     for log in sorted(logs.glob("*.log")))


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """The whole graph (Graph, as test_graph.py starts it), an action client and a node lister."""
    root = tmp_path_factory.mktemp("operations")
    domain = _domain(0)
    os.environ["ROS_DOMAIN_ID"] = domain
    params = params_file_with({"orchestrator": {"episode_media": False}}, root / "params.yaml")  # media: test_graph
    # On the gantry (the default, pinned): these tests are about operating the graph
    g = Graph(build_graph({"episode_root": str(root / "episodes"), "gantry": "true"}, params_file=params),
              log_dir=root / "logs",
              env={"ROS_DOMAIN_ID": domain}).start()
    rclpy.init()
    client_node = rclpy.create_node("exoactor_test_client")
    client = TaskClient(client_node)
    lister = Lister(domain)
    try:
        assert client.wait_for_server(120.0), "no /exoactor/execute_task server"
        missing = lister.wait_for(NODES, 120.0, g.dead)
        assert not missing, f"never listed: {sorted(missing)}"
        yield g, client, lister
    finally:
        client.close()
        lister.close()
        client_node.destroy_node()
        rclpy.try_shutdown()
        forced = g.stop()
        print(_tails(root / "logs"))
        assert not forced, f"nodes needed {forced} to stop"


def test_every_node_is_listed_every_second_during_a_task(graph):
    g, client, lister = graph
    time.sleep(5.0)  # the simulator's /lowstate is flowing before the task starts (the controller checks it)
    samples: list[tuple[float, set[str]]] = []
    stop = threading.Event()

    def poll() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - t0, NODES - lister.names()))
            stop.wait(1.0)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stages = set()
    try:
        status, result = client.run("wave with the left hand", lambda fb: stages.add(fb.stage), timeout_s=900)
    finally:
        stop.set()
        poller.join(5.0)
    lapses = [(round(t, 1), sorted(m)) for t, m in samples if m]
    assert len(samples) > 15 and not lapses, f"nodes missing from the node list (s into the task, nodes): {lapses}"
    assert status == GoalStatus.STATUS_SUCCEEDED and result.success, result.message
    assert {"video_generation", "motion_estimation", "tracking"} <= stages  # the 500 Hz loop was busy
    assert not g.dead()


def test_a_node_not_heard_for_longer_than_the_dds_lease_is_listed_again(graph):
    """A process stopped for longer than the participant lease (Fast DDS: 20 s) drops out of its peers'
    graphs. Once it runs again DDS rediscovers it (its topics are back; how soon is up to DDS), and its
    node is listed again within seconds of that (it republishes its node list: without that, never)."""
    g, _, lister = graph
    pid = g.pids()["task_planner"]

    def rosout():  # every node has a /rosout publisher
        return lister.node.get_publishers_info_by_topic("/rosout")

    n0 = len(rosout())
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(25.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    t0 = time.monotonic()
    seen = []  # (s after resuming, node listed, its /rosout publisher listed (maybe without its node))
    rediscovered = listed = None
    while time.monotonic() - t0 < 90.0 and listed is None:
        t = round(time.monotonic() - t0, 1)
        names, back = lister.names(), len(rosout()) >= n0
        seen.append((t, "task_planner" in names, back))
        if rediscovered is None and back:
            rediscovered = t
        if names >= NODES:
            listed = t
        time.sleep(1.0)
    if rediscovered is None:
        # Fast DDS itself (not this project's code) can fail to rediscover the endpoints of a participant
        # whose peers dropped it while it kept them (eProsima/Fast-DDS#155, #457: the resumed process had
        # their announcements queued, so it never resends its endpoints): 2 of 7 CI runs. What this test
        # checks, the node list once DDS is back, cannot be checked then: reported, never counted a pass.
        pytest.xfail(f"Fast DDS never rediscovered the resumed process's endpoints within 90 s: {seen[-3:]}")
    assert listed is not None and listed - rediscovered <= 10.0, f"rediscovered at {rediscovered} s: {seen}"
    assert not g.dead()


@pytest.mark.parametrize("sig,during_task", [
    (signal.SIGTERM, False),
    (signal.SIGINT, True)],
    ids=["sigterm", "sigint_during_a_task"])  # (SIGINT while idle: the same path as SIGTERM, minus a graph start)
def test_the_launcher_stops_the_graph_cleanly(tmp_path, sig, during_task):
    """``python -m exoactor.launcher`` gets the signal (as from a terminal or a service manager); every
    node exits in time, nothing prints an abort or a traceback, and no process of the graph is left."""
    domain = _domain(1 + int(sig))
    logs = tmp_path / "logs"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "exoactor.launcher", f"episode_root:={tmp_path / 'episodes'}", "--log-dir", str(logs)],
        env={**os.environ, "ROS_DOMAIN_ID": domain, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lister = Lister(domain)
    client = None
    pids: dict[str, int] = {}
    try:
        started = launcher.stdout.readline()
        pids = {name: int(pid) for name, pid in re.findall(r"(\w+) \(pid (\d+)\)", started)}
        assert len(pids) == 8, started
        missing = lister.wait_for(NODES, 180.0, lambda: {} if launcher.poll() is None else {"launcher": 1})
        assert not missing, f"never listed: {sorted(missing)}"
        if during_task:
            client = TaskClient(lister.node)
            assert client.wait_for_server(60.0)
            time.sleep(5.0)
            in_flight = threading.Event()

            def run_task() -> None:
                with contextlib.suppress(Exception):  # the graph stops under it
                    client.run("wave with the right hand",
                               lambda fb: fb.stage == "video_generation" and in_flight.set(), timeout_s=120)

            threading.Thread(target=run_task, daemon=True).start()
            assert in_flight.wait(120.0), "the task never reached video generation"
            time.sleep(2.0)
        t0 = time.monotonic()
        launcher.send_signal(sig)
        out, _ = launcher.communicate(timeout=60)
        stop_s = time.monotonic() - t0
    finally:
        if client is not None:
            client.close()
        lister.close()
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
        for pid in pids.values():
            if group_exists(pid):
                os.killpg(pid, signal.SIGKILL)
    texts = {log.name: log.read_text(errors="replace") for log in logs.glob("*.log")}
    assert launcher.returncode == 0, f"launcher exit {launcher.returncode}:\n{out}\n{_tails(logs)}"
    assert stop_s < 15.0, f"stopping took {stop_s:.1f} s"
    left = [name for name, pid in {**pids, "launcher": launcher.pid}.items() if group_exists(pid)]
    assert not left, f"processes left: {left}"
    if during_task:
        texts = {name: INTERRUPTED_GOAL.sub("", text) for name, text in texts.items()}
    bad = {name: found for name, text in {"launcher": out, **texts}.items() if (found := BAD_OUTPUT.findall(text))}
    assert not bad, f"{bad}\n{out}\n{_tails(logs)}"
    assert sorted(texts) == sorted(f"{n}.log" for n in pids)
