"""Shared rclpy helpers: parameters, message conversions, waiting on futures, the main loop."""
from __future__ import annotations

import functools
import importlib
import sys
import threading
import time
from typing import Any, Callable

import numpy as np
import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Pose
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from exoactor.geometry import PinholeCamera, matrix_to_quat_wxyz, quat_wxyz_to_matrix

LATCHED_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
"""For rarely changing data late joiners need (camera pose, calibration)."""
SENSOR_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
"""Latest-only sensor streams (/lowstate at 500 Hz)."""


class ConfigError(ValueError):
    """A parameter or configuration value the node cannot work with (reported without a traceback)."""


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            item = default[0] if len(default) else None
            return [_coerce(name, v, item) if item is not None else v for v in value]
    else:
        return value
    raise ConfigError(f"parameter '{name}' must be {type(default).__name__}"
                      f"{' of ' + type(default[0]).__name__ if isinstance(default, (list, tuple)) and default else ''}, got {value!r}")


def declare(node: Node, name: str, default: Any, description: str) -> Any:
    """Declare a documented parameter and return its value (ints accepted where floats are expected)."""
    desc = ParameterDescriptor(description=description, dynamic_typing=True)
    return _coerce(name, node.declare_parameter(name, default, desc).value, default)


def declare_backend(node: Node, registry: dict[str, str], kind: str, name: str, **extra: Any):
    """Instantiate backend ``name``, declaring its ``PARAMETERS`` as ``<name>.<key>`` node parameters."""
    from exoactor.registry import backend_class, backend_parameters  # noqa: PLC0415

    cls = backend_class(registry, name, kind)
    values = {key: declare(node, f"{name}.{key}", default, desc) for key, (default, desc) in backend_parameters(cls).items()}
    return cls(**values, **extra)


# ---- images ------------------------------------------------------------------------------------
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
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
    if msg.encoding not in channels:
        raise ValueError(f"unsupported image encoding {msg.encoding!r} (use rgb8/bgr8/rgba8/bgra8/mono8)")
    c = channels[msg.encoding]
    if msg.height == 0 or msg.width == 0:
        raise ValueError("empty image")
    if len(msg.data) < msg.step * msg.height or msg.step < msg.width * c:
        raise ValueError("image data shorter than height * step")
    bridge = cv_bridge()
    if bridge is not None:
        return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    arr = buf[: msg.step * msg.height].reshape(msg.height, msg.step)[:, : msg.width * c].reshape(msg.height, msg.width, c)
    if msg.encoding == "mono8":
        return np.repeat(arr, 3, axis=2)
    if msg.encoding.startswith("bgr"):
        arr = arr[..., 2::-1]
    return np.ascontiguousarray(arr[..., :3])


# ---- camera calibration --------------------------------------------------------------------------
def camera_info_msg(cam: PinholeCamera, stamp: TimeMsg, frame_id: str) -> CameraInfo:
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = cam.width, cam.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [cam.fx, 0.0, cam.cx, 0.0, cam.fy, cam.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [cam.fx, 0.0, cam.cx, 0.0, 0.0, cam.fy, cam.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def pose_msg(pos: np.ndarray, quat_wxyz: np.ndarray) -> Pose:
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in pos)
    p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z = (float(v) for v in quat_wxyz)
    return p


def pose_from_msg(p: Pose) -> tuple[np.ndarray, np.ndarray]:
    """(position (3,), quaternion (w, x, y, z))."""
    return (np.array([p.position.x, p.position.y, p.position.z]),
            np.array([p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z]))


def camera_from_msgs(info: CameraInfo, pose_world: Pose) -> PinholeCamera:
    """PinholeCamera from CameraInfo (intrinsics) and the optical frame's pose in the world."""
    if info.width == 0 or info.height == 0 or info.k[0] <= 0 or info.k[4] <= 0:
        raise ValueError("camera_info has no valid intrinsics")
    pos, q = pose_from_msg(pose_world)
    if np.linalg.norm(q) < 1e-6:
        raise ValueError("camera pose has a zero quaternion")
    return PinholeCamera(info.width, info.height, info.k[0], info.k[4], info.k[2], info.k[5], pos, quat_wxyz_to_matrix(q))


def camera_pose_msg(cam: PinholeCamera) -> Pose:
    return pose_msg(cam.pos_world_m, matrix_to_quat_wxyz(cam.rot_world_from_optical))


# ---- time and futures ----------------------------------------------------------------------------
def wait_for(future, timeout_s: float, should_stop: Callable[[], bool] = lambda: False, poll_s: float = 0.05):
    """Block (in an executor thread) until ``future`` is done; None on timeout or stop."""
    deadline = time.monotonic() + timeout_s
    event = threading.Event()
    future.add_done_callback(lambda _f: event.set())
    while not event.wait(poll_s):
        if should_stop() or time.monotonic() > deadline:
            return None
    return future.result()


def spin_node(node_factory: Callable[[], Node], args=None, threads: int = 4) -> None:
    """Create the node and spin it (threads > 1: multi-threaded executor, for nodes whose callbacks
    block, like action servers; 1: the cheaper single-threaded one); shut down cleanly on Ctrl-C."""
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = node_factory()
        except ConfigError as e:
            print(f"configuration error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        except Exception as e:  # noqa: BLE001 - start-up failures (missing model, unknown backend...) in one line
            from exoactor.g1.model import RobotModelError  # noqa: PLC0415
            from exoactor.registry import UnknownBackendError  # noqa: PLC0415
            if isinstance(e, (RobotModelError, UnknownBackendError, FileNotFoundError, RuntimeError)):
                print(f"cannot start: {e}", file=sys.stderr)
                raise SystemExit(1) from None
            raise
        threads = int(getattr(node, "executor_threads", threads))  # a node may need more (queued goals)
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
