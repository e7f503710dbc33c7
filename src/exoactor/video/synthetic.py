"""Offline video backend: renders the parametric human ``anny`` performing the planned steps.

The human stands where the robot stands (the world origin, facing +x) and is rendered through
the calibrated exocentric camera over the reference image, so the video looks like the scene
with a human in the robot's place. Alongside each segment it writes the true 3D keypoints
(``segment_XX_truth.npz``: body joints, both hands' 21 points and their closure), which tests and
benchmarks use as ground truth.
"""
from __future__ import annotations

import argparse
import threading
import time
import queue
from concurrent.futures import Future, TimeoutError as FutureTimeout

import cv2
import numpy as np

from exoactor.geometry import PinholeCamera
from exoactor.progress import Canceled, CancelToken, ProgressCallback
from exoactor.skeleton import HAND_KEYPOINTS, HAND_SIDES, HUMAN_KEYPOINTS
from exoactor.video.anny_body import AnnyBody, OffscreenHumanRenderer
from exoactor.video.base import VideoGenerationError, VideoGenerator, VideoRequest, VideoSegment
from exoactor.video.choreography import segment_poses
from exoactor.video.io import VideoWriter, read_image_rgb, write_image_rgb

BATCH = 16


class _RenderThread:
    """One daemon thread that runs submitted calls in order (an OpenGL context belongs to the thread
    that made it). A daemon, unlike a ThreadPoolExecutor's worker: a process told to stop while a
    frame (or a renderer's first context) takes seconds on a loaded machine exits without waiting."""

    def __init__(self, name: str = "render"):
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        self._q.put((fut, fn, args))
        return fut

    def _run(self) -> None:
        while True:
            fut, fn, args = self._q.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                fut.set_exception(e)


class SyntheticVideoGenerator(VideoGenerator):
    """Renders steps with anny; ``fps`` frames per second of video."""

    name = "synthetic"

    def __init__(self, fps: float = 30.0, **_ignored):
        self.fps = float(fps)
        self._body = None
        self._renderer = None
        self._renderer_cam: PinholeCamera | None = None
        self._lock = threading.Lock()
        # An OpenGL context belongs to the thread that made it: all rendering runs on this one.
        self._gl_thread = _RenderThread()

    def warm_up(self) -> None:
        """Load the body model now (the first load ever builds anny's cache)."""
        with self._lock:
            if self._body is None:
                self._body = AnnyBody()

    def _renderer_for(self, cam: PinholeCamera):
        key = (cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy,
               tuple(np.round(cam.pos_world_m, 6)), tuple(np.round(cam.rot_world_from_optical.ravel(), 6)))
        if self._renderer is None or self._renderer_cam != key:
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = OffscreenHumanRenderer(self._body, cam)
            self._renderer_cam = key
        return self._renderer

    def generate(self, request: VideoRequest, progress: ProgressCallback, cancel: CancelToken) -> VideoSegment:
        self.warm_up()
        fut = self._gl_thread.submit(self._generate, request, progress, cancel)
        while True:  # a cancel (or a node shutting down) returns at once, even mid-frame
            try:
                return fut.result(timeout=0.1)
            except FutureTimeout:
                if cancel.is_set():
                    raise Canceled("video generation canceled") from None

    def _generate(self, request: VideoRequest, progress: ProgressCallback, cancel: CancelToken) -> VideoSegment:
        cam = request.camera
        if request.reference_image_path is None:
            raise VideoGenerationError("the synthetic backend needs a reference image as background")
        bg = read_image_rgb(request.reference_image_path)
        if bg.shape[:2] != (cam.height, cam.width):
            bg = cv2.resize(bg, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
        poses = segment_poses(request.steps, request.segment_index, self.fps)
        video_path, last_path = self.segment_paths(request)
        truth = np.zeros((len(poses), len(HUMAN_KEYPOINTS), 3))
        hand_truth = np.zeros((len(poses), len(HAND_SIDES), len(HAND_KEYPOINTS), 3))
        t0 = time.monotonic()
        with self._lock:
            renderer = self._renderer_for(cam)
            writer = VideoWriter(video_path, self.fps, cam.width, cam.height)
            try:
                frame = bg
                for b0 in range(0, len(poses), BATCH):
                    if cancel.is_set():
                        raise Canceled("video generation canceled")
                    for k, posed in enumerate(self._body.pose_batch(poses[b0:b0 + BATCH])):
                        if cancel.is_set():  # every frame: a loaded machine renders 16 in over 10 s
                            raise Canceled("video generation canceled")
                        frame = renderer.render(posed, bg)
                        writer.write(frame)
                        truth[b0 + k] = posed.keypoints_world_m
                        hand_truth[b0 + k] = posed.hand_keypoints_world_m
                    done = min(b0 + BATCH, len(poses))
                    progress(done, len(poses), f"rendered {done}/{len(poses)} frames")
            finally:
                writer.close()
        write_image_rgb(last_path, frame)
        np.savez_compressed(video_path.with_name(f"segment_{request.segment_index:02d}_truth.npz"),
                            keypoints_world_m=truth, keypoint_names=np.array(HUMAN_KEYPOINTS), fps=self.fps,
                            hand_keypoints_world_m=hand_truth, hand_keypoint_names=np.array(HAND_KEYPOINTS),
                            hand_grip=np.array([[p.grip["l"], p.grip["r"]] for p in poses]),
                            height_m=self._body.height_m)
        return VideoSegment(video_path, last_path, self.fps, len(poses), cam.width, cam.height,
                            f"rendered {len(poses)} frames in {time.monotonic() - t0:.1f} s")


def main() -> None:
    """``python -m exoactor.video.synthetic --warm-up``: build anny's model cache once."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--warm-up", action="store_true", help="load anny once (builds its cache on first use)")
    args = ap.parse_args()
    if args.warm_up:
        t = time.monotonic()
        SyntheticVideoGenerator().warm_up()
        print(f"anny ready in {time.monotonic() - t:.1f} s")


if __name__ == "__main__":
    main()
