"""Unitree G1 facts: joint order, gains, LowCmd packing and CRC, command safety limits."""
