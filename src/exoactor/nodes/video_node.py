"""video_generator: serves ``/exoactor/generate_video`` (one video segment per planned step).

Finished segments are replayed on ``/exoactor/video/image_raw`` for rviz2.
"""
from __future__ import annotations

import functools

from rclpy.node import Node
from sensor_msgs.msg import Image

from exoactor.action import GenerateVideo
from exoactor.nodes.calibration_msgs import camera_from_msgs
from exoactor.nodes.conversions import step_from_msg
from exoactor.nodes.images import image_to_msg
from exoactor.nodes.params import declare, declare_backend
from exoactor.nodes.playback import Playback
from exoactor.nodes.spin import spin_node
from exoactor.nodes.stage import StageServer, declare_episode_root, declare_niceness, frame_progress, goal_path
from exoactor.planning.vocabulary import PlanningError
from exoactor.video import VIDEO_BACKENDS
from exoactor.video.base import VideoGenerationError, VideoRequest
from exoactor.video.io import VideoReadError, read_video_frames


class VideoNode(Node):
    def __init__(self):
        super().__init__("video_generator")
        p = functools.partial(declare, self)
        backend = p("backend", "synthetic", f"video backend: {', '.join(VIDEO_BACKENDS)}")
        fps = p("synthetic.fps", 30.0, "synthetic backend: frames per second")
        paths = p("file.video_paths", [""], "file backend: one video file per planned step")
        self.episode_root = declare_episode_root(self)
        self.preview = p("publish_frames", True, "replay each finished segment on /exoactor/video/image_raw")
        max_queued = p("max_queued", 12, "goals accepted beyond the backend's concurrency limit; they wait their turn")
        priority = declare_niceness(self)
        extra = {"fps": fps} if backend == "synthetic" else {"video_paths": paths} if backend == "file" else {}
        self.backend = declare_backend(self, VIDEO_BACKENDS, "video", backend, **extra)
        warm = getattr(self.backend, "warm_up", None)
        if warm is not None:
            self.get_logger().info(f"loading the {backend} backend's model...")
            warm()
        self.pub = self.create_publisher(Image, "exoactor/video/image_raw", 2)
        self.playback = Playback()
        self.server = StageServer(self, GenerateVideo, "exoactor/generate_video", self._work,
                                  user_errors=(VideoGenerationError, VideoReadError, PlanningError, ValueError,
                                               OSError),
                                  max_concurrent=self.backend.max_concurrency,
                                  max_queued=max_queued, stats=self.backend.stats)
        self.executor_threads = self.server.executor_threads  # every running or queued goal holds a thread
        self.get_logger().info(f"video generator ready (backend {self.backend.name}, "
                               f"{self.backend.max_concurrency} segment(s) at once, {priority})")

    def _work(self, goal, feedback, cancel, result) -> None:
        steps = [step_from_msg(s) for s in goal.steps]
        if not steps or goal.segment_index >= len(steps):
            raise VideoGenerationError(f"segment {goal.segment_index} requested but {len(steps)} step(s) given")
        root = self.episode_root
        req = VideoRequest(goal_path(root, goal.episode_dir, "episode_dir"), steps, int(goal.segment_index),
                           goal_path(root, goal.reference_image_path, "reference_image_path", optional=True),
                           goal_path(root, goal.start_image_path, "start_image_path", optional=True),
                           camera_from_msgs(goal.camera_info, goal.camera_pose_world))
        result.backend = self.backend.name
        seg = self.backend.generate(req, frame_progress(feedback, GenerateVideo.Feedback), cancel)
        result.success, result.message = True, seg.message
        result.video_path, result.last_frame_path = str(seg.video_path), str(seg.last_frame_path)
        result.fps, result.num_frames = float(seg.fps), seg.num_frames
        result.width, result.height = seg.width, seg.height
        if self.preview:
            self.playback.play(read_video_frames(seg.video_path), seg.fps,
                               lambda rgb: self.pub.publish(
                                   image_to_msg(rgb, self.get_clock().now().to_msg(), "exocentric_camera_optical")))

    def close(self) -> None:
        self.playback.stop()


def main(args=None) -> None:
    spin_node(VideoNode, args)


if __name__ == "__main__":
    main()
