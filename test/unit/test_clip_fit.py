"""The clip fit recovers one skeleton from noisy per-frame keypoints: constant bones, planted feet, no jitter."""
import numpy as np
import pytest

from exoactor.geometry import DEFAULT_CALIBRATION
from exoactor.motion.filters import gaussian_smooth
from exoactor.motion.clip_fit import BONES, FOOT_POINTS, SOLE_HEIGHT_M, FitWeights, detect_planted, fit_clip
from exoactor.skeleton import HUMAN_KEYPOINTS, KP

CAM = DEFAULT_CALIBRATION.camera()
REST = {  # child -> offset from its parent, standing, facing +x (metres)
    "left_hip": (0, 0.09, 0), "right_hip": (0, -0.09, 0), "spine": (0, 0, 0.25), "neck": (0, 0, 0.25),
    "head": (0.03, 0, 0.2), "left_shoulder": (0, 0.18, -0.03), "right_shoulder": (0, -0.18, -0.03),
    "left_elbow": (0, 0, -0.28), "right_elbow": (0, 0, -0.28), "left_wrist": (0, 0, -0.25),
    "right_wrist": (0, 0, -0.25), "left_hand": (0, 0, -0.08), "right_hand": (0, 0, -0.08),
    "left_knee": (0, 0, -0.42), "right_knee": (0, 0, -0.42), "left_ankle": (0, 0, -0.40),
    "right_ankle": (0, 0, -0.40), "left_heel": (-0.05, 0, -0.04), "right_heel": (-0.05, 0, -0.04),
    "left_toe": (0.17, 0, -0.05), "right_toe": (0.17, 0, -0.05),
}
PELVIS_Z = 0.42 + 0.40 + 0.05 + 0.02


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def true_clip(t_count=60, fps=30.0):
    """Standing still while the right arm swings up sideways and back: feet planted throughout."""
    out = np.zeros((t_count, len(HUMAN_KEYPOINTS), 3))
    for t in range(t_count):
        lift = 1.4 * np.sin(np.pi * t / (t_count - 1))
        pts = {"pelvis": np.array([0.0, 0.0, PELVIS_Z])}
        for parent, child in BONES:
            off = np.array(REST[child], float)
            if child in ("right_elbow", "right_wrist", "right_hand"):
                off = _rot_x(-lift) @ off
            pts[child] = pts[parent] + off
        out[t] = [pts[n] for n in HUMAN_KEYPOINTS]
    return out, fps


def mean_acceleration(keypoints):
    """Mean keypoint acceleration (m per frame^2) of (T, J, 3) keypoints."""
    return np.linalg.norm(keypoints[2:] - 2 * keypoints[1:-1] + keypoints[:-2], axis=-1).mean()


def noisy_inputs(truth, rng, px_sigma=2.0, m_sigma=0.03):
    uv, _ = CAM.project(truth)
    uv = uv + rng.normal(0, px_sigma, uv.shape)
    rel = truth - truth[:, :1]
    rel_det = rel * rng.uniform(0.9, 1.1, (len(truth), 1, 1)) + rng.normal(0, m_sigma, truth.shape)
    init = truth + rng.normal(0, m_sigma, truth.shape) + np.array([0.05, -0.04, 0.03])  # offset root too
    # the caller's per-frame estimate, as the estimator hands it over: gaps filled, lightly smoothed
    return gaussian_smooth(init, 1.5), rel_det, uv, np.full(truth.shape[:2], 0.9)


