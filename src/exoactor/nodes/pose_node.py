"""pose_estimator: serves ``/exoactor/estimate_motion`` (video -> world-grounded HumanMotion).

Publishes each estimated clip on ``/exoactor/human_motion`` and replays its skeleton as
``visualization_msgs/MarkerArray`` on ``/exoactor/human_skeleton`` (frame ``world``) for rviz2.
"""
from __future__ import annotations

import functools

from geometry_msgs.msg import Point
from rclpy.node import Node
from visualization_msgs.msg import Marker, MarkerArray

from exoactor.action import EstimateMotion
from exoactor.media.overlay import write_overlay_video
from exoactor.motion import ESTIMATOR_BACKENDS, HumanMotion, MotionEstimationError
from exoactor.motion.estimator import camera_for_video, input_video_info
from exoactor.msg import HumanMotion as HumanMotionMsg
from exoactor.nodes.calibration_msgs import camera_from_msgs
from exoactor.nodes.conversions import WORLD_FRAME, motion_to_msg
from exoactor.nodes.params import declare, declare_backend
from exoactor.nodes.playback import Playback
from exoactor.nodes.qos import LATCHED_QOS
from exoactor.nodes.spin import spin_node
from exoactor.nodes.stage import StageServer, declare_episode_root, declare_niceness, frame_progress, goal_path
from exoactor.progress import Canceled
from exoactor.skeleton import HAND_BONES, HAND_SIDES, HUMAN_BONES, KP


def skeleton_markers(motion: HumanMotion, t: int, stamp, frame_id: str = WORLD_FRAME) -> MarkerArray:
    """Bones (LINE_LIST) and joints (SPHERE_LIST) of frame t; with hands, each detected hand's
    bones and points too (namespace human_hands: ids 0/1 left bones/points, 2/3 right; a hand not
    detected in this frame is deleted)."""
    kp = motion.keypoints_world_m[t]
    lines, dots = Marker(), Marker()
    for i, (mk, typ) in enumerate(((lines, Marker.LINE_LIST), (dots, Marker.SPHERE_LIST))):
        mk.header.frame_id, mk.header.stamp = frame_id, stamp
        mk.ns, mk.id, mk.type, mk.action = "human", i, typ, Marker.ADD
        mk.pose.orientation.w = 1.0
        mk.scale.x = mk.scale.y = mk.scale.z = 0.02 if typ == Marker.LINE_LIST else 0.04
        mk.color.r, mk.color.g, mk.color.b, mk.color.a = (0.1, 0.8, 0.3, 1.0) if i == 0 else (1.0, 0.5, 0.1, 1.0)
    for a, b in HUMAN_BONES:
        lines.points += [Point(x=float(kp[KP[a]][0]), y=float(kp[KP[a]][1]), z=float(kp[KP[a]][2])),
                         Point(x=float(kp[KP[b]][0]), y=float(kp[KP[b]][1]), z=float(kp[KP[b]][2]))]
    dots.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in kp]
    markers = [lines, dots]
    if motion.has_hands:
        for k, side in enumerate(HAND_SIDES):
            pts = motion.hand_keypoints_world_m[t, k]
            seen = motion.hand_confidence[t, k] > 0
            for i, typ in enumerate((Marker.LINE_LIST, Marker.SPHERE_LIST)):
                mk = Marker()
                mk.header.frame_id, mk.header.stamp = frame_id, stamp
                mk.ns, mk.id, mk.type = "human_hands", 2 * k + i, typ
                mk.action = Marker.ADD if seen else Marker.DELETE
                mk.pose.orientation.w = 1.0
                mk.scale.x = mk.scale.y = mk.scale.z = 0.005 if typ == Marker.LINE_LIST else 0.01
                mk.color.r, mk.color.g, mk.color.b, mk.color.a = ((0.25, 0.6, 1.0, 1.0) if side == "left"
                                                                  else (1.0, 0.35, 0.25, 1.0))
                if seen:
                    ends = [pts[j] for a, b in HAND_BONES for j in (a, b)] if typ == Marker.LINE_LIST else pts
                    mk.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in ends]
                markers.append(mk)
    return MarkerArray(markers=markers)


