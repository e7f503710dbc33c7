"""GVHMR and GENMO adapters: synthesized result files and a stand-in command, parsed into the same motion."""
import re
import shlex
import sys
import threading
import time

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from exoactor.geometry import DEFAULT_CALIBRATION, rot_z
from exoactor.motion import ESTIMATOR_BACKENDS, MotionEstimationError
from exoactor.motion.external import Y_UP_TO_Z_UP
from exoactor.motion.smpl_body import SmplBody, SmplParams
from exoactor.progress import Canceled, no_progress
from exoactor.registry import load_backend
from exoactor.skeleton import KP
from exoactor.video.io import write_video
from fakes.smpl_model import write_smpl_model

CAM = DEFAULT_CALIBRATION.camera()
R_WORLD_FROM_SMPL = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
"""SMPL canonical axes (x left, y up, z forward) -> the world's (x forward, y left, z up)."""
T = 30
FPS = 30.0

STAND_IN = r"""
import shutil, sys, time
from pathlib import Path
mode, result, name = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "fail":
    print("loading checkpoint...", flush=True)
    print("CUDA out of memory", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "hang":
    time.sleep(60)
if mode == "nothing":
    sys.exit(0)
out = Path("outputs/demo/segment")  # relative to the working folder, as the demos do
out.mkdir(parents=True)
shutil.copy(result, out / name)
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_smpl_model(tmp_path_factory.mktemp("body_models"))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "segment_00.mp4"
    write_video(path, [np.full((CAM.height, CAM.width, 3), 90, np.uint8)] * T, FPS)
    return path


def pelvis_path_world(t_count=T):
    """Walking 0.5 m forward, pelvis 0.93 m high (the heels on the floor), facing +x."""
    return np.stack([np.linspace(0.0, 0.5, t_count), np.zeros(t_count), np.full(t_count, 0.93)], axis=1)


def rest_keypoints(model_dir):
    body = SmplBody(model_dir, "smpl")
    return body.keypoints(SmplParams(np.zeros((1, 3)), np.zeros((1, 69)), np.zeros(10), np.zeros((1, 3))))[0]


def incam_params(path_w, noise_m=0.0, seed=0):
    """Camera-frame (OpenCV axes) parameters of the body standing on ``path_w``."""
    r_cw = CAM.rot_world_from_optical.T
    go = Rotation.from_matrix(r_cw @ R_WORLD_FROM_SMPL).as_rotvec()
    transl = (path_w - CAM.pos_world_m) @ r_cw.T  # the rest pelvis is the model origin
    transl[1:] += np.random.default_rng(seed).normal(0, noise_m, transl[1:].shape)
    return {"global_orient": torch.tensor(np.tile(go, (len(path_w), 1))),
            "body_pose": torch.zeros(len(path_w), 63), "betas": torch.zeros(len(path_w), 10),
            "transl": torch.tensor(transl)}


def global_params(path_w, yaw_rad=0.7, offset_m=(3.0, -2.0, 0.4)):
    """The same motion in a y-up world turned by ``yaw_rad`` and shifted (where a tool might put it)."""
    to_g = Y_UP_TO_Z_UP.T @ rot_z(yaw_rad).T  # our world -> the tool's
    go = Rotation.from_matrix(to_g @ R_WORLD_FROM_SMPL).as_rotvec()
    transl = (path_w - np.array(offset_m)) @ to_g.T
    return {"global_orient": torch.tensor(np.tile(go, (len(path_w), 1))),
            "body_pose": torch.zeros(len(path_w), 63), "betas": torch.zeros(10), "transl": torch.tensor(transl)}


def expected_world(model_dir, path_w):
    return rest_keypoints(model_dir) @ R_WORLD_FROM_SMPL.T + path_w[:, None, :]


def write_result(tmp_path, backend, incam, world=None):
    keys = {"gvhmr": ("smpl_params_incam", "smpl_params_global", "hmr4d_results.pt"),
            "genmo": ("body_params_incam", "body_params_global", "smpl_params.pt")}[backend]
    data = {keys[0]: incam, "K_fullimg": torch.eye(3)}
    if world is not None:
        data[keys[1]] = world
    path = tmp_path / keys[2]
    torch.save(data, path)
    return path


def estimator(backend, model_dir, **kw):
    return load_backend(ESTIMATOR_BACKENDS, backend, "motion estimator", model_dir=str(model_dir),
                        model_type="smpl", **kw)


def stand_in(mode, result, name):
    """The command line of the stand-in tool (its script has no braces, so no placeholder clashes)."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(STAND_IN)} {mode} {shlex.quote(str(result))} {name}"


