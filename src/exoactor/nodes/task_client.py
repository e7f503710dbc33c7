"""exoactor_task: send an instruction to /exoactor/execute_task and show progress.

    python -m exoactor.nodes.task_client "wave with the right hand, then squat"

Equivalent to ``ros2 action send_goal /exoactor/execute_task exoactor/action/ExecuteTask
"{instruction: '...'}" --feedback``. Ctrl-C cancels the goal (the robot is ramped to its hold
pose). Exit status: 0 success, 1 task failed or canceled, 2 no server.
"""
from __future__ import annotations

import argparse
import re
import sys
import threading
import time

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from exoactor.action import ExecuteTask
from exoactor.nodes.spin import ActionClient, wait_for
from exoactor.ros_domain import domain_id_problem

STATUS_NAMES = {GoalStatus.STATUS_SUCCEEDED: "SUCCEEDED", GoalStatus.STATUS_ABORTED: "ABORTED",
                GoalStatus.STATUS_CANCELED: "CANCELED", GoalStatus.STATUS_UNKNOWN: "UNKNOWN"}


class TaskClient:
    """A small action client usable from scripts and tests (spins its own executor thread)."""

    def __init__(self, node: Node):
        self.node = node
        self.client = ActionClient(node, ExecuteTask, "exoactor/execute_task")
        self._executor = MultiThreadedExecutor(num_threads=2, context=node.context)
        self._executor.add_node(node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()
        self.goal_handle = None

    def wait_for_server(self, timeout_s: float) -> bool:
        return self.client.wait_for_server(timeout_sec=timeout_s)

    def run(self, instruction: str, on_feedback=None, timeout_s: float = 1800.0, cancel_when=None):
        """Send a goal and wait; returns (status, result). ``cancel_when(feedback)`` -> True cancels."""
        canceled = threading.Event()

        def fb_cb(msg) -> None:
            if on_feedback is not None:
                on_feedback(msg.feedback)
            if cancel_when is not None and not canceled.is_set() and cancel_when(msg.feedback):
                canceled.set()
                self.cancel()

        send = self.client.send_goal_async(ExecuteTask.Goal(instruction=instruction), feedback_callback=fb_cb)
        self.goal_handle = wait_for(send, 30.0)
        if self.goal_handle is None:
            raise TimeoutError("the goal was not answered within 30 s")
        if not self.goal_handle.accepted:
            return GoalStatus.STATUS_UNKNOWN, None
        self._res_future = self.goal_handle.get_result_async()
        return self.wait_result(timeout_s)

    def wait_result(self, timeout_s: float):
        """(status, result) of the goal sent last; raises TimeoutError."""
        if wait_for(self._res_future, timeout_s) is None:
            raise TimeoutError(f"no result within {timeout_s:.0f} s")
        r = self._res_future.result()
        return r.status, r.result

    def cancel(self) -> None:
        if self.goal_handle is not None:
            self.goal_handle.cancel_goal_async()

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=1.0)


def activity_key(fb) -> str:
    """What is running (without percentages): a new line starts when it changes."""
    return re.sub(r" \d+%", "", fb.in_flight) or fb.stage


def print_feedback(fb) -> None:
    bar = "#" * int(fb.progress * 30)
    what = fb.in_flight or (f"{fb.stage} step {fb.step_index + 1}/{fb.num_steps}" if fb.num_steps else fb.stage)
    sys.stdout.write(f"\r[{bar:<30}] {fb.progress * 100:5.1f}% {fb.elapsed_s:6.1f}s {what[:70]:<70} "
                     f"{fb.detail[:50]:<50}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instruction")
    ap.add_argument("--server-timeout", type=float, default=60.0, help="seconds to wait for the action server")
    a, ros_args = ap.parse_known_args(argv)
    if problem := domain_id_problem():
        print(f"exoactor task client: {problem}", file=sys.stderr)
        return 2
    try:  # keep Ctrl-C as KeyboardInterrupt, so it cancels the goal instead of killing the client
        rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
    except ImportError:
        rclpy.init(args=ros_args)
    node = rclpy.create_node("exoactor_task_client")
    client = TaskClient(node)
    try:
        if not client.wait_for_server(a.server_timeout):
            print(f"no /exoactor/execute_task server after {a.server_timeout:.0f} s: is the graph running?",
                  file=sys.stderr)
            return 2
        last_stage = [""]

        def show(fb) -> None:
            key = activity_key(fb)
            if key != last_stage[0]:
                if last_stage[0]:
                    sys.stdout.write("\n")
                last_stage[0] = key
            print_feedback(fb)

        t0 = time.monotonic()
        try:
            status, result = client.run(a.instruction, show)
        except KeyboardInterrupt:
            print("\ncanceling (the robot is ramped to its hold pose)...")
            client.cancel()
            status, result = client.wait_result(60.0)
        print()
        if result is None:
            print("goal rejected", file=sys.stderr)
            return 1
        print(f"{STATUS_NAMES.get(status, status)} in {time.monotonic() - t0:.1f} s: {result.message}"
              + (f" [{result.error_reason}]" if result.error_reason else ""))
        if result.time_to_first_motion_s >= 0:
            print(f"robot first moved after {result.time_to_first_motion_s:.1f} s")
        print(f"episode: {result.episode_path}")
        return 0 if result.success else 1
    finally:
        client.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
