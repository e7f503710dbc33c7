"""Hands: the renderer's fingers and their truth, MediaPipe Hands on the wrists, closure, the motion's hand arrays."""
import threading

import numpy as np
import pytest

from exoactor.geometry import LookAtCalibration, rot_x, rot_z
from exoactor.motion.hands import attach_hands, hand_closure
from exoactor.motion.human_motion import HumanMotion, MotionEstimationError
from exoactor.progress import no_progress
from exoactor.skeleton import HAND_BONES, HAND_KEYPOINTS, KP


@pytest.fixture(scope="module")
def body():
    from exoactor.video.anny_body import AnnyBody

    return AnnyBody()


def _hands_at(body, grip: float) -> np.ndarray:
    from exoactor.video.choreography import BodyPose

    pose = BodyPose()
    pose.grip = {"l": grip, "r": grip}
    return body.pose_batch([pose])[0].hand_keypoints_world_m


def test_hand_skeleton_is_mediapipes_21_points_and_a_tree_from_the_wrist():
    assert len(HAND_KEYPOINTS) == 21 and HAND_KEYPOINTS[0] == "wrist" and HAND_KEYPOINTS[8] == "index_tip"
    children = [c for _, c in HAND_BONES[:20]]
    assert sorted(children) == list(range(1, 21))  # every point but the wrist hangs from one parent


def test_the_synthetic_hand_closes_with_its_grip_and_its_points_sit_on_the_hand(body):
    from exoactor.video.choreography import BodyPose

    open_, fist = _hands_at(body, 0.0), _hands_at(body, 1.0)
    kp = body.pose_batch([BodyPose()])[0]
    for h in (open_, fist):
        wrists = h[:, 0]
        assert np.linalg.norm(h[:, 0] - kp.keypoints_world_m[[KP["left_wrist"], KP["right_wrist"]]], axis=1).max() < 1e-9
        span = np.linalg.norm(h - wrists[:, None], axis=-1).max()
        assert 0.08 < span < 0.25  # a hand, not a body
    assert hand_closure(open_).max() < 0.1 and hand_closure(fist).min() > 0.9
    # fingertips come back towards the wrist when the hand closes
    tips = [4 * f + 4 for f in range(1, 5)]
    d_open = np.linalg.norm(open_[:, tips] - open_[:, :1], axis=-1).mean()
    d_fist = np.linalg.norm(fist[:, tips] - fist[:, :1], axis=-1).mean()
    assert d_fist < 0.75 * d_open


def test_closure_ignores_where_the_hand_is_how_it_turns_and_its_size(body):
    h = _hands_at(body, 0.6)[1]
    base = float(hand_closure(h))
    moved = 1.3 * (h - h[0]) @ (rot_z(0.7) @ rot_x(-1.1)).T + [0.4, -2.0, 1.1]
    assert abs(float(hand_closure(moved)) - base) < 1e-9
    assert 0.3 < base < 0.9
    assert float(hand_closure(np.zeros((21, 3)))) == 0.0  # an undetected hand (all at the wrist)
    with pytest.raises(ValueError, match=r"\(\.\.\., 21, 3\)"):
        hand_closure(np.zeros((20, 3)))


def test_attach_hands_fills_gaps_from_the_nearest_detection_and_keeps_confidence_zero():
    cam = LookAtCalibration(640, 480, 50.0, (3.0, 0.0, 1.2), (0.0, 0.0, 0.8)).camera()
    t = 6
    rel = np.zeros((t, 2, 21, 3))
    conf = np.zeros((t, 2))
    shape = np.linspace(0, 0.1, 63).reshape(21, 3)
    shape -= shape[0]
    rel[2, 1] = shape
    conf[2, 1] = 0.9
    wrists = np.zeros((t, 2, 3))
    wrists[:, 1, 0] = np.arange(t) * 0.1  # the right wrist moves along x
    pts, c = attach_hands(wrists, rel, conf, cam)
    world_shape = shape @ cam.rot_world_from_optical.T
    for k in range(t):
        assert np.allclose(pts[k, 1] - wrists[k, 1], world_shape)  # the one detection, carried by the wrist
        assert np.allclose(pts[k, 0], wrists[k, 0])  # the left hand was never seen: at its wrist
    assert c[2, 1] == 0.9 and c[[0, 1, 3, 4, 5], 1].max() == 0.0 and c[:, 0].max() == 0.0
    with pytest.raises(ValueError, match="T, 2, 21, 3"):
        attach_hands(wrists, rel[:, :, :20], conf, cam)


