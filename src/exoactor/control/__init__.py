"""Joint-space tracking: what the robot is commanded, tick by tick."""
