"""The offline imagination loop on real pixels: anny renders a step, MediaPipe reads it back."""
import threading
from pathlib import Path

import numpy as np
import pytest

from exoactor.geometry import DEFAULT_CALIBRATION
from exoactor.motion.human_motion import MotionEstimationError
from exoactor.motion.mediapipe_estimator import MediaPipeEstimator
from exoactor.planning.rules import RuleBasedPlanner
from exoactor.progress import no_progress
from exoactor.skeleton import KP
from exoactor.video.base import VideoGenerationError, VideoRequest
from exoactor.video.file_backend import FileVideoGenerator
from exoactor.video.io import write_image_rgb, write_video
from exoactor.video.synthetic import SyntheticVideoGenerator

CAM = DEFAULT_CALIBRATION.camera()



@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    d = tmp_path_factory.mktemp("episode")
    write_image_rgb(d / "reference.png", np.full((480, 640, 3), 110, np.uint8))
    steps = RuleBasedPlanner().plan("raise the left arm")
    gen = SyntheticVideoGenerator(fps=15.0)
    seg = gen.generate(VideoRequest(d, steps, 0, d / "reference.png", None, CAM), no_progress, threading.Event())
    return d, seg


def test_synthetic_video_has_a_human_where_the_robot_stands(rendered):
    d, seg = rendered
    assert seg.num_frames == 30 and (seg.width, seg.height) == (640, 480)
    assert seg.video_path.is_file() and seg.last_frame_path.is_file()
    truth = np.load(d / "segment_00_truth.npz")["keypoints_world_m"]
    assert np.abs(truth[0, KP["pelvis"], :2]).max() < 0.05  # at the world origin, where the robot stands
    assert truth[-1, KP["left_wrist"], 2] > truth[-1, KP["head"], 2]  # the left arm ends raised


class _SetAfter:
    """A cancel token that turns set on its ``n``-th check."""

    def __init__(self, n: int):
        self.n, self.checks = n, 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks >= self.n


def test_synthetic_video_stops_within_a_frame_when_canceled(tmp_path):
    from exoactor.progress import Canceled

    write_image_rgb(tmp_path / "reference.png", np.full((480, 640, 3), 110, np.uint8))
    steps = RuleBasedPlanner().plan("raise the left arm")
    gen = SyntheticVideoGenerator(fps=15.0)
    cancel, reports = _SetAfter(4), []  # the batch check, then three frames
    with pytest.raises(Canceled):
        gen.generate(VideoRequest(tmp_path, steps, 0, tmp_path / "reference.png", None, CAM),
                     lambda d, t, _s: reports.append(d), cancel)
    assert cancel.checks == 4 and not reports  # stopped inside the first batch of 16 frames


def test_mediapipe_reads_back_the_rendered_motion(rendered):
    d, seg = rendered
    m = MediaPipeEstimator().estimate(seg.video_path, CAM, no_progress, threading.Event())
    truth = np.load(d / "segment_00_truth.npz")["keypoints_world_m"]
    assert m.num_frames == 30 and not m.frame_flags.any()
    root_err = np.linalg.norm(m.root_pos_world_m - truth[:, KP["pelvis"]], axis=1).mean()
    body = [KP[n] for n in ("left_shoulder", "right_shoulder", "left_elbow", "left_wrist", "left_knee", "right_knee",
                            "left_ankle")]
    mpjpe = np.linalg.norm(m.keypoints_world_m[:, body] - truth[:, body], axis=2).mean()
    assert root_err < 0.2 and mpjpe < 0.2, (root_err, mpjpe)
    assert m.keypoint("left_wrist")[-1, 2] > m.keypoint("left_shoulder")[-1, 2]  # arm up is read as arm up
    assert 1.4 < m.height_m < 1.9
    assert not m.has_hands  # hands are opt-in (mediapipe.hands)


def test_video_without_a_person_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.mp4"
    write_video(path, [np.full((480, 640, 3), 90, np.uint8)] * 10, 15.0)
    with pytest.raises(MotionEstimationError, match="no person"):
        MediaPipeEstimator().estimate(path, CAM, no_progress, threading.Event())


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_corrupt_or_missing_video_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MotionEstimationError, match="no frames|cannot open|not found"):
        MediaPipeEstimator().estimate(path, CAM, no_progress, threading.Event())
    with pytest.raises(MotionEstimationError, match="not found"):
        MediaPipeEstimator().estimate(tmp_path / "missing.mp4", CAM, no_progress, threading.Event())


def test_tiny_video_is_refused(tmp_path):
    path = tmp_path / "tiny.mp4"
    write_video(path, [np.zeros((32, 48, 3), np.uint8)] * 5, 15.0)
    with pytest.raises(MotionEstimationError, match="at least 64"):
        MediaPipeEstimator().estimate(path, CAM, no_progress, threading.Event())