@pytest.mark.parametrize("backend", ["gvhmr", "genmo"])
def test_camera_frame_result_is_placed_through_the_calibrated_camera(backend, model_dir, video, tmp_path):
    path_w = pelvis_path_world()
    result = write_result(tmp_path, backend, incam_params(path_w))
    m = estimator(backend, model_dir, output_file=str(result)).estimate(video, CAM, no_progress, threading.Event())
    np.testing.assert_allclose(m.keypoints_world_m, expected_world(model_dir, path_w), atol=1e-4)
    assert m.source == backend and m.fps == pytest.approx(FPS) and m.num_frames == T
    np.testing.assert_allclose(m.root_pos_world_m[-1], [0.5, 0.0, 0.85], atol=1e-4)  # mid hips, 8 cm below
    np.testing.assert_allclose(m.root_quat_wxyz[0], [1.0, 0.0, 0.0, 0.0], atol=1e-6)  # facing +x


def test_global_result_follows_the_tools_trajectory_placed_where_the_camera_sees_it(model_dir, video, tmp_path):
    path_w = pelvis_path_world()
    noisy_incam = incam_params(path_w, noise_m=0.05)  # per-frame depth noise; frame 0 exact
    result = write_result(tmp_path, "gvhmr", noisy_incam, global_params(path_w))
    est = estimator("gvhmr", model_dir, output_file=str(result), frame="global")
    m = est.estimate(video, CAM, no_progress, threading.Event())
    np.testing.assert_allclose(m.keypoints_world_m, expected_world(model_dir, path_w), atol=1e-4)
    incam_only = estimator("gvhmr", model_dir, output_file=str(result)).estimate(video, CAM, no_progress,
                                                                                  threading.Event())
    assert np.abs(incam_only.keypoints_world_m - expected_world(model_dir, path_w)).max() > 0.02


def test_feet_are_put_on_the_floor(model_dir, video, tmp_path):
    path_w = pelvis_path_world()
    path_w[:, 2] += 0.12  # the tool's depth/scale put the body 12 cm too high
    result = write_result(tmp_path, "gvhmr", incam_params(path_w))
    m = estimator("gvhmr", model_dir, output_file=str(result)).estimate(video, CAM, no_progress, threading.Event())
    assert m.keypoint("left_heel")[:, 2].min() == pytest.approx(0.03, abs=1e-3)


def test_the_command_runs_in_its_own_folder_and_its_result_is_found(model_dir, video, tmp_path):
    path_w = pelvis_path_world()
    result = write_result(tmp_path, "gvhmr", incam_params(path_w))
    est = estimator("gvhmr", model_dir, command=stand_in("ok", result, "hmr4d_results.pt"))
    m = est.estimate(video, CAM, no_progress, threading.Event())
    np.testing.assert_allclose(m.keypoints_world_m, expected_world(model_dir, path_w), atol=1e-4)
    runs = list(video.parent.glob("gvhmr_*/outputs/demo/segment/hmr4d_results.pt"))
    assert runs, "the run's folder (with its log) stays in the episode"
    assert (runs[0].parents[3] / "command.log").is_file()


@pytest.mark.parametrize("mode, kw, fragment", [
    ("fail", {}, "exited with status 3: loading checkpoint... | CUDA out of memory"),
    ("nothing", {}, "wrote no hmr4d_results.pt"),
    ("hang", {"timeout_s": 1.0}, "ran longer than 1 s"),
])
def test_command_failures_are_clear(mode, kw, fragment, model_dir, video, tmp_path):
    est = estimator("gvhmr", model_dir, command=stand_in(mode, tmp_path / "x.pt", "hmr4d_results.pt"), **kw)
    with pytest.raises(MotionEstimationError, match=fragment.replace("|", r"\|").replace(".", r"\.")):
        est.estimate(video, CAM, no_progress, threading.Event())


def test_cancel_kills_the_command_at_once(model_dir, video, tmp_path):
    est = estimator("gvhmr", model_dir, command=stand_in("hang", tmp_path / "x.pt", "hmr4d_results.pt"))
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Canceled):
        est.estimate(video, CAM, no_progress, cancel)
    assert time.monotonic() - t0 < 3.0


