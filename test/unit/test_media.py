"""Episode media (exoactor.media): four-panel video, plots and index.html from a small synthetic episode,
and from partial episodes (no trajectory, failed at video generation, missing folder)."""
from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np
import pytest

from exoactor.g1.joints import G1_JOINT_NAMES
from exoactor.geometry import PinholeCamera
from exoactor.media import build_episode_media, save_camera
from exoactor.media import panels as P
from exoactor.media.__main__ import main as media_cli
from exoactor.media.episode_data import load_episode
from exoactor.media.schedule import END_LAG_S, Schedule
from exoactor.motion.human_motion import HUMAN_KEYPOINTS, HumanMotion
from exoactor.retarget.trajectory import G1JointTrajectory
from exoactor.video.io import VideoWriter, write_image_rgb

W, H, FPS = 160, 120, 10.0
CAM = PinholeCamera.look_at(W, H, 50.0, [2.6, -1.3, 1.3], [0.0, 0.0, 0.8])
INSTRUCTION = "wave <script>alert('x')</script> & squat"
MESSAGE = "executed 2 step(s): <b>wave</b>"
R_SHOULDER_ROLL = G1_JOINT_NAMES.index("right_shoulder_roll_joint")
R_SHOULDER_PITCH = G1_JOINT_NAMES.index("right_shoulder_pitch_joint")
STEPS = [{"action": "wave", "side": "right", "duration_s": 1.0}, {"action": "squat", "side": "", "duration_s": 1.0}]
# Task time of each step's tracking activity (start, end) and of its ramp-in (s), chosen so the video stays short.
TRACKING = [(0.1, 1.5), (1.5, 2.95)]
RAMP_S = 0.3


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data))


def _segment(path: Path, k: int, n: int = 10) -> None:
    with VideoWriter(path, FPS, W, H) as w:
        for i in range(n):
            img = np.full((H, W, 3), 40 + 20 * k, np.uint8)
            cv2.rectangle(img, (10 + 12 * i, 40), (30 + 12 * i, 80), (250, 200, 50), -1)
            w.write(img)


def _motion(path: Path, standing: np.ndarray, n: int = 10) -> None:
    kp = np.repeat(standing[None], n, axis=0)
    kp[:, HUMAN_KEYPOINTS.index("right_wrist"), 2] += np.linspace(0.0, 0.9, n)  # the arm goes up
    kp[:, HUMAN_KEYPOINTS.index("right_hand"), 2] += np.linspace(0.0, 1.0, n)
    HumanMotion(fps=FPS, keypoints_world_m=kp, confidence=np.ones((n, len(HUMAN_KEYPOINTS))),
                root_pos_world_m=kp[:, 0] + np.linspace([0, 0, 0], [0.2, 0.1, 0], n),
                root_quat_wxyz=np.tile([1.0, 0, 0, 0], (n, 1)), height_m=1.72, source="test").save(path)


def _trajectory(path: Path, k: int, n: int = 10) -> None:
    """What the tracking node writes: the trajectory plus a 200 Hz log while tracking (after the ramp-in)."""
    q = np.zeros((n, 29))
    q[:, R_SHOULDER_ROLL] = np.linspace(0.0, -1.5, n) if k == 0 else np.linspace(-1.5, 0.0, n)
    q[:, R_SHOULDER_PITCH] = np.linspace(0.0, -1.0, n) if k == 0 else np.linspace(-1.0, 0.0, n)
    traj = G1JointTrajectory(FPS, q, np.gradient(q, axis=0) * FPS, np.zeros((n, 3)) + [0, 0, 0.79],
                             np.tile([1.0, 0, 0, 0], (n, 1)))
    log_t = RAMP_S + np.arange(0.0, traj.duration_s, 0.005)
    cmd = np.array([traj.sample(t - RAMP_S)[0] for t in log_t])
    meas = cmd + 0.02 * np.sin(np.arange(len(log_t)))[:, None]
    traj.save(path, log_t_s=log_t, log_commanded_rad=cmd, log_measured_rad=meas, lowcmd_rate_hz=500.0,
              lowcmd_period_p50_ms=2.0, lowcmd_period_p99_ms=3.0)


