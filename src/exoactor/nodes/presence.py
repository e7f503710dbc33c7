"""Every node of a process stays in the graph's node list (``ros2 node list``, ``get_node_names()``).

Node names do not travel with DDS discovery: each process publishes one message with all of its
nodes (``ros_discovery_info``, rmw_dds_common) when its entities change, and peers keep the latest.
When peers stop hearing a process for the DDS participant lease (Fast DDS: 20 s; a process that
is starved of CPU or stopped), they drop it. Its topics come back by themselves as soon as it is
heard again, but its node names do not: the message is not sent again until the process changes
its entities, so the node stays missing for the rest of its life (measured with Fast DDS: a
process stopped for 25 s was still missing 60 s after it resumed, its /rosout publisher listed
with node ``_NODE_NAME_UNKNOWN_``; and a listener that joins late may wait seconds for a busy
process's entry). :class:`GraphPresence` republishes the entry (it creates and destroys a hidden
publisher, which makes the middleware send it again) every ``period_s``, and within a second when
this process sees a peer whose names are missing: after a lapse both sides see that.
"""
from __future__ import annotations

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_msgs.msg import Empty

UNKNOWN_NODE = "_NODE_NAME_UNKNOWN_"
"""What rmw reports as the node of an endpoint whose process's node list it lacks."""

REFRESH_TOPIC = "_exoactor/graph_presence"
"""Hidden topic (a leading underscore) of the short-lived publisher that triggers the republication."""


class GraphPresence:
    """Keeps ``node``'s process in its peers' node lists (one timer on ``node``)."""

    def __init__(self, node: Node, period_s: float = 5.0, check_s: float = 1.0):
        self.node = node
        self.refreshes = 0
        self._every = max(1, round(period_s / check_s))
        self._ticks = self._last = 0
        self._unknown_before = self._early_used = False
        node.create_timer(check_s, self._tick, callback_group=MutuallyExclusiveCallbackGroup())

    def peers_unknown(self) -> bool:
        """Whether some node's /rosout publisher is listed without its node (its process's entry is missing)."""
        return any(i.node_name == UNKNOWN_NODE for i in self.node.get_publishers_info_by_topic("/rosout"))

    def refresh(self) -> None:
        """Make the middleware republish this process's nodes to every peer."""
        self.node.destroy_publisher(self.node.create_publisher(Empty, REFRESH_TOPIC, 1))
        self.refreshes += 1

    def _tick(self) -> None:
        self._ticks += 1
        try:
            unknown = self.peers_unknown()
            # Early (at most once a period): unknown twice in a row, as a new peer's topics may be seen a
            # moment before its names.
            early = unknown and self._unknown_before and not self._early_used
            if early or self._ticks - self._last >= self._every:
                self.refresh()
                self._last, self._early_used = self._ticks, early
            self._unknown_before = unknown
        except Exception as e:  # noqa: BLE001 - best effort: never take the node down
            if self.node.context.ok():
                self.node.get_logger().warning(f"graph presence: {type(e).__name__}: {e}", throttle_duration_sec=60.0)
