"""The shape of the code base: the ROS-free core (everything under src/exoactor but ``nodes``, what
``pip install .`` ships) imports without rclpy or any ROS message package, its packages import
each other without cycles, and shared definitions exist once."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import yaml

from exoactor.geometry import DEFAULT_CALIBRATION
from exoactor.launcher import config_dir

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "exoactor"
ROS_MODULES = ("rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "std_srvs", "geometry_msgs",
               "sensor_msgs", "tf2_msgs", "visualization_msgs", "action_msgs", "unitree_hg", "unitree_api", "cv_bridge",
               "exoactor.msg", "exoactor.srv", "exoactor.action", "exoactor.nodes")
"""What the core must never import (the generated exoactor interfaces exist only in a colcon install)."""


def core_files() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "nodes" not in p.relative_to(PKG).parts[:1])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions (absolute names)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}  # from exoactor import video
    return out


def component(module: str) -> str | None:
    """``exoactor.video.io`` -> ``video``; ``exoactor.geometry`` -> ``geometry``; other packages -> None."""
    parts = module.split(".")
    if parts[0] != "exoactor" or len(parts) < 2:
        return None
    name = parts[1]
    return name if (PKG / name).is_dir() or (PKG / f"{name}.py").is_file() else None


def test_no_core_module_imports_rclpy_or_ros_messages_even_inside_functions():
    bad = {}
    for path in core_files():
        hits = sorted(m for m in imported_modules(path) if any(m == r or m.startswith(r + ".") for r in ROS_MODULES))
        if hits:
            bad[str(path.relative_to(SRC))] = hits
    assert not bad, f"the ROS-free core imports ROS: {bad}"


def test_every_core_module_imports_with_ros_unimportable():
    """In a fresh interpreter where rclpy and the ROS message packages cannot be imported."""
    modules = [module_name(p) for p in core_files() if p.name != "__main__.py"]
    script = (
        "import importlib, json, sys\n"
        f"for name in {list(ROS_MODULES)!r}:\n"
        "    sys.modules[name] = None  # import raises ImportError\n"
        "failed = {}\n"
        f"for m in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception as e:\n"
        "        failed[m] = f'{type(e).__name__}: {e}'\n"
        "print(json.dumps(failed))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    failed = json.loads(run.stdout.strip().splitlines()[-1])
    assert not failed, failed
    assert len(modules) > 50


def test_no_import_cycle_between_core_packages():
    graph: dict[str, set[str]] = {}
    for path in core_files():
        src = component(module_name(path))
        if src is not None:  # exoactor/__init__.py imports nothing of its own
            graph.setdefault(src, set()).update({component(m) for m in imported_modules(path)} - {None, src})
    cycles = []

    def visit(n: str, stack: list[str]) -> None:
        for d in sorted(graph.get(n, ())):
            if d in stack:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in done:
                visit(d, stack + [d])
        done.add(n)

    done: set[str] = set()
    for n in sorted(graph):
        if n not in done:
            visit(n, [n])
    assert not cycles, f"import cycles between core packages: {cycles}"
    assert "motion" in graph and "video" in graph  # the check saw the packages


def test_default_calibration_is_the_one_in_params_yaml():
    sim = yaml.safe_load((config_dir() / "params.yaml").read_text())["g1_sim"]["ros__parameters"]
    c = DEFAULT_CALIBRATION
    assert (sim["camera.width"], sim["camera.height"], sim["camera.fovy_deg"]) == (c.width, c.height, c.fovy_deg)
    assert tuple(sim["camera.eye_m"]) == c.eye_world_m and tuple(sim["camera.target_m"]) == c.target_world_m
