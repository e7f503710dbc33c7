"""Start the ExoActor graph without ``ros2 launch``: one process per node, same config files.

    python -m exoactor.launcher [sim:=true] [video_backend:=synthetic] [--params-file F] [--log-dir D]

Reads config/pipeline.yaml (nodes, arguments) and config/params.yaml exactly as
launch/pipeline.launch.py does. Ctrl-C (SIGINT) or SIGTERM stops every node (each gets the same
signal, then SIGTERM, then SIGKILL if it is still running; exit status 0 when all stopped in time).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from exoactor.ros_domain import domain_id_problem


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


LAUNCHER_PID_ENV = "EXOACTOR_LAUNCHER_PID"
"""Set for every node the launcher starts: a node ends (SIGTERM) when its launcher dies, even by SIGKILL."""


GROUP_REAP_TIMEOUT_S = 5.0
"""How long :meth:`Graph.stop` waits, after killing what the nodes left behind, for it to be gone."""


class Graph:
    """Running node processes. Output goes to ``log_dir/<node>.log`` or, without one, to stdout.

    Each node runs in its own session and process group: a terminal's Ctrl-C reaches only the
    launcher, which stops the nodes once (:meth:`stop`), and stopping a node's group also ends any
    process it started.
    """

    def __init__(self, spec: GraphSpec, log_dir: Path | None = None, env: dict[str, str] | None = None):
        self.spec = spec
        self.log_dir = Path(log_dir) if log_dir else None
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", LAUNCHER_PID_ENV: str(os.getpid())}
        self.procs: dict[str, subprocess.Popen] = {}
        self._pumps: list[threading.Thread] = []
        self._logs = contextlib.ExitStack()

    def start(self) -> "Graph":
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for n in self.spec.nodes:
            cmd = [sys.executable, "-m", n.module, *n.argv]
            common = {"env": self.env, "stdin": subprocess.DEVNULL, "stderr": subprocess.STDOUT,
                      "start_new_session": True}
            if self.log_dir:
                log = open(self.log_dir / f"{n.name}.log", "w")  # noqa: SIM115 - open while the node runs
                out = self._logs.enter_context(log)
                self.procs[n.name] = subprocess.Popen(cmd, stdout=out, **common)
            else:
                p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1, **common)
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

    def stop(self, timeout_s: float = 10.0, first_signal: int = signal.SIGINT,
             term_timeout_s: float = 5.0) -> dict[str, str]:
        """Stop every node: ``first_signal`` (SIGINT: what Ctrl-C sends; SIGTERM when the launcher got
        one), then SIGTERM to those still running after ``timeout_s``, then SIGKILL after
        ``term_timeout_s``; whatever else is left in a node's process group is killed. Returns the
        nodes that did not stop cleanly: name -> the signal that ended them where ``first_signal`` was
        not enough, else ``"exit status N"`` for one that ended with an error (a node whose clean-up
        hung ends itself with status 1 and its threads' stacks in its log, see ``nodes/spin.py``)."""
        forced: dict[str, str] = {}
        steps = [(first_signal, timeout_s), (signal.SIGTERM, term_timeout_s), (signal.SIGKILL, 5.0)]
        for i, (sig, wait_s) in enumerate(steps):
            running = {n: p for n, p in self.procs.items() if p.poll() is None}
            if not running:
                break
            for n, p in running.items():
                _signal_group(p, sig)
                if i:
                    forced[n] = signal.Signals(sig).name
            deadline = time.monotonic() + wait_s
            for p in running.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(max(0.1, deadline - time.monotonic()))
        for p in self.procs.values():
            _signal_group(p, signal.SIGKILL)  # anything a node started and left behind
        # What was left behind (an orphan: multiprocessing's resource tracker, say) is reaped by PID 1,
        # not by us, and is still in its group until then (1.5 s under a container's init, measured):
        # the launcher returns once every group is empty, so nothing of the graph outlives it.
        deadline = time.monotonic() + GROUP_REAP_TIMEOUT_S
        while any(group_exists(p.pid) for p in self.procs.values()) and time.monotonic() < deadline:
            time.sleep(0.02)
        for n, p in self.procs.items():
            if n not in forced and p.returncode and p.returncode > 0:
                forced[n] = f"exit status {p.returncode}"
        for t in self._pumps:
            t.join(timeout=1.0)
        self._logs.close()
        return forced

    def __enter__(self) -> "Graph":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def group_exists(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a process (a zombie counts: it is not reaped yet)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    """``sig`` to the process group led by ``p`` (its session, see :class:`Graph`)."""
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):  # the group is empty (or the pid was reused)
        if p.poll() is None:
            p.send_signal(sig)


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
    if problem := domain_id_problem():
        print(f"exoactor.launcher: {problem}", file=sys.stderr)
        return 2
    try:
        graph = Graph(build_graph(parse_launch_args(a.launch_args), a.params_file), a.log_dir)
    except (ValueError, FileNotFoundError) as e:
        print(f"exoactor.launcher: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame) -> None:
        received.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)  # stays installed while stopping: a second Ctrl-C cannot cut it short
    graph.start()
    print(f"started {len(graph.procs)} nodes: " + ", ".join(f"{n} (pid {p})" for n, p in graph.pids().items()),
          flush=True)
    while not stop.wait(0.5):
        dead = graph.dead()
        if dead:
            print(f"node(s) exited: {dead}; stopping the graph", file=sys.stderr)
            break
    # The nodes get what the launcher got (SIGINT or SIGTERM; SIGHUP: SIGTERM), then SIGTERM, then SIGKILL.
    first = signal.SIGTERM if received and received[0] != signal.SIGINT else signal.SIGINT
    forced = graph.stop(first_signal=first)
    if forced:
        print(f"node(s) did not stop cleanly: {forced}", file=sys.stderr)
    return 0 if received and not forced else 1


if __name__ == "__main__":
    sys.exit(main())
