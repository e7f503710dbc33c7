"""ros2 launch exoactor pipeline.launch.py [sim:=true] [video_backend:=synthetic] ...

Thin and declarative: the node list, the launch arguments (with their defaults and descriptions:
`ros2 launch exoactor pipeline.launch.py --show-args`) and the parameters they set all come from
config/pipeline.yaml and config/params.yaml, the same files `python -m exoactor.launcher` and the
integration tests read.
"""
import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("exoactor")
    with open(os.path.join(share, "config", "pipeline.yaml")) as f:
        spec = yaml.safe_load(f)
    actions = [DeclareLaunchArgument(name, default_value=str(a["default"]), description=a["description"])
               for name, a in spec["arguments"].items()]
    actions.append(DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "params.yaml"),
                                         description="ROS 2 parameter file for all nodes"))
    for n in spec["nodes"]:
        overrides = {a["parameter"]: LaunchConfiguration(arg) for arg, a in spec["arguments"].items()
                     if n["name"] in ([a["node"]] if isinstance(a.get("node"), str) else a.get("node") or [])}
        actions.append(Node(package="exoactor", executable=n["executable"], name=n["name"], output="screen",
                            parameters=[LaunchConfiguration("params_file"), overrides],
                            condition=IfCondition(LaunchConfiguration(n["if"])) if n.get("if") else None))
    return LaunchDescription(actions)
