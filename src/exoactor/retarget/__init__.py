"""Retargeting: HumanMotion -> G1JointTrajectory (29 joints, Unitree motor order)."""
from exoactor.retarget.trajectory import G1JointTrajectory, RetargetingError

RETARGET_BACKENDS = {
    "mink": "exoactor.retarget.mink_retargeter:MinkRetargeter",
}
"""Registry: backend name -> "module:class" with ``retarget(motion, progress, cancel)``."""

__all__ = ["G1JointTrajectory", "RetargetingError", "RETARGET_BACKENDS"]
