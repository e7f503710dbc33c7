"""embodiment_transfer: serves ``/exoactor/transfer_embodiment`` (robot image -> human reference image)."""
from __future__ import annotations

from rclpy.node import Node

from exoactor.action import TransferEmbodiment
from exoactor.embodiment import EMBODIMENT_BACKENDS
from exoactor.embodiment.base import EmbodimentTransferError
from exoactor.nodes.images import image_to_msg, msg_to_image
from exoactor.nodes.params import declare, declare_backend
from exoactor.nodes.spin import spin_node
from exoactor.nodes.stage import StageServer, declare_episode_root, goal_path
from exoactor.video.io import write_image_rgb


class EmbodimentNode(Node):
    def __init__(self):
        super().__init__("embodiment_transfer")
        backend = declare(self, "backend", "passthrough", f"backend: {', '.join(EMBODIMENT_BACKENDS)}")
        self.backend = declare_backend(self, EMBODIMENT_BACKENDS, "embodiment transfer", backend)
        self.episode_root = declare_episode_root(self)
        StageServer(self, TransferEmbodiment, "exoactor/transfer_embodiment", self._work,
                    user_errors=(EmbodimentTransferError, ValueError, OSError), stats=self.backend.stats)
        note = "" if self.backend.paints_human else " - paints no human: the reference image is the robot image"
        self.get_logger().info(f"embodiment transfer ready (backend {self.backend.name}{note})")

    def _work(self, goal, feedback, cancel, result) -> None:
        episode_dir = goal_path(self.episode_root, goal.episode_dir, "episode_dir", optional=True)
        robot = msg_to_image(goal.robot_image)
        result.backend = self.backend.name

        def progress(done: int, total: int, detail: str) -> None:
            feedback(TransferEmbodiment.Feedback(progress=done / max(total, 1),
                                                 detail=f"{self.backend.name}: {detail}"))

        progress(0, 1, "transferring")
        human = self.backend.transfer(robot, progress=progress, cancel=cancel)
        result.human_image = image_to_msg(human, goal.robot_image.header.stamp, goal.robot_image.header.frame_id)
        if episode_dir is not None:
            result.image_path = str(write_image_rgb(episode_dir / "reference.png", human))
        result.success = True
        result.message = (f"{self.backend.name}: reference image is the robot image (no human painted)"
                          if not self.backend.paints_human else f"{self.backend.name}: human painted")


def main(args=None) -> None:
    spin_node(EmbodimentNode, args)


if __name__ == "__main__":
    main()
