"""sensor_msgs/Image <-> (H, W, 3) uint8 RGB arrays: through ``cv_bridge`` where it is installed,
else the numpy conversion here (same results)."""
from __future__ import annotations

import functools
import importlib

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from sensor_msgs.msg import Image

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
"""The encodings :func:`msg_to_image` reads, with their channel counts."""


@functools.cache
def cv_bridge():
    """ROS's ``cv_bridge.CvBridge`` where it is installed (looked up once), else None: the numpy
    conversions below do the same job."""
    try:
        return importlib.import_module("cv_bridge").CvBridge()
    except ImportError:
        return None


def image_to_msg(rgb: np.ndarray, stamp: TimeMsg, frame_id: str) -> Image:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image rgb8 (through cv_bridge where installed)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    bridge = cv_bridge()
    if bridge is not None:
        msg = bridge.cv2_to_imgmsg(rgb, encoding="rgb8")
    else:
        msg = Image()
        msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
        msg.encoding = "rgb8"
        msg.is_bigendian = 0
        msg.step = msg.width * 3
        msg.data = rgb.tobytes()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def msg_to_image(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> (H, W, 3) uint8 RGB (through cv_bridge where
    installed)."""
    if msg.encoding not in CHANNELS:
        raise ValueError(f"unsupported image encoding {msg.encoding!r} (use rgb8/bgr8/rgba8/bgra8/mono8)")
    c = CHANNELS[msg.encoding]
    if msg.height == 0 or msg.width == 0:
        raise ValueError("empty image")
    if len(msg.data) < msg.step * msg.height or msg.step < msg.width * c:
        raise ValueError("image data shorter than height * step")
    bridge = cv_bridge()
    if bridge is not None:
        return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    rows = buf[: msg.step * msg.height].reshape(msg.height, msg.step)
    arr = rows[:, : msg.width * c].reshape(msg.height, msg.width, c)
    if msg.encoding == "mono8":
        return np.repeat(arr, 3, axis=2)
    if msg.encoding.startswith("bgr"):
        arr = arr[..., 2::-1]
    return np.ascontiguousarray(arr[..., :3])
