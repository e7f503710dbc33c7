import json
import os
import subprocess
import sys

import pytest

from exoactor.episode import Episode
import signal
import time

from exoactor.launcher import Graph, GraphSpec, NodeSpec, build_graph, config_dir, group_exists


def test_graph_matches_pipeline_yaml_and_applies_arguments():
    g = build_graph({"video_backend": "file", "episode_root": "/tmp/x"})
    names = [n.name for n in g.nodes]
    assert names == ["g1_sim", "camera", "embodiment_transfer", "task_planner", "video_generator",
                     "pose_estimator", "tracking_controller", "orchestrator"]
    video = next(n for n in g.nodes if n.name == "video_generator")
    assert "backend:=file" in video.argv and str(config_dir() / "params.yaml") in video.argv
    assert "episode_root:=/tmp/x" in next(n for n in g.nodes if n.name == "orchestrator").argv
    assert "g1_sim" not in [n.name for n in build_graph({"sim": "false"}).nodes]


def test_unknown_launch_argument_is_refused():
    with pytest.raises(ValueError, match="unknown launch argument 'vidoe_backend'"):
        build_graph({"vidoe_backend": "file"})


@pytest.mark.parametrize("value", ["233", "300", "-1", "one", "\u00b2"])
def test_a_domain_without_ports_is_refused_in_one_line_by_the_launcher_and_a_node(value, monkeypatch, capsys):
    """Fast DDS would end a node with exit status 1 and no message for a domain above 232."""
    from exoactor.launcher import main

    monkeypatch.setenv("ROS_DOMAIN_ID", value)
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ROS_DOMAIN_ID must be an integer from 0 to 232" in err and repr(value) in err
    node = subprocess.run([sys.executable, "-m", "exoactor.nodes.planner_node"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "ROS_DOMAIN_ID": value})
    assert node.returncode == 2, node.stderr
    assert node.stderr.strip() == f"configuration error: {err.removeprefix('exoactor.launcher: ')}"


@pytest.mark.parametrize("value", ["", "0", "101", "232", " 7 "])
def test_domains_with_ports_pass_the_check(value):
    from exoactor.ros_domain import domain_id_problem

    assert domain_id_problem({"ROS_DOMAIN_ID": value}) == ""
    assert domain_id_problem({}) == ""


STAND_IN_NODE = r"""
import os, signal, subprocess, sys, threading
if sys.argv[1] == "leave_an_orphan":  # a child of a child: reparented to PID 1 once its parent exits
    subprocess.Popen(["sh", "-c", "sleep 60 & exit 0"]).wait()
stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
print("ready", flush=True)
stop.wait(30.0)
sys.exit(int(sys.argv[2]))
"""


def _stand_in_graph(tmp_path, nodes: dict[str, tuple[str, int]]) -> Graph:
    (tmp_path / "stand_in_node.py").write_text(STAND_IN_NODE)
    spec = GraphSpec([NodeSpec(name, "stand_in_node", [what, str(rc)]) for name, (what, rc) in nodes.items()])
    g = Graph(spec, tmp_path / "logs", env={"PYTHONPATH": str(tmp_path)}).start()
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and not all(
            "ready" in (tmp_path / "logs" / f"{n}.log").read_text() for n in nodes):
        time.sleep(0.05)
    return g


def test_the_graph_stops_with_nothing_left_of_any_node_and_names_a_node_that_ended_with_an_error(tmp_path):
    g = _stand_in_graph(tmp_path, {"clean": ("none", 0), "orphaning": ("leave_an_orphan", 0),
                                   "failing": ("none", 3)})
    pids = g.pids()
    not_clean = g.stop(first_signal=signal.SIGINT)
    assert not_clean == {"failing": "exit status 3"}
    left = [n for n, pid in pids.items() if group_exists(pid)]
    assert not left, f"process groups still there when stop() returned: {left}"


def test_episode_folder_records_timings_and_logs(tmp_path):
    ep = Episode.create(tmp_path, "Wave with the right hand!")
    assert ep.path.name.endswith("_wave-with-the-right-hand")
    ep.record_time("planning", 0.25)
    ep.log("hello")
    ep.write_json("result.json", {"success": True})
    assert json.loads((ep.path / "timings.json").read_text())["planning"] == 0.25
    assert "hello" in (ep.path / "log.txt").read_text()
    assert Episode.create(tmp_path, "Wave with the right hand!").path != ep.path  # never overwrites
