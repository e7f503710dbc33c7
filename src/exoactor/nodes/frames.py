"""TF without tf2_ros: TFMessage builders for ``/tf`` and ``/tf_static`` (frames per REP 103/105).

Poses come in as (position m, quaternion w, x, y, z) and leave in geometry_msgs' (x, y, z, w)
fields. ``/tf_static`` takes :data:`exoactor.nodes.qos.LATCHED_QOS` (tf2_ros' static QoS:
reliable, transient local, depth 1): each publisher's latest message is what late joiners get,
so a static publisher always sends all of its transforms in one message.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import TransformStamped
from tf2_msgs.msg import TFMessage

Transform = tuple[str, str, np.ndarray, np.ndarray]
"""(parent frame, child frame, child origin in parent (m), child orientation in parent (w, x, y, z))."""


def transform_msg(stamp: TimeMsg, parent: str, child: str, pos_m, quat_wxyz) -> TransformStamped:
    tf = TransformStamped()
    tf.header.stamp = stamp
    tf.header.frame_id = parent
    tf.child_frame_id = child
    t, r = tf.transform.translation, tf.transform.rotation
    t.x, t.y, t.z = (float(v) for v in pos_m)
    r.w, r.x, r.y, r.z = (float(v) for v in quat_wxyz)
    return tf


def tf_message(stamp: TimeMsg, transforms: Iterable[Transform]) -> TFMessage:
    return TFMessage(transforms=[transform_msg(stamp, *t) for t in transforms])


class TransformStream:
    """One TFMessage for a fixed list of (parent, child) frames, refilled for every publish: at 50 Hz
    for 30 links, building new messages costs the publishing thread ~10x more than refilling."""

    def __init__(self, frames: list[tuple[str, str]]):
        self.msg = tf_message(TimeMsg(), [(p, c, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)) for p, c in frames])

    def fill(self, stamp: TimeMsg, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> TFMessage:
        """The message with positions (n, 3) and quaternions (n, 4) (w, x, y, z), in ``frames`` order."""
        for tf, p, q in zip(self.msg.transforms, np.asarray(pos_m).tolist(), np.asarray(quat_wxyz).tolist()):
            tf.header.stamp = stamp
            t, r = tf.transform.translation, tf.transform.rotation
            t.x, t.y, t.z = p
            r.w, r.x, r.y, r.z = q
        return self.msg
