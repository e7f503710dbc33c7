"""camera: the exocentric camera of the pipeline, on ``/exoactor/camera/{image_raw,camera_info,pose}``.

Sources (parameter ``source``): ``topic`` relays an existing camera (offline: the simulator's
exocentric camera) with its calibration and pose; ``device`` (V4L index), ``video`` (file, looped)
and ``image`` (file) publish frames at ``rate_hz`` with the calibration given as parameters.

The camera's pose is also TF on ``/tf_static``: ``world`` -> the optical frame (REP 103 optical:
x right, y down, z forward; default ``exocentric_camera_optical``), the frame_id of the images and
the CameraInfo, so rviz2's Camera display draws the scene over the image. CameraInfo goes out with
every image (same stamp, as camera drivers do: rviz2 subscribes volatile) and stays latched for
late joiners. The PoseStamped topic stays for existing clients.
"""
from __future__ import annotations

import functools

import cv2
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from exoactor.nodes.calibration_msgs import camera_info_msg, camera_pose_msg, pose_from_msg
from exoactor.nodes.frames import tf_message
from exoactor.nodes.images import image_to_msg
from exoactor.nodes.params import declare, declare_look_at
from exoactor.nodes.qos import LATCHED_QOS
from exoactor.nodes.spin import spin_node
from exoactor.video.io import read_image_rgb

SOURCES = ("topic", "device", "video", "image")


def _calibration(info: CameraInfo | None) -> tuple | None:
    """What a CameraInfo says about the camera (all but the stamp)."""
    if info is None:
        return None
    return info.header.frame_id, info.width, info.height, tuple(info.k), tuple(info.d), tuple(info.p)


class CameraNode(Node):
    def __init__(self):
        super().__init__("camera")
        p = functools.partial(declare, self)
        self.source = p("source", "topic", f"frame source: one of {', '.join(SOURCES)}")
        topic = p("source_topic", "/g1_sim/exocentric/image_raw", "topic mode: image topic to relay")
        info_topic = p("source_camera_info_topic", "/g1_sim/exocentric/camera_info", "topic mode: its camera_info")
        pose_topic = p("source_pose_topic", "/g1_sim/exocentric/pose",
                       "topic mode: its optical-frame pose in the world (PoseStamped)")
        self.path = p("path", "", "video/image mode: file to read")
        self.device = p("device_index", 0, "device mode: OpenCV/V4L camera index")
        self.rate = p("rate_hz", 5.0, "device/video/image modes: publish rate (Hz)")
        self.frame_id = p("frame_id", "exocentric_camera_optical", "optical frame of the images, the camera_info and "
                          "the camera's TF (topic mode: the source camera_info's frame_id when it has one)")
        self.world_frame = p("world_frame", "world", "frame of the published camera pose and parent of its TF")
        self._calibration = declare_look_at(self, "calibration", size=False, note="non-topic modes: ")
        self.pub_image = self.create_publisher(Image, "exoactor/camera/image_raw", 1)
        self.pub_info = self.create_publisher(CameraInfo, "exoactor/camera/camera_info", LATCHED_QOS)
        self.pub_pose = self.create_publisher(PoseStamped, "exoactor/camera/pose", LATCHED_QOS)
        self.pub_tf_static = self.create_publisher(TFMessage, "/tf_static", LATCHED_QOS)
        self._info: CameraInfo | None = None
        self._pose: PoseStamped | None = None
        self._cap = None
        self._still = None
        if self.source not in SOURCES:
            raise SystemExit(f"camera: parameter 'source' must be one of {SOURCES}, got {self.source!r}")
        if self.source == "topic":
            self.create_subscription(Image, topic, self._on_source_image, 1)
            self.create_subscription(CameraInfo, info_topic, self._on_source_info, LATCHED_QOS)
            self.create_subscription(PoseStamped, pose_topic, self._on_source_pose, LATCHED_QOS)
            self.get_logger().info(f"relaying {topic} to /exoactor/camera/image_raw")
            return
        self._open()
        self.create_timer(1.0 / max(self.rate, 0.1), self._tick)

    # ---- topic mode: relay the source's images, calibration and pose ----
    def _on_source_image(self, msg: Image) -> None:
        self.pub_image.publish(msg)
        self._publish_info(msg.header.stamp)

    def _on_source_info(self, msg: CameraInfo) -> None:
        changed = _calibration(msg) != _calibration(self._info)
        self._info = msg
        if changed:
            self.pub_info.publish(msg)
            self._publish_tf()

    def _on_source_pose(self, msg: PoseStamped) -> None:
        self._pose = msg
        self.pub_pose.publish(msg)
        self._publish_tf()

    # ---- every mode ----
    def _publish_info(self, stamp) -> None:
        if self._info is not None:
            self._info.header.stamp = stamp
            self.pub_info.publish(self._info)

    def _publish_tf(self) -> None:
        """The pose as TF ``world`` -> optical frame, once both the pose and the calibration are known."""
        if self._pose is None or self._info is None:
            return
        pos, quat = pose_from_msg(self._pose.pose)
        parent, child = self._pose.header.frame_id or self.world_frame, self._info.header.frame_id or self.frame_id
        self.pub_tf_static.publish(tf_message(self._pose.header.stamp, [(parent, child, pos, quat)]))

    def _open(self) -> None:
        if self.source == "image":
            self._still = read_image_rgb(self.path)
            h, w = self._still.shape[:2]
        else:
            self._cap = cv2.VideoCapture(int(self.device) if self.source == "device" else self.path)
            if not self._cap.isOpened():
                raise SystemExit(f"camera: cannot open {self.source} {self.path or self.device}")
            w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.camera = self._calibration.camera(w, h)
        stamp = self.get_clock().now().to_msg()
        self._pose = PoseStamped()
        self._pose.header.stamp, self._pose.header.frame_id = stamp, self.world_frame
        self._pose.pose = camera_pose_msg(self.camera)
        self.pub_pose.publish(self._pose)
        self._info = camera_info_msg(self.camera, stamp, self.frame_id)
        self.pub_info.publish(self._info)
        self._publish_tf()
        self.get_logger().info(f"publishing {self.source} {self.path or self.device} ({w}x{h}) at {self.rate} Hz")

    def _tick(self) -> None:
        rgb = self._still
        if self._cap is not None:
            ok, bgr = self._cap.read()
            if not ok and self.source == "video":
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = self._cap.read()
            if not ok:
                self.get_logger().warn("camera returned no frame", throttle_duration_sec=5.0)
                return
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        stamp = self.get_clock().now().to_msg()
        self.pub_image.publish(image_to_msg(rgb, stamp, self.frame_id))
        self._publish_info(stamp)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


def main(args=None) -> None:
    spin_node(CameraNode, args, threads=1)


if __name__ == "__main__":
    main()