def _motion(t=4, **hands):
    kp = np.random.default_rng(0).normal(size=(t, len(KP), 3))
    return HumanMotion(fps=30.0, keypoints_world_m=kp, confidence=np.ones((t, len(KP))),
                       root_pos_world_m=kp[:, 0], root_quat_wxyz=np.tile([1.0, 0, 0, 0], (t, 1)), height_m=1.7,
                       **hands)


def test_motion_hands_are_optional_checked_and_saved(tmp_path):
    m = _motion()
    assert not m.has_hands
    assert not HumanMotion.load(m.save(tmp_path / "a.npz")).has_hands
    hands = np.random.default_rng(1).normal(size=(4, 2, 21, 3))
    conf = np.array([[1.0, 0.0]] * 4)
    m = _motion(hand_keypoints_world_m=hands, hand_confidence=conf)
    back = HumanMotion.load(m.save(tmp_path / "b.npz"))
    assert np.allclose(back.hand_keypoints_world_m, hands) and np.allclose(back.hand_confidence, conf)
    with pytest.raises(MotionEstimationError, match=r"hand_keypoints_world_m shape \(4, 2, 20, 3\)"):
        _motion(hand_keypoints_world_m=hands[:, :, :20], hand_confidence=conf)
    bad = hands.copy()
    bad[1, 0, 3, 2] = np.nan
    with pytest.raises(MotionEstimationError, match="hand_keypoints_world_m contains NaN"):
        _motion(hand_keypoints_world_m=bad, hand_confidence=conf)
    with pytest.raises(MotionEstimationError, match="hand_confidence given without"):
        _motion(hand_confidence=conf)


