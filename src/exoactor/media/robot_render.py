"""Offline re-rendering of the simulated G1 from logged joint positions, through the exocentric camera.

The scene, the ``exocentric`` camera and the render settings are the simulator's own
(:class:`exoactor.sim.g1_sim.G1Simulator` built with the episode's camera), so the frames look like
the simulator's camera stream. No physics runs: each frame sets the joints and computes the pose.
The base is the model's ``stand`` keyframe base: the simulator hangs the pelvis on its elastic band
and the tracking log records joints only.
"""
from __future__ import annotations

import numpy as np

from exoactor.g1.joints import NUM_BODY_JOINTS
from exoactor.geometry import PinholeCamera
from exoactor.media.episode_data import scaled_camera

_FREE_JOINT_QPOS = 7
"""qpos of the floating base (position, quaternion w, x, y, z) comes first; the 29 body joints follow
in Unitree motor order (checked by :func:`exoactor.g1.model.check_joint_layout`)."""


class RobotRenderer:
    """Renders the G1 at given joint positions (Unitree motor order) from the episode's camera."""

    def __init__(self, camera: PinholeCamera, width: int, height: int, model_dir: str | None = None):
        import mujoco

        from exoactor.g1.model import stand_pose_rad
        from exoactor.sim.g1_sim import ElasticBand, G1Simulator

        self._mj = mujoco
        self.sim = G1Simulator(band=ElasticBand(enabled=False), model_dir=model_dir,
                               camera=scaled_camera(camera, width, height))
        # No multisampling: a third of the cost with the software OpenGL of headless machines.
        self.sim.model.vis.quality.offsamples = 0
        self.stand_rad = stand_pose_rad(self.sim.model)
        self._base = self.sim.data.qpos[:_FREE_JOINT_QPOS].copy()
        self._last_q: np.ndarray | None = None
        self._last_img: np.ndarray | None = None

    def render(self, q_rad: np.ndarray) -> np.ndarray:
        """RGB (H, W, 3) uint8 of the robot at joint positions ``q_rad`` (29,)."""
        q = np.asarray(q_rad, dtype=np.float64)[:NUM_BODY_JOINTS]
        if self._last_img is not None and np.allclose(q, self._last_q, atol=1e-5):
            return self._last_img
        d = self.sim.data
        d.qpos[:_FREE_JOINT_QPOS] = self._base
        d.qpos[_FREE_JOINT_QPOS:_FREE_JOINT_QPOS + NUM_BODY_JOINTS] = q
        d.qvel[:] = 0.0
        self._mj.mj_forward(self.sim.model, d)
        self._last_q, self._last_img = q.copy(), self.sim.render()
        return self._last_img

    def close(self) -> None:
        self.sim.close()
