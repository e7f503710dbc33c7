"""GENMO / GEM (NVlabs/GENMO; checkpoints nvidia/GEM-X) as a motion-estimation backend.

Its demo (YOLO -> ViTPose -> HMR2 -> GEM) writes ``smpl_params.pt`` with ``body_params_incam``
and ``body_params_global`` (y-up world), each with ``global_orient``, ``body_pose``, ``betas``,
``transl`` per frame (axis-angle). The demo has no fixed command line: set ``genmo.command`` to
yours, e.g. ``python /opt/GENMO/demo.py --video {video} --output_dir {output_dir}`` (run in the
output folder). See :mod:`exoactor.motion.external`.
"""
from __future__ import annotations

from exoactor.motion.external import ExternalEstimator


class GenmoEstimator(ExternalEstimator):
    name = "genmo"
    OUTPUT_NAME = "smpl_params.pt"
    INCAM_KEY = "body_params_incam"
    GLOBAL_KEY = "body_params_global"
    DEFAULT_COMMAND = ""
    MODEL_TYPE = "smplx"