@pytest.mark.parametrize("content, fragment", [
    (b"not a tensor file", "cannot read hmr4d_results.pt"),
    ({"smpl_params_incam": {"global_orient": torch.zeros(T, 3)}}, "not a result this adapter reads: KeyError"),
    ({"smpl_params_incam": {"global_orient": torch.zeros(T, 3), "body_pose": torch.zeros(T, 10),
                            "betas": torch.zeros(10), "transl": torch.zeros(T, 3)}}, "body_pose must have 63"),
    ({"smpl_params_incam": {"global_orient": torch.full((T, 3), float("nan")), "body_pose": torch.zeros(T, 63),
                            "betas": torch.zeros(10), "transl": torch.zeros(T, 3)}}, "NaN"),
])
def test_malformed_results_are_clear(content, fragment, model_dir, video, tmp_path):
    path = tmp_path / "hmr4d_results.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(MotionEstimationError, match=fragment):
        estimator("gvhmr", model_dir, output_file=str(path)).estimate(video, CAM, no_progress, threading.Event())


def test_missing_configuration_is_clear(tmp_path, video):
    with pytest.raises(MotionEstimationError, match="no command configured"):
        load_backend(ESTIMATOR_BACKENDS, "genmo", "motion estimator").estimate(video, CAM, no_progress,
                                                                               threading.Event())
    result = write_result(tmp_path, "gvhmr", incam_params(pelvis_path_world()))
    with pytest.raises(MotionEstimationError, match="licence-gated"):
        estimator("gvhmr", tmp_path / "no_models", output_file=str(result)).estimate(video, CAM, no_progress,
                                                                                      threading.Event())


def _wilor_hand(t: int, right: bool) -> np.ndarray:
    """(21, 3) a hand in camera axes: fingers spread along the image's +y (down), curling with t;
    a left hand as WiLoR writes it (mirrored in x)."""
    rng = np.random.default_rng(t + 100 * right)
    kp = np.zeros((21, 3))
    for f in range(5):
        for k in range(4):
            kp[1 + 4 * f + k] = [0.02 * (f - 2), 0.03 * (k + 1), 0.005 * t * k]
    kp += rng.normal(0, 0.001, kp.shape)
    kp += [0.1, -0.2, 2.5]  # where the model puts it: irrelevant, only the shape is used
    return kp if right else kp * [-1.0, 1.0, 1.0]


def write_wilor(path, frames):
    torch.save({"frames": frames}, path)
    return path


def test_wilor_hands_are_hung_on_the_bodys_wrists_in_the_camera_orientation(model_dir, video, tmp_path):
    path_w = pelvis_path_world()
    body = write_result(tmp_path, "genmo", incam_params(path_w))
    frames = []
    for t in range(T):
        hands = [] if t in (5, 6) else [  # no hands in two frames; the right hand twice in frame 8
            {"is_right": torch.tensor(1.0), "pred_keypoints_3d": torch.tensor(_wilor_hand(t, True)),
             "score": torch.tensor(0.9), "hand_pose": torch.zeros(15, 3, 3), "betas": torch.zeros(10)},
            {"is_right": torch.tensor(0.0), "pred_keypoints_3d": torch.tensor(_wilor_hand(t, False))}]
        if t == 8:
            hands.append({"is_right": 1, "pred_keypoints_3d": torch.zeros(21, 3), "score": 0.2})
        frames.append(hands)
    hands_file = write_wilor(tmp_path / "wilor_hands.pt", frames)
    m = estimator("genmo", model_dir, output_file=str(body), wilor_output_file=str(hands_file)).estimate(
        video, CAM, no_progress, threading.Event())
    assert m.has_hands and m.source == "genmo+wilor"
    assert m.hand_confidence[5].max() == 0.0 and m.hand_confidence[8, 1] == pytest.approx(0.9)
    assert m.hand_confidence[0, 0] == pytest.approx(1.0)  # no score: 1
    r = CAM.rot_world_from_optical
    for t in (15, 20):  # away from the clip ends and the gap, where smoothing is one-sided
        for side, right in ((0, False), (1, True)):
            want = _wilor_hand(t, right) * ([1.0, 1.0, 1.0] if right else [-1.0, 1.0, 1.0])
            want = (want - want[0]) @ r.T + m.keypoint(("left_wrist", "right_wrist")[side])[t]
            np.testing.assert_allclose(m.hand_keypoints_world_m[t, side], want, atol=4e-3)  # smoothed: the 1 mm noise is averaged
    # the frames without hands hold the nearest detection's shape, on their own wrist
    np.testing.assert_allclose(m.hand_keypoints_world_m[5, 1, 0], m.keypoint("right_wrist")[5])
    # the same file from a stand-in command
    est = estimator("genmo", model_dir, output_file=str(body),
                    wilor_command=stand_in("ok", hands_file, "wilor_hands.pt"))
    m2 = est.estimate(video, CAM, no_progress, threading.Event())
    np.testing.assert_allclose(m2.hand_keypoints_world_m, m.hand_keypoints_world_m)


