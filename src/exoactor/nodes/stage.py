"""StageServer: the action-server boilerplate shared by every pipeline stage node.

One goal at a time (a second is rejected while one runs); cancel requests are visible to the work
function through ``cancel.is_set()``; a user-facing error ends the goal ABORTED with its
message, an unexpected exception is logged with its traceback and reported as an internal
error; the node keeps serving either way.
"""
from __future__ import annotations

import threading
import traceback
from typing import Callable

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node


class CancelFlag:
    """``is_set()`` view of a goal's cancel request (what core code polls)."""

    def __init__(self, goal_handle):
        self._gh = goal_handle

    def is_set(self) -> bool:
        return bool(self._gh.is_cancel_requested)


class StageServer:
    """``work(goal, publish_feedback, cancel, result) -> None`` fills ``result`` (success, message...)."""

    def __init__(self, node: Node, action_type, name: str, work: Callable, user_errors: tuple[type[BaseException], ...],
                 cancel_errors: tuple[type[BaseException], ...] = ()):
        self.node = node
        self.action_type = action_type
        self.work = work
        self.user_errors = user_errors
        self.cancel_errors = cancel_errors
        self._busy = threading.Lock()
        self.server = ActionServer(node, action_type, name, execute_callback=self._execute,
                                   goal_callback=self._on_goal, cancel_callback=lambda _gh: CancelResponse.ACCEPT,
                                   callback_group=ReentrantCallbackGroup())

    def _on_goal(self, _goal) -> GoalResponse:
        if self._busy.locked():
            self.node.get_logger().warn("rejecting a goal: another one is running")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute(self, gh):
        result = self.action_type.Result()
        if not self._busy.acquire(blocking=False):
            result.success, result.message = False, "busy with another goal"
            gh.abort()
            return result
        cancel = CancelFlag(gh)
        try:
            self.work(gh.request, gh.publish_feedback, cancel, result)
        except self.cancel_errors as e:
            result.success, result.message = False, f"canceled: {e}"
        except self.user_errors as e:
            result.success, result.message = False, str(e)
            self.node.get_logger().error(result.message)
        except Exception as e:  # noqa: BLE001 - a bug must not kill the node: report it
            result.success, result.message = False, f"internal error in {self.node.get_name()}: {type(e).__name__}: {e}"
            self.node.get_logger().error(f"{result.message}\n{traceback.format_exc()}")
        finally:
            self._busy.release()
        if cancel.is_set() and not result.success:
            gh.canceled()
        elif result.success:
            gh.succeed()
        else:
            gh.abort()
        return result
