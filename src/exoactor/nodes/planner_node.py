"""task_planner: serves ``/exoactor/plan_task`` (exoactor/srv/PlanTask).

An instruction the planner cannot plan ends with ``success = false`` and the planner's reason;
a remote planner whose service fails also sets ``error_reason`` (auth, rate_limited, ...).
Instructions are logged escaped, on one line, and bounded.
"""
from __future__ import annotations

import json

from rclpy.node import Node

from exoactor.episode import one_line
from exoactor.nodes.conversions import step_to_msg
from exoactor.nodes.params import declare, declare_backend
from exoactor.nodes.spin import spin_node
from exoactor.planning import PLANNER_BACKENDS, PlanningError
from exoactor.progress import Canceled
from exoactor.remote.errors import RemoteError
from exoactor.srv import PlanTask


class PlannerNode(Node):
    def __init__(self):
        super().__init__("task_planner")
        backend = declare(self, "backend", "rules", f"planner backend: {', '.join(PLANNER_BACKENDS)}")
        self.planner = declare_backend(self, PLANNER_BACKENDS, "planner", backend)
        self.create_service(PlanTask, "exoactor/plan_task", self._plan)
        self.get_logger().info(f"task planner ready (backend {self.planner.name})")

    def _stats(self) -> dict:
        stats = getattr(self.planner, "stats", None)
        return stats() if stats else {}

    def _plan(self, req, res):
        res.backend = self.planner.name
        before = self._stats()
        try:
            steps = self.planner.plan(req.instruction)
        except PlanningError as e:
            res.success, res.message = False, str(e)
            self.get_logger().warning(f"cannot plan {one_line(req.instruction)}: {e}")
            return res
        except RemoteError as e:
            res.success, res.message, res.error_reason = False, f"the {self.planner.name} planner failed: {e}", e.reason
            self.get_logger().error(res.message)
            return res
        except Canceled as e:
            res.success, res.message = False, f"planning canceled: {e}"
            return res
        finally:
            after = self._stats()
            if after:
                res.remote_stats_json = json.dumps({"backend": after.get("backend", self.planner.name),
                                                    "before": before, "after": after})
        res.success = True
        res.steps = [step_to_msg(s) for s in steps]
        res.message = " -> ".join(f"{s.action}{'(' + s.side + ')' if s.side else ''}" for s in steps)
        self.get_logger().info(f"planned {one_line(req.instruction)}: {res.message}")
        return res


def main(args=None) -> None:
    spin_node(PlannerNode, args, threads=1)


if __name__ == "__main__":
    main()