@pytest.mark.parametrize("content, fragment", [
    ({"hands": []}, "no 'frames' list"),
    ({"frames": [[{"pred_keypoints_3d": torch.zeros(21, 3)}]]}, "needs is_right and pred_keypoints_3d"),
    ({"frames": [[{"is_right": 1, "pred_keypoints_3d": torch.zeros(20, 3)}]]}, "shape (20, 3)"),
    ({"frames": [[{"is_right": 1, "pred_keypoints_3d": torch.full((21, 3), float("nan"))}]]}, "expected finite"),
    ({"frames": [[]] * (T + 1)}, f"{T + 1} frames, the video {T}"),
    ({"frames": ["x"]}, "frame 0 is a str"),
])
def test_malformed_wilor_files_are_clear(content, fragment, model_dir, video, tmp_path):
    body = write_result(tmp_path, "genmo", incam_params(pelvis_path_world()))
    hands = tmp_path / "wilor_hands.pt"
    torch.save(content, hands)
    est = estimator("genmo", model_dir, output_file=str(body), wilor_output_file=str(hands))
    with pytest.raises(MotionEstimationError, match=re.escape(fragment)):
        est.estimate(video, CAM, no_progress, threading.Event())
    est = estimator("genmo", model_dir, output_file=str(body), wilor_command=stand_in("fail", hands, "x"))
    with pytest.raises(MotionEstimationError, match=r"wilor: the command exited with status 3"):
        est.estimate(video, CAM, no_progress, threading.Event())


def test_a_motion_converts_to_smpl_parameters_whose_joints_match_it(model_dir, tmp_path, capsys):
    """HumanMotion -> SMPL (python -m exoactor.motion.smpl_body): the parameters fitted to keypoints
    made from known parameters give the same keypoints back (arm raised, knee bent, body turned and
    walking)."""
    from exoactor.motion.grounding import motion_from_keypoints
    from exoactor.motion.smpl_body import main as smpl_main

    body = SmplBody(model_dir, "smpl")
    n = 6
    path_w = pelvis_path_world(n)
    r_turn = rot_z(0.6)
    go = np.tile(Rotation.from_matrix(r_turn @ R_WORLD_FROM_SMPL).as_rotvec(), (n, 1))
    pose = np.zeros((n, 69))
    lift = np.linspace(0.0, 1.2, n)
    pose[:, 3 * 15 + 2] = lift  # left shoulder (joint 16 = body_pose index 15) about its z
    pose[:, 3 * 3 + 0] = 0.8 * lift  # left knee (joint 4) about its x
    truth = SmplParams(go, pose, np.zeros(10), path_w)
    kp = body.keypoints(truth)
    path = motion_from_keypoints(kp, np.ones(kp.shape[:2]), np.zeros(n, np.uint8), FPS, "test").save(
        tmp_path / "motion_00.npz")
    assert smpl_main([str(path), "--model-dir", str(model_dir), "--model-type", "smpl"]) == 0
    assert "keypoint RMS error" in capsys.readouterr().out
    with np.load(tmp_path / "motion_00_smpl.npz") as z:
        rms = z["rms_error_m"]
        params = SmplParams(z["global_orient"], z["body_pose"], z["betas"], z["transl"])
    assert rms.max() < 0.01, rms  # within a centimetre on every frame
    np.testing.assert_allclose(body.keypoints(params), kp, atol=0.02)
    assert smpl_main([str(path), "--model-dir", str(tmp_path / "none"), "--model-type", "smpl"]) == 2
    assert "does not exist" in capsys.readouterr().err
    wrist_lift = kp[-1, KP["left_wrist"], 2] - kp[0, KP["left_wrist"], 2]
    assert wrist_lift > 0.2  # the motion was not a still pose
    with pytest.raises(Exception, match=r"keypoints must be \(T, 22, 3\)"):
        body.fit(kp[:, :20])
