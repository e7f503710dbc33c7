"""QoS profiles shared by the nodes (and by clients that subscribe to their topics)."""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

LATCHED_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
"""For rarely changing data late joiners need (camera pose, calibration, /tf_static, /robot_description)."""
SENSOR_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
"""Latest-only sensor streams (/lowstate at 500 Hz)."""
