"""ROS domain IDs for tests: one definition, always inside the range that maps to valid UDP ports.

Fast DDS derives its ports from the domain ID (7400 + 250 * domain + ...); for a domain above 232
the ports pass 65535 and creating a participant ends the whole process with exit status 1 from C++,
without a Python exception or a message on screen (found with a backtrace on ``exit``: a unit-test
rig that used ``180 + pid % 60`` ended pytest silently whenever ``pid % 60 >= 53``). The ROS 2 docs
advise 0-101 on Linux: those ports also stay below the kernel's ephemeral range (32768-60999)."""
import os

SAFE_DOMAIN_IDS = range(1, 102)
"""ROS 2's advice for Linux is 0-101; 0 (the default, shared with anything else running) is left out."""


def domain_id(offset: int) -> int:
    """This process's domain for the test slot ``offset``: distinct slots of one process get distinct
    domains (for offsets that differ by less than 101), different processes spread over the range."""
    return SAFE_DOMAIN_IDS[(os.getpid() + offset) % len(SAFE_DOMAIN_IDS)]
