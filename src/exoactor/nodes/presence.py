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
publisher, which makes the middleware send it again) now and then and whenever the graph says a
peer may lack it.
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
    """Keeps ``node``'s process in its peers' node lists (one timer on ``node``).

    Every ``check_s`` it looks at the /rosout publishers it knows (every node has one) and
    republishes its entry: every ``period_s``; a check after a peer appeared or came back (its
    readers are matched by then; the middleware does not resend the entry to a returning peer);
    and when a peer is listed without its node on two checks in a row (after a lapse both sides
    see each other that way), at most once a period.
    """

    def __init__(self, node: Node, period_s: float = 5.0, check_s: float = 1.0):
        self.node = node
        self.refreshes = 0
        self._every = max(1, round(period_s / check_s))
        self._ticks = self._last = 0
        self._unknown_before = self._early_used = self._peer_joined = False
        self._peers: set[tuple[int, ...]] | None = None
        node.create_timer(check_s, self.check, callback_group=MutuallyExclusiveCallbackGroup())

    def refresh(self) -> None:
        """Make the middleware republish this process's nodes to every peer."""
        self.node.destroy_publisher(self.node.create_publisher(Empty, REFRESH_TOPIC, 1))
        self.refreshes += 1
        self.node.get_logger().debug(f"graph presence: node list republished ({self.refreshes})")

    def check(self) -> None:
        """One check (the timer calls it every ``check_s``; a process without an executor calls it itself)."""
        self._ticks += 1
        try:
            rosout = self.node.get_publishers_info_by_topic("/rosout")
            unknown = any(i.node_name == UNKNOWN_NODE for i in rosout)
            peers = {tuple(i.endpoint_gid) for i in rosout}
            joined, self._peer_joined = self._peer_joined, self._peers is not None and bool(peers - self._peers)
            self._peers = peers
            early = unknown and self._unknown_before and not self._early_used
            if joined or early or self._ticks - self._last >= self._every:
                self.refresh()
                self._last, self._early_used = self._ticks, early
            self._unknown_before = unknown
        except Exception as e:  # noqa: BLE001 - best effort: never take the node down
            if self.node.context.ok():
                self.node.get_logger().warning(f"graph presence: {type(e).__name__}: {e}", throttle_duration_sec=60.0)