class PoseNode(Node):
    def __init__(self):
        super().__init__("pose_estimator")
        p = functools.partial(declare, self)
        priority = declare_niceness(self)
        backend = p("backend", "mediapipe", f"estimator backend: {', '.join(ESTIMATOR_BACKENDS)}")
        # the backend's own options are <backend>.<key> parameters (its PARAMETERS); these apply to all
        self.estimator = declare_backend(
            self, ESTIMATOR_BACKENDS, "motion estimator", backend,
            smooth_sigma_frames=p("smooth_sigma_frames", 1.5,
                                  "zero-lag Gaussian smoothing of keypoints (frames); 0 = off"),
            min_detected_fraction=p("min_detected_fraction", 0.5,
                                    "fail when a person is found in fewer frames than this"),
            fit=p("fit", True, "fit one skeleton (constant bone lengths, planted feet, smooth) to the "
                              "whole clip; false = per-frame keypoints"))
        self.overlay = p("overlay_video", True, "write segment_XX_overlay.mp4 (the estimated body and hands drawn "
                         "on the generated clip, full resolution) into the episode")
        self.pub_motion = self.create_publisher(HumanMotionMsg, "exoactor/human_motion", LATCHED_QOS)
        self.pub_skeleton = self.create_publisher(MarkerArray, "exoactor/human_skeleton", 2)
        self.playback = Playback()
        self.episode_root = declare_episode_root(self)
        StageServer(self, EstimateMotion, "exoactor/estimate_motion", self._work,
                    user_errors=(MotionEstimationError, ValueError, OSError))
        self.get_logger().info(f"pose estimator ready (backend {self.estimator.name}, {priority})")

    def _work(self, goal, feedback, cancel, result) -> None:
        video_path = goal_path(self.episode_root, goal.video_path, "video_path")
        episode_dir = goal_path(self.episode_root, goal.episode_dir, "episode_dir", optional=True)
        camera = camera_from_msgs(goal.camera_info, goal.camera_pose_world)
        motion = self.estimator.estimate(video_path, camera, frame_progress(feedback, EstimateMotion.Feedback), cancel)
        hands_note = ""
        if motion.has_hands:
            seen = (motion.hand_confidence > 0).mean(0)
            hands_note = f", hands seen in {seen[0]:.0%} (left) / {seen[1]:.0%} (right) of the frames"
        if episode_dir is not None:
            result.motion_path = str(motion.save(episode_dir / f"motion_{goal.segment_index:02d}.npz"))
            if self.overlay:
                self._write_overlay(video_path, motion, camera, episode_dir / f"segment_{goal.segment_index:02d}"
                                    "_overlay.mp4", cancel)
        stamp = self.get_clock().now().to_msg()
        result.motion = motion_to_msg(motion, stamp)
        result.backend = self.estimator.name
        flagged = int((motion.frame_flags != 0).sum())
        result.message = (f"{motion.num_frames} frames, height {motion.height_m:.2f} m"
                          + (f", {flagged} frame(s) without a detection filled in" if flagged else "") + hands_note)
        result.success = True
        self.pub_motion.publish(result.motion)
        self.playback.play(range(motion.num_frames), motion.fps,
                           lambda t: self.pub_skeleton.publish(
                               skeleton_markers(motion, t, self.get_clock().now().to_msg())))

    def _write_overlay(self, video_path, motion, camera, out, cancel) -> None:
        """The overlay is a view, not a result: a failure is logged and the goal still succeeds."""
        try:
            cam = camera_for_video(camera, *input_video_info(video_path)[2:])
            write_overlay_video(video_path, motion, cam, out, cancel)
        except Canceled:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of the drawing is the same warning
            self.get_logger().warning(f"could not write {out.name}: {type(e).__name__}: {e}")

    def close(self) -> None:
        self.playback.stop()


def main(args=None) -> None:
    spin_node(PoseNode, args)


if __name__ == "__main__":
    main()
