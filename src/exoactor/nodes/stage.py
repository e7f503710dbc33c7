"""StageServer: the action-server boilerplate shared by every pipeline stage node.

At most ``max_concurrent`` goals run at once; up to ``max_queued`` more are accepted and wait
their turn (the video stage generates several steps at once for remote backends; the others run
one goal at a time and reject a second). Cancel requests are visible to the work function through
``cancel.is_set()`` (also while a goal waits in the queue). A user-facing error ends the goal
ABORTED with its message; a :class:`exoactor.remote.RemoteError` also sets the result's
``error_reason``; an unexpected exception is logged with its traceback and reported as an
internal error; the node keeps serving either way. Results with a ``remote_stats_json`` field
get the backend's call statistics before and after the goal (``stats()`` of the backend).
"""
from __future__ import annotations

import json
import os
import threading
import traceback
from pathlib import Path
from typing import Callable

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from exoactor.episode import DEFAULT_EPISODE_ROOT, confine
from exoactor.nodes.params import ConfigError, declare
from exoactor.progress import Canceled
from exoactor.realtime import lower_process_priority
from exoactor.remote.errors import RemoteError


def declare_episode_root(node: Node) -> Path:
    """The ``episode_root`` parameter: every path in a stage goal must lie inside it."""
    root = declare(node, "episode_root", DEFAULT_EPISODE_ROOT,
                   "paths in goals (episode folder, videos, images) must lie inside this folder; others are refused")
    return Path(os.path.expanduser(root))


def declare_niceness(node: Node, default: int = 10) -> str:
    """The ``nice`` parameter of a batch stage (decoding, rendering, estimation): applied to the
    whole process at once, so that on a small machine it yields the CPU to the control loop and the
    robot (or simulator). Returns what took effect, for the start-up log."""
    n = declare(node, "nice", default, "nice value (0-19) of this node's process: its batch work yields the CPU "
                "to the control loop and the simulator; 0 = normal priority")
    if not 0 <= n <= 19:
        raise ConfigError(f"parameter 'nice' must be 0-19, got {n}")
    return lower_process_priority(n)


def goal_path(root: Path, path: str, what: str, optional: bool = False) -> Path | None:
    """A goal's path confined to the episode root ("" -> None when ``optional``)."""
    if optional and not path:
        return None
    return confine(path, root, what)


def frame_progress(feedback: Callable, feedback_type) -> Callable[[int, int, str], None]:
    """A ProgressCallback publishing ``feedback_type(progress, frames_done, frames_total, detail)``."""

    def progress(done: int, total: int, detail: str) -> None:
        feedback(feedback_type(progress=done / max(total, 1), frames_done=done, frames_total=total, detail=detail))

    return progress


class CancelFlag:
    """``is_set()`` view of a goal's cancel request (what core code polls); also set while the node
    shuts down, so that no goal keeps the process from stopping."""

    def __init__(self, goal_handle, context):
        self._gh = goal_handle
        self._context = context

    def is_set(self) -> bool:
        return bool(self._gh.is_cancel_requested) or not self._context.ok()


class StageServer:
    """``work(goal, publish_feedback, cancel, result) -> None`` fills ``result`` (success, message...)."""

    def __init__(self, node: Node, action_type, name: str, work: Callable, user_errors: tuple[type[BaseException], ...],
                 cancel_errors: tuple[type[BaseException], ...] = (), max_concurrent: int = 1, max_queued: int = 0,
                 stats: Callable[[], dict] | None = None):
        self.node = node
        self.action_type = action_type
        self.work = work
        self.user_errors = (RemoteError, *user_errors)
        self.cancel_errors = (Canceled, *cancel_errors)
        self.max_concurrent = max(1, int(max_concurrent))
        self.max_queued = max(0, int(max_queued))
        self.stats = stats
        self._name = node.get_name()  # usable while the node is being destroyed (shutdown mid-goal)
        self._slots = threading.Semaphore(self.max_concurrent)
        self._count_lock = threading.Lock()
        self._accepted = 0
        self.server = ActionServer(node, action_type, name, execute_callback=self._execute,
                                   goal_callback=self._on_goal, cancel_callback=lambda _gh: CancelResponse.ACCEPT,
                                   callback_group=ReentrantCallbackGroup())

    @property
    def executor_threads(self) -> int:
        """Executor threads this server needs (each running or queued goal holds one)."""
        return self.max_concurrent + self.max_queued + 2

    def _on_goal(self, _goal) -> GoalResponse:
        with self._count_lock:
            if self._accepted >= self.max_concurrent + self.max_queued:
                self.node.get_logger().warning(f"rejecting a goal: {self._accepted} running or queued "
                                            f"(at most {self.max_concurrent} + {self.max_queued})")
                return GoalResponse.REJECT
            self._accepted += 1
        return GoalResponse.ACCEPT

    def _execute(self, gh):
        result = self.action_type.Result()
        cancel = CancelFlag(gh, self.node.context)
        before = self.stats() if self.stats else {}
        try:
            while not self._slots.acquire(timeout=0.1):
                if cancel.is_set():
                    raise Canceled("canceled while queued")
            try:
                self.work(gh.request, gh.publish_feedback, cancel, result)
            finally:
                self._slots.release()
        except self.cancel_errors as e:
            result.success, result.message = False, f"canceled: {e}"
        except self.user_errors as e:
            result.success, result.message = False, str(e)
            if isinstance(e, RemoteError) and hasattr(result, "error_reason"):
                result.error_reason = e.reason
            self.node.get_logger().error(result.message)
        except Exception as e:  # noqa: BLE001 - a bug must not kill the node: report it
            result.success, result.message = False, f"internal error in {self._name}: {type(e).__name__}: {e}"
            if self.node.context.ok():  # else: the node is shutting down under the goal (publishing failed)
                self.node.get_logger().error(f"{result.message}\n{traceback.format_exc()}")
        finally:
            with self._count_lock:
                self._accepted -= 1
        if self.stats and hasattr(result, "remote_stats_json"):
            after = self.stats()
            if after:
                result.remote_stats_json = json.dumps({"backend": after.get("backend", ""), "before": before,
                                                       "after": after})
        try:
            if gh.is_cancel_requested and not result.success:
                gh.canceled()
            elif result.success:
                gh.succeed()
            else:
                gh.abort()
        except Exception:  # the node is shutting down under the goal: nobody can be told
            if self.node.context.ok():
                raise
        return result
