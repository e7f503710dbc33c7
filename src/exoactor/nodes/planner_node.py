"""task_planner: serves ``/exoactor/plan_task`` (exoactor/srv/PlanTask)."""
from __future__ import annotations

from rclpy.node import Node

from exoactor.nodes.common import declare, spin_node
from exoactor.nodes.conversions import step_to_msg
from exoactor.planning import PLANNER_BACKENDS, PlanningError
from exoactor.registry import load_backend
from exoactor.srv import PlanTask


class PlannerNode(Node):
    def __init__(self):
        super().__init__("task_planner")
        backend = declare(self, "backend", "rules", f"planner backend: {', '.join(PLANNER_BACKENDS)}")
        self.planner = load_backend(PLANNER_BACKENDS, backend, "planner")
        self.create_service(PlanTask, "exoactor/plan_task", self._plan)
        self.get_logger().info(f"task planner ready (backend {self.planner.name})")

    def _plan(self, req, res):
        res.backend = self.planner.name
        try:
            steps = self.planner.plan(req.instruction)
        except PlanningError as e:
            res.success, res.message = False, str(e)
            self.get_logger().warn(f"cannot plan {req.instruction!r}: {e}")
            return res
        res.success = True
        res.steps = [step_to_msg(s) for s in steps]
        res.message = " -> ".join(f"{s.action}{'(' + s.side + ')' if s.side else ''}" for s in steps)
        self.get_logger().info(f"planned {req.instruction!r}: {res.message}")
        return res


def main(args=None) -> None:
    spin_node(PlannerNode, args, threads=1)


if __name__ == "__main__":
    main()