def test_a_video_too_long_to_fit_at_once_is_refused_before_any_work(tmp_path, rendered):
    _, seg = rendered
    reports = []
    with pytest.raises(MotionEstimationError, match="2 s long .*at most 1 s .*split it"):
        MediaPipeEstimator(max_video_s=1.0).estimate(seg.video_path, CAM, lambda *a: reports.append(a),
                                                     threading.Event())
    assert not reports
    with pytest.raises(ValueError, match="max_video_s must be positive"):
        MediaPipeEstimator(max_video_s=0)


def test_a_huge_video_gives_the_motion_of_the_same_clip_at_its_own_size(tmp_path, rendered):
    from exoactor.video.io import read_video_frames

    _, seg = rendered
    import cv2

    big = tmp_path / "huge.mp4"  # 2560x1920: scaled to 1280 wide for the detector, pixels mapped back
    write_video(big, [cv2.resize(f, (2560, 1920), interpolation=cv2.INTER_LINEAR)
                      for f in read_video_frames(seg.video_path)], 15.0)
    small = MediaPipeEstimator().estimate(seg.video_path, CAM, no_progress, threading.Event())
    huge = MediaPipeEstimator().estimate(big, CAM, no_progress, threading.Event())
    assert huge.num_frames == small.num_frames
    diff = np.linalg.norm(huge.keypoints_world_m - small.keypoints_world_m, axis=-1)
    assert np.median(diff) < 0.03, np.median(diff)


def test_a_frame_of_another_size_than_the_video_header_is_a_clear_error(rendered, monkeypatch):
    """A stream whose frames change size part-way (a spliced file) would be mapped through the wrong
    pixel scale: refused, naming the frame, instead of a silently wrong motion."""
    import exoactor.motion.mediapipe_estimator as me
    from exoactor.video.io import read_video_frames

    _, seg = rendered

    def spliced(path):
        for i, frame in enumerate(read_video_frames(path)):
            yield frame if i < 4 else frame[::2, ::2]

    monkeypatch.setattr(me, "read_video_frames", spliced)
    with pytest.raises(MotionEstimationError, match=r"frame 4 of .* is \d+x\d+, the video says \d+x\d+"):
        MediaPipeEstimator().estimate(seg.video_path, CAM, no_progress, threading.Event())


def test_a_truncated_video_gives_the_frames_it_has_or_a_clear_error(tmp_path, rendered):
    _, seg = rendered
    data = seg.video_path.read_bytes()
    for keep in (0.6, 0.2):
        cut = tmp_path / f"cut_{keep}.mp4"
        cut.write_bytes(data[: int(len(data) * keep)])
        try:
            m = MediaPipeEstimator().estimate(cut, CAM, no_progress, threading.Event())
        except MotionEstimationError as e:
            assert str(e)
        else:
            assert 2 <= m.num_frames <= 30 and np.isfinite(m.keypoints_world_m).all()


def test_file_backend_copies_user_videos_and_checks_count(tmp_path, rendered):
    _, seg = rendered
    steps = RuleBasedPlanner().plan("wave")
    out = FileVideoGenerator(video_paths=[str(seg.video_path)]).generate(
        VideoRequest(tmp_path, steps, 0, None, None, CAM), no_progress, threading.Event())
    assert out.num_frames == 30 and Path(out.video_path).is_file()
    with pytest.raises(VideoGenerationError, match="1 video\\(s\\) for 2 planned step"):
        FileVideoGenerator(video_paths=[str(seg.video_path)]).generate(
            VideoRequest(tmp_path, RuleBasedPlanner().plan("wave then squat"), 0, None, None, CAM), no_progress,
            threading.Event())
    with pytest.raises(VideoGenerationError, match="not found"):
        FileVideoGenerator(video_paths=[str(tmp_path / "nope.mp4")]).generate(
            VideoRequest(tmp_path, steps, 0, None, None, CAM), no_progress, threading.Event())


def test_a_cancel_returns_at_once_while_the_render_thread_is_busy_and_that_thread_never_holds_up_exit():
    import threading
    import time

    from exoactor.progress import Canceled
    from exoactor.video.synthetic import SyntheticVideoGenerator

    gen = SyntheticVideoGenerator()
    gen.warm_up = lambda: None  # no body model needed: the render itself is the stand-in below
    release = threading.Event()
    gen._generate = lambda *_a: release.wait(30.0)  # a frame (or a first GL context) that takes long
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Canceled):
        gen.generate(None, lambda *_a: None, cancel)
    assert time.monotonic() - t0 < 1.5
    workers = [t for t in threading.enumerate() if t.name == "render"]
    assert workers and all(t.daemon for t in workers)  # interpreter exit does not wait for it
    release.set()
