"""ExoActor: imagine a task as a video of a human, then make a Unitree G1 do what the human did.

The subpackages other than :mod:`exoactor.nodes` are ROS-free and importable after
``pip install -e .``; heavy dependencies (MediaPipe, anny/torch, MuJoCo) are imported only by
the backends that need them. Generated ROS interfaces (``exoactor.msg``, ``exoactor.srv``,
``exoactor.action``) exist only in a colcon install.
"""

__version__ = "0.1.0"
