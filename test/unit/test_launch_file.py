"""launch/pipeline.launch.py must start exactly the graph exoactor.launcher starts.

`launch`/`launch_ros` are not installable here, so the test loads the launch file against
minimal stand-ins that record what it declares.
"""
import importlib.util
import sys
import types
from pathlib import Path

import yaml

from exoactor.launcher import build_graph, config_dir

REPO = Path(__file__).resolve().parents[2]


class _Rec:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _stub_modules(share: Path):
    mods = {
        "launch": types.SimpleNamespace(LaunchDescription=lambda actions: actions),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=type("DeclareLaunchArgument", (_Rec,), {})),
        "launch.conditions": types.SimpleNamespace(IfCondition=type("IfCondition", (_Rec,), {})),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=lambda name: f"$({name})"),
        "launch_ros": types.SimpleNamespace(),
        "launch_ros.actions": types.SimpleNamespace(Node=type("Node", (_Rec,), {})),
        "ament_index_python": types.SimpleNamespace(),
        "ament_index_python.packages": types.SimpleNamespace(get_package_share_directory=lambda pkg: str(share)),
    }
    return mods


def test_launch_file_declares_the_same_nodes_and_overrides(monkeypatch, tmp_path):
    share = tmp_path / "share"
    (share / "config").mkdir(parents=True)
    for f in ("pipeline.yaml", "params.yaml"):
        (share / "config" / f).write_text((config_dir() / f).read_text())
    for name, mod in _stub_modules(share).items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("pipeline_launch", REPO / "launch" / "pipeline.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    actions = module.generate_launch_description()
    nodes = [a for a in actions if type(a).__name__ == "Node"]
    args = {a.args[0] for a in actions if type(a).__name__ == "DeclareLaunchArgument"}
    graph = build_graph()
    assert [n.kwargs["name"] for n in nodes] == [n.name for n in graph.nodes]
    assert args == set(graph.arguments) | {"params_file"}
    video = next(n for n in nodes if n.kwargs["name"] == "video_generator")
    assert video.kwargs["parameters"][1] == {"backend": "$(video_backend)", "episode_root": "$(episode_root)"}
    # every node gets exactly the overrides the launcher gives it (an argument may set several nodes)
    for n, g in zip(nodes, graph.nodes):
        given = {item.split(":=")[0] for item in g.argv if ":=" in item and not item.startswith("__node")}
        assert set(n.kwargs["parameters"][1]) == given, n.kwargs["name"]
    assert next(n for n in nodes if n.kwargs["name"] == "g1_sim").kwargs["condition"].args == ("$(sim)",)
    # every executable the launch file names is installed by CMakeLists.txt (scripts/nodes/*)
    for n in nodes:
        assert (REPO / "scripts" / "nodes" / n.kwargs["executable"]).is_file()
    # `ros2 launch -s` documents every argument: its description and default from config/pipeline.yaml
    documented = yaml.safe_load((config_dir() / "pipeline.yaml").read_text())["arguments"]
    for a in (a for a in actions if type(a).__name__ == "DeclareLaunchArgument"):
        name, description = a.args[0], a.kwargs.get("description", "")
        assert len(description) > 10, f"launch argument {name!r} has no description"
        if name in documented:
            assert description == documented[name]["description"]
            assert a.kwargs["default_value"] == str(documented[name]["default"])
