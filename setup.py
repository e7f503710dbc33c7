"""`pip install -e .` gives the ROS-free core library (exoactor.*, minus the rclpy nodes).

The ROS 2 package (interfaces, nodes, launch files) is built with colcon from package.xml /
CMakeLists.txt; see README.md.
"""
from setuptools import find_packages, setup

setup(
    name="exoactor",
    version="0.1.0",
    description="ExoActor core: imagine a task as a human video, estimate the motion, drive a Unitree G1",
    license="Apache-2.0",
    package_dir={"": "src"},
    packages=find_packages("src", exclude=["exoactor.nodes", "exoactor.nodes.*"]),
    python_requires=">=3.10",
    install_requires=["numpy", "pyyaml", "opencv-python-headless"],
    extras_require={
        "sim": ["mujoco>=3.2", "mujoco-menagerie"],
        "retarget": ["mujoco>=3.2", "mujoco-menagerie", "mink", "qpsolvers[daqp]"],
        "vision": ["mediapipe==0.10.21"],
        "smpl": ["torch", "smplx"],  # GVHMR / GENMO adapters (SMPL-family results)
        "synthetic": ["torch", "anny", "pyrender", "trimesh", "PyOpenGL>=3.1.7"],
        "test": ["pytest", "hypothesis"],
    },
    entry_points={"console_scripts": ["exoactor-launch=exoactor.launcher:main"]},
)