def test_fit_recovers_the_skeleton_from_noisy_detections():
    truth, fps = true_clip()
    init, rel_det, uv, conf = noisy_inputs(truth, np.random.default_rng(1))
    fit = fit_clip(init, rel_det, uv, conf, CAM, fps)
    err_init = np.linalg.norm(init - truth, axis=-1).mean()
    err_fit = np.linalg.norm(fit.keypoints_world_m - truth, axis=-1).mean()
    assert err_fit < 0.55 * err_init and err_fit < 0.04, (err_init, err_fit)
    # one length per bone for the whole clip, close to the truth
    seg = np.linalg.norm(fit.keypoints_world_m[:, KP["right_knee"]] - fit.keypoints_world_m[:, KP["right_ankle"]], axis=-1)
    assert np.ptp(seg) < 1e-6 and abs(fit.bone_lengths_m["right_ankle"] - 0.40) < 0.04
    assert fit.bone_lengths_m["left_ankle"] == fit.bone_lengths_m["right_ankle"]
    # planted feet: found, not sliding, on the floor
    assert fit.planted.mean() > 0.9
    feet = fit.keypoints_world_m[:, [KP[n] for n in FOOT_POINTS]]
    slide = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1)
    assert slide.mean() < 0.0015 and slide.max() < 0.01, (slide.mean(), slide.max())
    sole = np.array([SOLE_HEIGHT_M[n] for n in FOOT_POINTS])
    assert (feet[..., 2] > sole - 0.01).all()
    # smoother than the (already smoothed) input
    assert mean_acceleration(fit.keypoints_world_m) < 0.5 * mean_acceleration(init)
    assert fit.reprojection_px.shape == (len(truth),) and fit.reprojection_px.mean() < 6.0  # pixel noise 2 px (mean norm 2.5)


def test_frames_without_a_person_are_bridged_by_the_fit():
    truth, fps = true_clip()
    init, rel_det, uv, conf = noisy_inputs(truth, np.random.default_rng(2))
    conf[20:30] = 0.0
    rel_det[20:30] = 0.0
    uv[20:30] = 0.0
    init[20:30] = np.linspace(init[19], init[30], 12)[1:-1]  # the caller's gap filling
    fit = fit_clip(init, rel_det, uv, conf, CAM, fps)
    err_gap = np.linalg.norm(fit.keypoints_world_m[20:30] - truth[20:30], axis=-1).mean()
    assert np.isfinite(fit.keypoints_world_m).all() and err_gap < 0.06, err_gap


def test_a_walking_foot_is_not_planted():
    truth, fps = true_clip()
    truth[:, KP["left_heel"], 0] += np.linspace(0, 1.0, len(truth))  # 0.5 m/s
    truth[:, KP["left_toe"], 2] += 0.15  # lifted
    planted = detect_planted(truth, fps)
    assert not planted[:, FOOT_POINTS.index("left_heel")].any()
    assert not planted[:, FOOT_POINTS.index("left_toe")].any()
    assert planted[:, FOOT_POINTS.index("right_heel")].all()


@pytest.mark.parametrize("what, bad, fragment", [
    ("uv", np.zeros((5, 22, 3)), "pixels_uv: expected shape (5, 22, 2)"),
    ("init", np.full((5, 22, 3), np.nan), "NaN"),
    ("init", np.zeros((1, 22, 3)), "T >= 2"),
])
def test_bad_inputs_say_what_was_expected(what, bad, fragment):
    t = len(bad) if what == "init" else 5
    args = {"init": np.zeros((t, 22, 3)), "rel": np.zeros((t, 22, 3)), "uv": np.zeros((t, 22, 2)),
            "conf": np.ones((t, 22))}
    args[what] = bad
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        fit_clip(args["init"], args["rel"], args["uv"], args["conf"], CAM, 30.0)


