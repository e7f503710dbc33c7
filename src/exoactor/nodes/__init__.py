"""rclpy nodes: parameters, QoS and message conversion only; logic lives in the core library.

Every node runs as its own process: ``python -m exoactor.nodes.<module>`` or ``ros2 run exoactor <executable>``.
Offscreen rendering (the simulator's camera, the synthetic video backend) defaults to EGL; set here,
before any node module imports MuJoCo or PyOpenGL.
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
