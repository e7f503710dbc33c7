"""A MuJoCo Unitree G1 that obeys LowCmd like the real robot (motor PD law), ROS-free."""