def test_temporal_preconditioner_is_the_documented_change_of_variables():
    import torch

    from exoactor.motion.clip_fit import TemporalPreconditioner

    t, c = 40, 7.0
    pre = TemporalPreconditioner(t, c)
    d2 = np.zeros((t - 2, t))
    for r in range(t - 2):
        d2[r, r:r + 3] = (1.0, -2.0, 1.0)
    chol = np.linalg.cholesky(np.eye(t) + c * d2.T @ d2)
    rng = np.random.default_rng(0)
    y = rng.normal(size=(t, 5))
    np.testing.assert_allclose(pre.to_z(y), chol.T @ y, atol=1e-10)
    z = torch.tensor(pre.to_z(y), requires_grad=True)
    np.testing.assert_allclose(pre.from_z(z).detach().numpy(), y, atol=1e-9)  # an exact round trip
    assert torch.autograd.gradcheck(pre.from_z, (z,))  # the gradient is L^-1 applied
    # in z the smoothness energy c |D2 y|^2 is well conditioned: its Hessian, computed through the
    # class's own from_z, has eigenvalues below 1 (versus up to 16 c for the raw trajectories)
    basis = pre.from_z(torch.eye(t, dtype=torch.float64)).numpy()  # columns: L^-T e_k
    ev = np.linalg.eigvalsh(basis.T @ (c * d2.T @ d2) @ basis)
    assert ev.max() < 1.0 + 1e-9 and np.linalg.eigvalsh(c * d2.T @ d2).max() > 10 * c
    with pytest.raises(ValueError, match="frames >= 2"):
        TemporalPreconditioner(1, 1.0)
    # a non-finite step (an L-BFGS line search gone wrong) flows through as NaN, to the fit's own check
    assert not np.isfinite(pre.from_z(torch.full((t, 2), float("nan"), dtype=torch.float64)).numpy()).any()


def test_preconditioned_fit_converges_further_in_the_same_iterations():
    """With as few iterations as an unpreconditioned fit needs to stall, the preconditioned one is
    smoother and closer to the truth (the same energy: only the variables change)."""
    truth, fps = true_clip(90)
    init, rel_det, uv, conf = noisy_inputs(truth, np.random.default_rng(3))
    acc = mean_acceleration
    raw = fit_clip(init, rel_det, uv, conf, CAM, fps, iterations=60, precondition=0.0).keypoints_world_m
    pre = fit_clip(init, rel_det, uv, conf, CAM, fps, iterations=60).keypoints_world_m
    err = lambda k: np.linalg.norm(k - truth, axis=-1).mean()  # noqa: E731
    assert acc(pre) < 0.8 * acc(raw) and err(pre) < err(raw) + 0.002, (acc(pre), acc(raw), err(pre), err(raw))


def test_robust_smoothness_keeps_a_fast_wave_that_a_quadratic_one_flattens():
    """A 2 Hz wave of the right forearm (its wrist turns at ~40 m/s^2): under the quadratic
    acceleration cost the fit cuts the turns short; with the Huber cost (the default) the turns
    are kept, and the jitter of the noisy input is still removed."""
    fps, t_count = 30.0, 60
    truth, _ = true_clip(t_count, fps)
    for t in range(t_count):  # the right upper arm held out sideways, the forearm waving about the elbow
        swing = 0.9 * np.sin(2 * np.pi * 2.0 * t / fps)
        elbow = truth[t, KP["right_shoulder"]] + np.array([0.0, -0.28, 0.0])
        fore = _rot_x(swing) @ np.array([0.0, 0.0, 0.25])
        truth[t, KP["right_elbow"]] = elbow
        truth[t, KP["right_wrist"]] = elbow + fore
        truth[t, KP["right_hand"]] = elbow + fore * (0.33 / 0.25)
    init, rel_det, uv, conf = noisy_inputs(truth, np.random.default_rng(4), px_sigma=1.0, m_sigma=0.01)
    wrist = KP["right_wrist"]
    err = lambda k: np.linalg.norm(k[:, wrist] - truth[:, wrist], axis=-1).mean()  # noqa: E731
    acc = lambda k: mean_acceleration(k[:, [KP["left_wrist"]]])  # noqa: E731
    robust = fit_clip(init, rel_det, uv, conf, CAM, fps).keypoints_world_m
    quadratic = fit_clip(init, rel_det, uv, conf, CAM, fps, weights=FitWeights(acceleration_huber=0.0)).keypoints_world_m
    assert err(robust) < 0.7 * err(quadratic), (err(robust), err(quadratic))
    assert acc(robust) < 0.5 * acc(init), (acc(robust), acc(init))  # the still arm: jitter removed
