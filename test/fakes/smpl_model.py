"""A small, structurally valid SMPL model file (SMPL_NEUTRAL.pkl) with a known rest skeleton, for tests.

The real model files are licence-gated. This one has SMPL's 6890 vertices (smplx's heel vertex ids
need them): vertex j < 24 sits on joint j (J_regressor = those vertices) and moves with it, the
heel vertices sit behind and below the ankles; every other vertex rides on the pelvis. No shape or
pose blend shapes (zeros), so joints are exactly the rest skeleton posed by forward kinematics.
SMPL's canonical frame: y up, the body faces +z, its left is +x.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
REST_JOINTS = np.array([
    (0, 0, 0), (0.08, -0.08, 0), (-0.08, -0.08, 0), (0, 0.1, 0), (0.1, -0.45, 0), (-0.1, -0.45, 0),
    (0, 0.22, 0), (0.1, -0.85, 0), (-0.1, -0.85, 0), (0, 0.28, 0), (0.11, -0.9, 0.12), (-0.11, -0.9, 0.12),
    (0, 0.48, 0), (0.07, 0.4, 0), (-0.07, 0.4, 0), (0, 0.6, 0.03), (0.18, 0.42, 0), (-0.18, 0.42, 0),
    (0.45, 0.42, 0), (-0.45, 0.42, 0), (0.7, 0.42, 0), (-0.7, 0.42, 0), (0.78, 0.42, 0), (-0.78, 0.42, 0),
], dtype=np.float64)
"""Rest joints, metres, SMPL canonical frame (pelvis at the origin)."""
HEELS = {3387: (7, (0.1, -0.9, -0.05)), 6787: (8, (-0.1, -0.9, -0.05))}
"""smplx's SMPL heel vertex ids -> (ankle joint they move with, rest position)."""
N_VERTS = 6890


def write_smpl_model(model_dir: Path) -> Path:
    """``model_dir/smpl/SMPL_NEUTRAL.pkl``; returns ``model_dir``."""
    v = np.zeros((N_VERTS, 3))
    weights = np.zeros((N_VERTS, 24))
    weights[:, 0] = 1.0
    v[:24] = REST_JOINTS
    weights[:24] = np.eye(24)
    for vid, (joint, pos) in HEELS.items():
        v[vid] = pos
        weights[vid] = 0.0
        weights[vid, joint] = 1.0
    j_reg = np.zeros((24, N_VERTS))
    j_reg[np.arange(24), np.arange(24)] = 1.0
    faces = np.array([(i, i + 1, i + 2) for i in range(0, N_VERTS - 2, 3)], dtype=np.int64)
    kintree = np.array([[4294967295, *PARENTS[1:]], list(range(24))], dtype=np.int64)
    data = {"v_template": v, "f": faces, "shapedirs": np.zeros((N_VERTS, 3, 10)),
            "posedirs": np.zeros((N_VERTS, 3, 207), dtype=np.float32), "J_regressor": j_reg,
            "weights": weights, "kintree_table": kintree}
    (model_dir / "smpl").mkdir(parents=True, exist_ok=True)
    with open(model_dir / "smpl" / "SMPL_NEUTRAL.pkl", "wb") as f:
        pickle.dump(data, f)
    return model_dir
