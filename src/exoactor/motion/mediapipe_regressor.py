"""MediaPipe landmark -> body joint weights, learned by scripts/fit_mediapipe_regressor.py (do not edit).

Each joint of HUMAN_KEYPOINTS is an affine combination (weights sum to one) of the MediaPipe
Pose landmarks listed for it, fitted on 2D renders of the synthetic human
(shape {'gender': 0.2, 'height': 0.35, 'weight': 0.4}, 5 camera placements, seed 7, every action at 10 fps).
"""

WEIGHTS: dict[str, dict[int, float]] = {
    'pelvis': {23: 0.4555, 24: 0.4918, 11: 0.01, 12: 0.0427},
    'left_hip': {23: 0.9235, 24: 0.0059, 11: 0.0706},
    'right_hip': {24: 1.0313, 23: -0.0631, 12: 0.0318},
    'spine': {11: 0.1622, 12: 0.2083, 23: 0.2897, 24: 0.3398},
    'neck': {11: 0.3459, 12: 0.3847, 0: -0.0327, 7: 0.1483, 8: 0.1538},
    'head': {0: 0.7733, 2: -0.0737, 5: -0.0683, 7: 0.1387, 8: 0.1495, 11: -0.007, 12: 0.0877},
    'left_shoulder': {11: 0.982, 12: -0.0061, 23: 0.0241},
    'right_shoulder': {12: 0.9811, 11: -0.0428, 24: 0.0617},
    'left_elbow': {13: 0.9797, 11: 0.0064, 15: 0.0139},
    'right_elbow': {14: 0.9908, 12: -0.008, 16: 0.0172},
    'left_wrist': {15: 0.9973, 13: 0.0126, 17: -0.0033, 19: -0.0042, 21: -0.0024},
    'right_wrist': {16: 1.0028, 14: 0.0013, 18: 0.0074, 20: -0.0034, 22: -0.0082},
    'left_hand': {17: 0.5407, 19: 0.5345, 21: -0.002, 15: -0.0732},
    'right_hand': {18: 0.5547, 20: 0.5534, 22: -0.0037, 16: -0.1044},
    'left_knee': {25: 0.9979, 23: 0.052, 27: -0.0499},
    'right_knee': {26: 0.9965, 24: 0.0278, 28: -0.0243},
    'left_ankle': {27: 1.0102, 29: 0.0276, 31: 0.0168, 25: -0.0545},
    'right_ankle': {28: 1.005, 30: 0.0147, 32: 0.0353, 26: -0.055},
    'left_heel': {29: 1.0259, 27: -0.0213, 31: -0.0045},
    'right_heel': {30: 1.0249, 28: -0.0223, 32: -0.0026},
    'left_toe': {31: 0.906, 29: 0.0306, 27: 0.0634},
    'right_toe': {32: 0.906, 30: 0.0721, 28: 0.0219},
}