def make_episode(root: Path, standing: np.ndarray, name: str = "ep") -> Path:
    ep = root / name
    ep.mkdir()
    _write_json(ep / "request.json", {"instruction": INSTRUCTION})
    bg = np.zeros((H, W, 3), np.uint8)
    bg[H // 2:] = (60, 80, 120)
    write_image_rgb(ep / "input.png", bg)
    write_image_rgb(ep / "reference.png", bg)
    save_camera(ep / "camera.json", CAM)
    _write_json(ep / "steps.json", {"backend": "rules", "steps": STEPS})
    acts = [{"stage": "embodiment_transfer", "step": 0, "start_s": 0.0, "end_s": 0.05}]
    for k in range(2):
        _segment(ep / f"segment_{k:02d}.mp4", k)
        write_image_rgb(ep / f"segment_{k:02d}_last.png", bg)
        _motion(ep / f"motion_{k:02d}.npz", standing)
        _trajectory(ep / f"trajectory_{k:02d}.npz", k)
        acts += [{"stage": "video_generation", "step": k, "start_s": 0.05 + 0.05 * k, "end_s": 0.1 + 0.05 * k},
                 {"stage": "motion_estimation", "step": k, "start_s": 0.1 + 0.05 * k, "end_s": 0.15 + 0.05 * k},
                 {"stage": "tracking", "step": k, "start_s": TRACKING[k][0], "end_s": TRACKING[k][1]}]
    _write_json(ep / "timeline.json", {"activities": acts, "time_to_first_motion_s": 0.25})
    _write_json(ep / "timings.json", {"planning": 0.01, "total": 3.0})
    _write_json(ep / "result.json", {
        "success": True, "error_code": 0, "failed_stage": "", "message": MESSAGE, "error_reason": "",
        "total_time_s": 3.0, "time_to_first_motion_s": 0.25,
        "steps": [{"action": s["action"], "trajectory": str(ep / f"trajectory_{k:02d}.npz"),
                   "tracking_rmse_rad": 0.0123, "clamped_commands": 3} for k, s in enumerate(STEPS)]})
    _write_json(ep / "remote_calls.json", {"veo": {"calls": 2, "retries": 1, "seconds": 3.5}})
    (ep / "log.txt").write_text("goal: <script>\n")
    return ep


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return out


def _panel(frame: np.ndarray, row: int, col: int) -> np.ndarray:
    y = P.HEADER_H + row * P.PANEL_H
    return frame[y + 20:y + P.PANEL_H, col * P.PANEL_W:(col + 1) * P.PANEL_W]  # below the panel's title


def _links(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'(?:href|src)="([^"]+)"', page)]


@pytest.fixture(scope="module")
def built(tmp_path_factory, standing_keypoints):
    ep = make_episode(tmp_path_factory.mktemp("media"), standing_keypoints)
    return ep, build_episode_media(ep)


