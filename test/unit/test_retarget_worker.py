"""Retargeting in a child process (the control process does nothing but control)."""
import os
import threading
import time

import numpy as np
import pytest

from exoactor.motion.human_motion import HUMAN_KEYPOINTS, HumanMotion
from exoactor.progress import Canceled
from exoactor.registry import UnknownBackendError
from exoactor.retarget import RETARGET_BACKENDS, RetargetingError
from exoactor.retarget.mink_retargeter import MinkRetargeter
from exoactor.retarget.worker import RetargetWorker
from fakes.retargeters import REGISTRY


def _motion(standing, n=20):
    kp = np.tile(standing, (n, 1, 1))
    kp[:, :, 0] += np.linspace(0.0, 0.3, n)[:, None]  # walks 0.3 m forward
    return HumanMotion(30.0, kp, np.ones((n, len(HUMAN_KEYPOINTS))), kp[:, 0], np.tile([1.0, 0, 0, 0], (n, 1)), 1.72)


@pytest.fixture
def echo():
    w = RetargetWorker(REGISTRY, "echo", delay_s=0.02)
    yield w
    w.close()


def test_the_motion_is_retargeted_in_another_process_with_progress(echo, standing_keypoints):
    motion = _motion(standing_keypoints)
    reports = []
    traj = echo.retarget(motion, lambda d, t, _s: reports.append((d, t)), threading.Event())
    assert echo.name == "echo" and echo.pid not in (None, os.getpid())
    assert np.all(traj.ik_residual_m == echo.pid)  # computed by the child
    np.testing.assert_allclose(traj.positions_rad[:, 0], motion.root_pos_world_m[:, 0])
    assert reports[-1] == (20, 20) and len(reports) == 20


def test_cancel_ends_retargeting_promptly_and_the_worker_serves_the_next_motion(echo, standing_keypoints):
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Canceled, match="canceled at frame"):
        echo.retarget(_motion(standing_keypoints, n=200), None, cancel)
    assert time.monotonic() - t0 < 1.0
    pid = echo.pid
    assert echo.retarget(_motion(standing_keypoints), None, threading.Event()).num_frames == 20
    assert echo.pid == pid  # the same child


def test_a_backend_error_keeps_its_message_and_the_worker(standing_keypoints):
    w = RetargetWorker(REGISTRY, "failing")
    try:
        pid = w.pid
        for _ in range(2):
            with pytest.raises(RetargetingError, match="IK diverged at frame 2"):
                w.retarget(_motion(standing_keypoints))
        assert w.pid == pid
    finally:
        w.close()


def test_a_child_that_dies_fails_the_motion_and_the_next_one_starts_a_new_child(tmp_path, standing_keypoints):
    w = RetargetWorker(REGISTRY, "crashing", marker=str(tmp_path / "crashed"))
    try:
        pid = w.pid
        with pytest.raises(RetargetingError, match=r"died \(exit code 3\)"):
            w.retarget(_motion(standing_keypoints))
        traj = w.retarget(_motion(standing_keypoints))
        assert w.pid != pid and np.all(traj.ik_residual_m == w.pid)
    finally:
        w.close()


def test_a_backend_that_cannot_be_built_fails_at_construction_with_its_message():
    with pytest.raises(FileNotFoundError, match="no G1 model at /nonexistent"):
        RetargetWorker(REGISTRY, "unbuildable")
    with pytest.raises(UnknownBackendError, match="unknown retargeting backend 'nope'; available: crashing"):
        RetargetWorker(REGISTRY, "nope")


def test_close_stops_the_child(standing_keypoints):
    w = RetargetWorker(REGISTRY, "echo")
    proc = w._proc
    w.close()
    assert not proc.is_alive()


def test_the_mink_backend_gives_the_same_trajectory_in_the_child(standing_keypoints):
    motion = _motion(standing_keypoints)
    here = MinkRetargeter(max_joint_velocity_rad_s=6.0).retarget(motion)
    w = RetargetWorker(RETARGET_BACKENDS, "mink", max_joint_velocity_rad_s=6.0)
    try:
        there = w.retarget(motion)
    finally:
        w.close()
    assert w.name == "mink"
    np.testing.assert_allclose(there.positions_rad, here.positions_rad, atol=1e-9)
    np.testing.assert_allclose(there.root_pos_world_m, here.root_pos_world_m, atol=1e-9)
