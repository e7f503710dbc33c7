import json

import pytest

from exoactor.episode import Episode
from exoactor.launcher import build_graph, config_dir


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


def test_episode_folder_records_timings_and_logs(tmp_path):
    ep = Episode.create(tmp_path, "Wave with the right hand!")
    assert ep.path.name.endswith("_wave-with-the-right-hand")
    ep.record_time("planning", 0.25)
    ep.log("hello")
    ep.write_json("result.json", {"success": True})
    assert json.loads((ep.path / "timings.json").read_text())["planning"] == 0.25
    assert "hello" in (ep.path / "log.txt").read_text()
    assert Episode.create(tmp_path, "Wave with the right hand!").path != ep.path  # never overwrites