def test_four_panel_video_frames_differ_and_show_the_robot(built):
    ep, res = built
    assert res["video"] is not None and res["video"].is_file(), res["warnings"]
    assert res["video"].suffix == ".webm"  # VP8: plays in browsers (OpenCV's mp4v does not)
    frames = _frames(res["video"])
    sched = Schedule(load_episode(ep), np.zeros(29))
    assert abs(len(frames) - round(sched.duration_s * 15)) <= 1
    assert frames[0].shape == (P.FRAME_H, P.FRAME_W, 3)
    first, mid, last = frames[0], frames[len(frames) // 2], frames[-1]
    assert np.abs(first.astype(int) - mid).mean() > 2.0
    assert np.abs(mid.astype(int) - last).mean() > 1.0
    # (d) the robot: not a blank panel, and it moves (the arm goes up in step 1, down in step 2)
    robot = [_panel(f, 1, 1).astype(int) for f in frames]
    assert robot[len(robot) // 2].std() > 10
    t_up = TRACKING[0][1] - END_LAG_S  # end of step 1: arm up
    i_up = int(np.argmin([abs(sched.task_time(i / 15) - t_up) for i in range(len(frames))]))
    assert np.abs(robot[0] - robot[i_up]).mean() > 1.0
    assert res["video_stats"]["robot_frames"] == len(frames)
    # (c) the skeleton is drawn while tracking
    assert res["video_stats"]["skeleton_frames"] > 5
    skel = _panel(frames[i_up], 1, 0)
    assert (np.abs(skel.astype(int) - P.SIDE_COLORS["right"]).sum(-1) < 60).sum() > 20  # red right-arm bones


def test_plots_exist_and_have_data(built):
    _, res = built
    names = sorted(p.name for p in res["plots"])
    assert names == ["plot_root_path.png", "plot_timeline.png", "plot_tracking.png"], res["warnings"]
    for p in res["plots"]:
        img = cv2.imread(str(p))
        assert img is not None and img.std() > 5
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        colored = (hsv[..., 1] > 80) & (hsv[..., 2] > 60)
        assert colored.sum() > 150, f"{p.name} has no coloured data"


def test_index_html_escapes_episode_text_and_links_resolve(built):
    ep, res = built
    page = res["index_html"].read_text()
    assert "<script>" not in page and "<b>wave</b>" not in page
    assert html.escape(INSTRUCTION) in page and html.escape(MESSAGE) in page
    assert "<video" in page and 'src="episode.webm"' in page
    for name in ("plot_tracking.png", "plot_root_path.png", "plot_timeline.png", "segment_00.mp4", "log.txt"):
        assert f'"{name}"' in page
    assert "0.0123" in page and "veo" in page  # per-step table, remote calls
    links = _links(page)
    assert len(links) > 10
    for ref in links:
        assert "://" not in ref and not ref.startswith("/"), ref
        assert (ep / unquote(ref)).is_file(), ref


def test_step_windows_follow_the_tracking_log(built):
    ep, _ = built
    sched = Schedule(load_episode(ep), np.zeros(29))
    w0, w1 = sched.windows
    logged_s = 0.9 - 0.005  # the log covers the 0.9 s trajectory at 200 Hz, after the ramp-in
    assert w0.track_end_s == pytest.approx(TRACKING[0][1] - END_LAG_S, abs=1e-6)
    assert w0.track_start_s == pytest.approx(w0.track_end_s - logged_s, abs=1e-6)
    assert w0.start_s == pytest.approx(w0.track_start_s - RAMP_S, abs=1e-6)
    assert w1.start_s >= w0.track_end_s
    # half way through step 1's tracking, its video is half way too
    t = (w0.track_start_s + w0.track_end_s) / 2
    i = int(np.argmin([abs(sched.task_time(v) - t) for v in np.arange(0, sched.duration_s, 1 / 15)]))
    m = sched.moment(i / 15)
    assert m.phase == "tracking" and m.window is w0
    assert m.video_time_s == pytest.approx(t - w0.track_start_s, abs=0.1)
    q = sched.joints_at(w0.track_end_s)
    assert q[R_SHOULDER_ROLL] == pytest.approx(-1.5, abs=0.1)


def test_partial_episode_without_trajectories(tmp_path, standing_keypoints):
    ep = make_episode(tmp_path, standing_keypoints)
    for k in range(2):
        (ep / f"trajectory_{k:02d}.npz").unlink()
    (ep / "camera.json").unlink()
    res = build_episode_media(ep)
    assert res["index_html"].is_file()
    text = " ".join(res["warnings"])
    assert "trajectory_00.npz is missing" in text and "camera.json is missing" in text
    assert res["video"] is not None  # the imagined videos and skeletons still play; the robot holds
    assert [p.name for p in res["plots"]] == ["plot_timeline.png", "plot_root_path.png"]
    assert "plot_tracking.png not drawn" in text
    page = res["index_html"].read_text()
    assert "not executed" in page and "trajectory_00.npz is missing" in page


def test_episode_that_failed_at_video_generation(tmp_path, standing_keypoints):
    ep = make_episode(tmp_path, standing_keypoints)
    for f in ep.iterdir():
        if re.match(r"(segment|motion|trajectory)_", f.name):
            f.unlink()
    _write_json(ep / "timeline.json", {"activities": [
        {"stage": "embodiment_transfer", "step": 0, "start_s": 0.0, "end_s": 0.05},
        {"stage": "video_generation", "step": 0, "start_s": 0.05, "end_s": 0.3}], "time_to_first_motion_s": -1.0})
    _write_json(ep / "result.json", {"success": False, "error_code": 10, "failed_stage": "video_generation",
                                     "message": "veo: <quota> exhausted", "error_reason": "quota"})
    res = build_episode_media(ep)
    assert res["index_html"].is_file() and res["video"] is None
    assert any("no episode video" in w for w in res["warnings"])
    page = res["index_html"].read_text()
    assert "Failed" in page and "veo: &lt;quota&gt; exhausted" in page and "quota" in page
    for ref in _links(page):
        assert (ep / unquote(ref)).is_file(), ref


def test_missing_or_damaged_episodes_never_raise(tmp_path, standing_keypoints):
    res = build_episode_media(tmp_path / "nowhere")
    assert res["index_html"] is None and res["warnings"]
    assert media_cli(["-q", str(tmp_path / "nowhere")]) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    res = build_episode_media(empty)
    assert res["index_html"].is_file() and res["video"] is None
    ep = make_episode(tmp_path, standing_keypoints, "damaged")
    (ep / "trajectory_00.npz").unlink()
    (ep / "trajectory_01.npz").write_bytes(b"PK")
    (ep / "motion_01.npz").write_bytes(b"not a zip")
    (ep / "timeline.json").write_text("{half")
    shutil.copy(ep / "input.png", ep / "segment_01.mp4")  # not a video
    res = build_episode_media(ep)
    assert res["index_html"].is_file()
    text = " ".join(res["warnings"])
    for name in ("motion_01.npz", "trajectory_01.npz", "timeline.json", "segment_01.mp4"):
        assert f"{name} is unreadable" in text
