"""GVHMR (zju3dv/GVHMR, or the PyPI fork's ``gvhmr demo VIDEO -s`` CLI) as a motion-estimation backend.

Its demo writes ``hmr4d_results.pt``: ``smpl_params_incam`` and ``smpl_params_global`` (y-up
world), each with ``body_pose`` (L, 63), ``betas`` (L, 10), ``global_orient`` (L, 3), ``transl``
(L, 3), axis-angle, SMPL-X, one entry per video frame. The default command is the fork's CLI
(static camera); with the original repository use e.g. ``python /opt/GVHMR/tools/demo/demo.py
--video={video} -s --output_root {output_dir}``. See :mod:`exoactor.motion.external`.
"""
from __future__ import annotations

from exoactor.motion.external import ExternalEstimator


class GvhmrEstimator(ExternalEstimator):
    name = "gvhmr"
    OUTPUT_NAME = "hmr4d_results.pt"
    INCAM_KEY = "smpl_params_incam"
    GLOBAL_KEY = "smpl_params_global"
    DEFAULT_COMMAND = "gvhmr demo {video} -s"
    MODEL_TYPE = "smplx"