def test_grasp_rendered_at_720p_is_read_back_with_a_closing_right_hand(tmp_path):
    """The synthetic backend animates the fingers and writes their truth; MediaPipe Hands on the
    wrist crops finds the right hand and sees it close."""
    from exoactor.motion.mediapipe_estimator import MediaPipeEstimator
    from exoactor.planning.vocabulary import Step
    from exoactor.video.base import VideoRequest
    from exoactor.video.io import write_image_rgb
    from exoactor.video.synthetic import SyntheticVideoGenerator

    cam = LookAtCalibration(1280, 720, 50.0, (2.6, -1.3, 1.3), (0.0, 0.0, 0.8)).camera()
    write_image_rgb(tmp_path / "reference.png", np.full((720, 1280, 3), 120, np.uint8))
    step = Step(action="grasp", side="right", duration_s=2.0)
    seg = SyntheticVideoGenerator(fps=10.0).generate(
        VideoRequest(tmp_path, [step], 0, tmp_path / "reference.png", None, cam), no_progress, threading.Event())
    truth = np.load(tmp_path / "segment_00_truth.npz")
    grip = truth["hand_grip"]
    assert truth["hand_keypoints_world_m"].shape == (seg.num_frames, 2, 21, 3)
    assert grip[0, 1] < 0.3 and grip[-1, 1] > 0.95 and np.allclose(grip[:, 0], grip[0, 0])  # only the right closes

    m = MediaPipeEstimator(hands=True).estimate(seg.video_path, cam, no_progress, threading.Event())
    assert m.has_hands and m.hand_keypoints_world_m.shape == (seg.num_frames, 2, 21, 3)
    right = m.hand_confidence[:, 1] > 0
    assert right.mean() >= 0.6, m.hand_confidence[:, 1]
    rel_e = m.hand_keypoints_world_m[:, 1] - m.hand_keypoints_world_m[:, 1, :1]
    rel_t = truth["hand_keypoints_world_m"][:, 1] - truth["hand_keypoints_world_m"][:, 1, :1]
    err = np.linalg.norm(rel_e - rel_t, axis=-1)[right].mean()
    assert err < 0.06, err  # measured 42-49 mm; all points at the wrist would be ~90 mm
    closure = hand_closure(m.hand_keypoints_world_m[:, 1])
    n = len(closure)
    assert closure[-3:][right[-3:]].mean() > closure[: n // 3][right[: n // 3]].mean() + 0.3, closure
    # the wrist the hand hangs on is the body's own wrist estimate
    assert np.allclose(m.hand_keypoints_world_m[:, 1, 0], m.keypoint("right_wrist"))

    # the overlay video: body and hands drawn on the clip, full resolution
    from exoactor.media.overlay import write_overlay_video
    from exoactor.video.io import read_video_frames

    out, with_hands = write_overlay_video(seg.video_path, m, cam, tmp_path / "segment_00_overlay.mp4")
    assert with_hands == int((m.hand_confidence > 0).any(1).sum())
    drawn = list(read_video_frames(out))
    plain = list(read_video_frames(seg.video_path))
    assert len(drawn) == seg.num_frames and drawn[0].shape == (720, 1280, 3)
    t = int(np.flatnonzero(right)[-1])
    uv, _ = cam.project(m.hand_keypoints_world_m[t, 1, 8])  # the index fingertip, drawn as a dot
    u, v = np.round(uv).astype(int)
    patch = np.abs(drawn[t][v - 2:v + 3, u - 2:u + 3].astype(int) - plain[t][v - 2:v + 3, u - 2:u + 3]).max()
    assert patch > 60, patch


def test_rviz_markers_show_the_hands_seen_in_the_frame_and_delete_the_others():
    from visualization_msgs.msg import Marker

    from exoactor.nodes.pose_node import skeleton_markers

    hands = np.random.default_rng(2).normal(size=(4, 2, 21, 3))
    m = _motion(hand_keypoints_world_m=hands, hand_confidence=np.array([[0.0, 0.8]] * 4))
    from builtin_interfaces.msg import Time

    arr = skeleton_markers(m, 1, Time())
    hand = [mk for mk in arr.markers if mk.ns == "human_hands"]
    assert [(mk.id, mk.action) for mk in hand] == [(0, Marker.DELETE), (1, Marker.DELETE), (2, Marker.ADD),
                                                   (3, Marker.ADD)]
    lines, dots = hand[2], hand[3]
    assert len(lines.points) == 2 * 23 and len(dots.points) == 21
    assert dots.points[8].x == pytest.approx(hands[1, 1, 8, 0])
    assert len([mk for mk in skeleton_markers(_motion(), 0, hand[0].header.stamp).markers]) == 2  # no hands


def test_refine_hand_rotation_turns_a_misoriented_hand_onto_its_2d_points(body):
    """A hand whose 3D guess is tilted 25 deg from the truth ends closer to the truth once turned to
    project onto its 2D points; a frame without a detection is left as it was."""
    from exoactor.geometry import axis_angle_to_quat_wxyz, quat_wxyz_to_matrix
    from exoactor.motion.hands import refine_hand_rotation

    cam = LookAtCalibration(1280, 720, 50.0, (2.6, -1.3, 1.3), (0.0, 0.0, 0.8)).camera()
    hand = _hands_at(body, 0.4)[1]                     # the right hand, world frame
    wrist = np.array([0.15, -0.25, 1.0])
    truth_opt = (hand - hand[0]) @ cam.rot_world_from_optical   # wrist-relative, camera axes
    rng = np.random.default_rng(5)
    t = 8
    rel = np.zeros((t, 2, 21, 3))
    px = np.zeros((t, 2, 21, 2))
    conf = np.zeros((t, 2))
    wrists = np.tile(wrist, (t, 2, 1))
    tilts = []
    for k in range(t - 1):  # the last frame: no detection
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        tilt = quat_wxyz_to_matrix(axis_angle_to_quat_wxyz(np.radians(25.0) * axis))
        tilts.append(tilt)
        rel[k, 1] = truth_opt @ tilt.T
        uv, _ = cam.project(wrist + truth_opt @ cam.rot_world_from_optical.T)
        px[k, 1] = uv + rng.normal(0, 1.0, uv.shape)
        conf[k, 1] = 0.9
    rel[t - 1, 1] = truth_opt @ tilts[0].T
    out = refine_hand_rotation(rel, px, conf, wrists, cam)
    before = np.linalg.norm(rel[:t - 1, 1] - truth_opt, axis=-1).mean()
    after = np.linalg.norm(out[:t - 1, 1] - truth_opt, axis=-1).mean()
    assert after < 0.6 * before, (before, after)
    np.testing.assert_allclose(np.linalg.norm(out[:, 1], axis=-1), np.linalg.norm(rel[:, 1], axis=-1))  # rigid
    np.testing.assert_array_equal(out[t - 1], rel[t - 1])
    np.testing.assert_array_equal(out[:, 0], rel[:, 0])
    with pytest.raises(ValueError, match=r"\(T, 2, 21, 2\)"):
        refine_hand_rotation(rel, px[:, :, :20], conf, wrists, cam)
