"""Start the node graph (as separate processes, like `ros2 launch`) with parameter overrides,
for integration tests and benchmarks that point remote backends at local fake services."""
from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from exoactor.launcher import Graph, build_graph, config_dir


def params_file_with(overrides: dict[str, dict], path: Path) -> Path:
    """config/params.yaml with ``{node: {param: value}}`` merged in, written to ``path``."""
    params = yaml.safe_load((config_dir() / "params.yaml").read_text())
    for node, values in overrides.items():
        params.setdefault(node, {}).setdefault("ros__parameters", {}).update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def start_graph(root: Path, arguments: dict[str, str], overrides: dict[str, dict], env: dict[str, str]) -> Graph:
    """The full graph with launch ``arguments`` and parameter ``overrides``; logs in ``root/logs``."""
    root.mkdir(parents=True, exist_ok=True)
    params = params_file_with(overrides, root / "params.yaml")
    spec = build_graph({"episode_root": str(root / "episodes"), **arguments}, params_file=params)
    domain = os.environ.get("ROS_DOMAIN_ID", "0")
    return Graph(spec, log_dir=root / "logs", env={**env, "ROS_DOMAIN_ID": domain}).start()


def render_clip(path: Path, action: str = "wave", duration_s: float = 2.0, side: str = "right",
                fps: float = 30.0) -> Path:
    """A video of the synthetic human doing ``action`` through the simulator's default camera
    (what a remote video model would return for the offline scene); cached at ``path``."""
    if path.is_file():
        return path
    from exoactor.geometry import PinholeCamera
    from exoactor.planning.vocabulary import Step
    from exoactor.progress import NEVER_CANCELED, no_progress
    from exoactor.video.base import VideoRequest
    from exoactor.video.synthetic import SyntheticVideoGenerator

    cfg = yaml.safe_load((config_dir() / "params.yaml").read_text())["g1_sim"]["ros__parameters"]
    cam = PinholeCamera.look_at(cfg["camera.width"], cfg["camera.height"], cfg["camera.fovy_deg"],
                                cfg["camera.eye_m"], cfg["camera.target_m"])
    import numpy as np

    from exoactor.video.io import write_image_rgb

    work = path.parent / f".render_{path.stem}"
    work.mkdir(parents=True, exist_ok=True)
    background = np.full((cam.height, cam.width, 3), 150, np.uint8)
    background[cam.height // 2:] = 110  # a darker floor
    bg = write_image_rgb(work / "background.png", background)
    gen = SyntheticVideoGenerator(fps=fps)
    seg = gen.generate(VideoRequest(work, [Step(action=action, side=side, duration_s=duration_s)], 0, bg, None, cam),
                       no_progress, NEVER_CANCELED)
    os.replace(seg.video_path, path)
    return path


def wait_ready(client, graph: Graph, timeout_s: float = 120.0) -> None:
    """Until the orchestrator's action server answers (fails early if a node died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.wait_for_server(1.0):
            return
        if graph.dead():
            raise RuntimeError(f"nodes died at start-up: {graph.dead()}")
    raise RuntimeError("no /exoactor/execute_task server")
