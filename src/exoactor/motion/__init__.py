"""Human motion: the shared representation and the estimators that produce it from video."""
from exoactor.motion.human_motion import HUMAN_KEYPOINTS, HumanMotion, MotionEstimationError

ESTIMATOR_BACKENDS = {
    "mediapipe": "exoactor.motion.mediapipe_estimator:MediaPipeEstimator",
    "gvhmr": "exoactor.motion.gvhmr_estimator:GvhmrEstimator",
    "genmo": "exoactor.motion.genmo_estimator:GenmoEstimator",
}
"""Registry: backend name -> "module:class" implementing :class:`exoactor.motion.estimator.MotionEstimator`."""

__all__ = ["HUMAN_KEYPOINTS", "HumanMotion", "MotionEstimationError", "ESTIMATOR_BACKENDS"]
