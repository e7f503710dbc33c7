"""Transitional re-export (being split by purpose): import from the modules named below instead."""
from exoactor.nodes.calibration_msgs import camera_from_msgs, camera_info_msg, camera_pose_msg, pose_from_msg, pose_msg
from exoactor.nodes.images import cv_bridge, image_to_msg, msg_to_image
from exoactor.nodes.params import ConfigError, declare, declare_backend
from exoactor.nodes.qos import LATCHED_QOS, SENSOR_QOS
from exoactor.nodes.spin import spin_node, wait_for

__all__ = ["camera_from_msgs", "camera_info_msg", "camera_pose_msg", "pose_from_msg", "pose_msg", "cv_bridge",
           "image_to_msg", "msg_to_image", "ConfigError", "declare", "declare_backend", "LATCHED_QOS", "SENSOR_QOS",
           "spin_node", "wait_for"]
