"""The offline demo: start the graph, run one task with a progress bar, print the episode folder.

    python -m exoactor.nodes.demo "wave with the right hand, then walk forward 1 meter, then turn left" [--log-dir DIR]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from exoactor.launcher import Graph, build_graph
from exoactor.ros_domain import domain_id_problem


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instruction")
    ap.add_argument("--log-dir", type=Path, help="node logs (default: a temporary folder, printed)")
    ap.add_argument("--episode-root", default=os.path.expanduser("~/.exoactor/episodes"))
    ap.add_argument("--gantry", action="store_true", help="hang the robot on the simulator's band (squat, sit, "
                    "bend); by default it stands on its own, balanced and walked by Unitree's leg policy")
    a = ap.parse_args(argv)
    if problem := domain_id_problem():
        print(f"exoactor demo: {problem}", file=sys.stderr)
        return 2
    log_dir = a.log_dir or Path(tempfile.mkdtemp(prefix="exoactor-logs-"))
    graph = Graph(build_graph({"episode_root": a.episode_root, "gantry": str(a.gantry).lower()}), log_dir=log_dir)
    t0 = time.monotonic()
    graph.start()
    print(f"started {len(graph.procs)} nodes (one process each; logs in {log_dir}):")
    for name, pid in graph.pids().items():
        print(f"  {name:<22} pid {pid}")
    import rclpy  # noqa: PLC0415 - after the graph is on its way

    from exoactor.nodes.task_client import STATUS_NAMES, TaskClient, print_feedback  # noqa: PLC0415

    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM ends the demo as Ctrl-C does: cancel, stop the graph
    rclpy.init(signal_handler_options=rclpy.SignalHandlerOptions.NO)  # Ctrl-C stays a KeyboardInterrupt here
    node = rclpy.create_node("exoactor_demo")
    client = TaskClient(node)
    code = 1
    try:
        if not client.wait_for_server(180.0):
            print(f"the graph did not come up; see {log_dir} ({graph.dead() or 'no node exited'})", file=sys.stderr)
            return 1
        print(f"graph up in {time.monotonic() - t0:.1f} s; task: {a.instruction!r}")
        last = [""]

        def show(fb) -> None:
            if fb.stage != last[0] and last[0]:
                sys.stdout.write("\n")
            last[0] = fb.stage
            print_feedback(fb)

        status, result = client.run(a.instruction, show, timeout_s=1800)
        print()
        print(f"{STATUS_NAMES.get(status, status)}: {result.message}")
        print(f"episode: {result.episode_path}")
        page = Path(result.episode_path) / "index.html"
        print(f"episode page: file://{page}" if page.is_file() else
              f"episode page: not built (python -m exoactor.media {result.episode_path})")
        code = 0 if result.success else 1
    except KeyboardInterrupt:
        print("\ncanceling...")
        client.cancel()
    finally:
        client.close()
        node.destroy_node()
        rclpy.try_shutdown()
        graph.stop()
    print(f"demo wall time {time.monotonic() - t0:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
