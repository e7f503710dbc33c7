"""Start the ExoActor graph without ``ros2 launch``: one process per node, same config files.

    python -m exoactor.launcher [sim:=true] [video_backend:=synthetic] [--params-file F] [--log-dir D]

Reads config/pipeline.yaml (nodes, arguments) and config/params.yaml exactly as
launch/pipeline.launch.py does. Ctrl-C (SIGINT) or SIGTERM stops every node.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml


def config_dir() -> Path:
    """share/exoactor/config of an installed package, else the source tree's config/."""
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        d = Path(prefix) / "share" / "exoactor" / "config"
        if prefix and (d / "pipeline.yaml").is_file():
            return d
    d = Path(__file__).resolve().parents[2] / "config"
    if (d / "pipeline.yaml").is_file():
        return d
    raise FileNotFoundError("cannot find exoactor's config/pipeline.yaml (source the workspace's setup.bash)")


@dataclass
class NodeSpec:
    name: str
    module: str
    argv: list[str]


@dataclass
class GraphSpec:
    nodes: list[NodeSpec]
    arguments: dict[str, str] = field(default_factory=dict)


def argument_nodes(argument: dict) -> list[str]:
    """The nodes a launch argument sets a parameter of (``node``: one name or a list)."""
    node = argument.get("node")
    return [node] if isinstance(node, str) else list(node or [])


def build_graph(arguments: dict[str, str] | None = None, params_file: Path | None = None,
                cfg: Path | None = None) -> GraphSpec:
    """The processes to start for the given launch arguments (name -> value)."""
    cfg = cfg or config_dir()
    spec = yaml.safe_load((cfg / "pipeline.yaml").read_text())
    args = {k: str(v["default"]) for k, v in spec["arguments"].items()}
    for k, v in (arguments or {}).items():
        if k not in args:
            raise ValueError(f"unknown launch argument {k!r}; known: {', '.join(args)}")
        args[k] = str(v)
    params_file = params_file or cfg / "params.yaml"
    nodes = []
    for n in spec["nodes"]:
        cond = n.get("if")
        if cond and args[cond].strip().lower() not in ("true", "1", "yes", "on"):
            continue
        argv = ["--ros-args", "-r", f"__node:={n['name']}", "--params-file", str(params_file)]
        for arg, a in spec["arguments"].items():
            if n["name"] in argument_nodes(a):
                argv += ["-p", f"{a['parameter']}:={args[arg]}"]
        nodes.append(NodeSpec(n["name"], n["module"], argv))
    return GraphSpec(nodes, args)


class Graph:
    """Running node processes. Output goes to ``log_dir/<node>.log`` or, without one, to stdout."""

    def __init__(self, spec: GraphSpec, log_dir: Path | None = None, env: dict[str, str] | None = None):
        self.spec = spec
        self.log_dir = Path(log_dir) if log_dir else None
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.procs: dict[str, subprocess.Popen] = {}
        self._pumps: list[threading.Thread] = []

    def start(self) -> "Graph":
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for n in self.spec.nodes:
            cmd = [sys.executable, "-m", n.module, *n.argv]
            if self.log_dir:
                out = open(self.log_dir / f"{n.name}.log", "w")  # noqa: SIM115 - closed with the process
                self.procs[n.name] = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
            else:
                p = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
                self.procs[n.name] = p
                t = threading.Thread(target=self._pump, args=(n.name, p), daemon=True)
                t.start()
                self._pumps.append(t)
        return self

    @staticmethod
    def _pump(name: str, p: subprocess.Popen) -> None:
        for line in p.stdout:
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.items()}

    def dead(self) -> dict[str, int]:
        """Nodes that exited, with their return codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop(self, timeout_s: float = 10.0) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> "Graph":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def parse_launch_args(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        if ":=" not in it:
            raise SystemExit(f"launch arguments look like name:=value, got {it!r}")
        k, v = it.split(":=", 1)
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("launch_args", nargs="*", help="name:=value (see config/pipeline.yaml)")
    ap.add_argument("--params-file", type=Path, help="parameter file (default: config/params.yaml)")
    ap.add_argument("--log-dir", type=Path, help="write each node's output to <dir>/<node>.log instead of stdout")
    a = ap.parse_args(argv)
    try:
        graph = Graph(build_graph(parse_launch_args(a.launch_args), a.params_file), a.log_dir)
    except (ValueError, FileNotFoundError) as e:
        print(f"exoactor.launcher: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    graph.start()
    print(f"started {len(graph.procs)} nodes: " + ", ".join(f"{n} (pid {p})" for n, p in graph.pids().items()), flush=True)
    while not stop.wait(0.5):
        dead = graph.dead()
        if dead:
            print(f"node(s) exited: {dead}; stopping the graph", file=sys.stderr)
            break
    graph.stop()
    return 0 if not graph.dead() or stop.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
