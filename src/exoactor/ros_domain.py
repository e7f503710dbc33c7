"""The ``ROS_DOMAIN_ID`` a node or the launcher is about to use, checked before the middleware sees it.

Fast DDS derives its UDP ports from the domain (7400 + 250 * domain + ...). For a domain above 232
the ports pass 65535, and creating the node's participant then ends the whole process with exit
status 1 from inside C++, with no Python exception and no message on screen. This module turns that
into one line naming the variable. Pure Python (no rclpy): the launcher and every node (spin_node) use it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

MAX_DOMAIN_ID = 232
"""The largest domain whose ports fit (ROS 2 "The ROS_DOMAIN_ID" concept page; 0-101 is the advice on
Linux, where 102-232 can collide with the kernel's ephemeral ports)."""


def domain_id_problem(env: Mapping[str, str] | None = None) -> str:
    """'' when ``ROS_DOMAIN_ID`` (in ``env``, default ``os.environ``) is unset, empty or 0-232, else why not."""
    raw = (os.environ if env is None else env).get("ROS_DOMAIN_ID", "").strip()
    if not raw:
        return ""
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_DOMAIN_ID:
        return (f"ROS_DOMAIN_ID must be an integer from 0 to {MAX_DOMAIN_ID} (0-101 advised on Linux), got {raw!r}: "
                "for a larger domain the middleware's ports do not exist")
    return ""
