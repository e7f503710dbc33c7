"""orchestrator: serves ``/exoactor/execute_task`` and drives the stage nodes.

Order: planning (fails fast on bad instructions) -> camera image -> embodiment transfer -> the
steps, streamed: while step k is estimated and tracked, step k+1 is already being generated
(see :class:`_Run`). Feedback is published at every stage change and at least once a second,
with every activity in flight and the remote calls so far. Cancel is forwarded to every stage
goal in flight (tracking ramps the robot to its hold pose) and ends the goal CANCELED. Any stage
failure ends it ABORTED with a specific error code, reason and message. Everything lands in the
episode folder, failures included (``timeline.json``: what ran when; ``remote_calls.json``:
calls, retries and seconds per remote backend; ``task.mp4`` + ``task_video.json``: the steps'
videos joined, with per-step timestamps).
"""
from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
import traceback
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from exoactor.action import EstimateMotion, ExecuteTask, GenerateVideo, TrackMotion, TransferEmbodiment
from exoactor.episode import DEFAULT_EPISODE_ROOT, MAX_INSTRUCTION_CHARS, Episode, one_line
from exoactor.media import CAMERA_FILE, save_camera
from exoactor.nodes.calibration_msgs import camera_from_msgs
from exoactor.nodes.conversions import step_from_msg
from exoactor.nodes.images import msg_to_image
from exoactor.nodes.params import ConfigError, declare
from exoactor.nodes.qos import LATCHED_QOS
from exoactor.nodes.spin import ActionClient, spin_node, wait_for
from exoactor.srv import PlanTask
from exoactor.video.io import VideoReadError, write_image_rgb
from exoactor.video.join import SegmentJoiner

R = ExecuteTask.Result
LOCAL_CPU_VIDEO_BACKENDS = ("synthetic",)
"""Video backends that render on this machine's CPU: with ``streaming: auto`` their steps are not overlapped
with execution (on a laptop CPU the rendering would starve the 500 Hz simulator and controller)."""


def instruction_problem(instruction: str) -> str:
    """Why a goal's instruction is refused at the door ("" = acceptable): bounded, printable text."""
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        return f"the instruction has {len(instruction)} characters; at most {MAX_INSTRUCTION_CHARS} are accepted"
    bad = sorted({c for c in instruction if (ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127})
    if bad:
        return f"the instruction contains control characters ({', '.join(repr(c) for c in bad[:5])})"
    return ""


class StageFailed(Exception):
    def __init__(self, code: int, stage: str, message: str, reason: str = ""):
        super().__init__(message)
        self.code, self.stage, self.reason = code, stage, reason


class GoalCanceled(Exception):
    pass


@dataclass
class _Progress:
    """Overall progress bookkeeping: fixed weights for the set-up stages, the rest per step."""

    num_steps: int = 1
    SETUP = {"planning": (0.0, 0.02), "camera": (0.02, 0.03), "embodiment_transfer": (0.03, 0.08)}
    PER_STEP = {"video_generation": (0.0, 0.4), "motion_estimation": (0.4, 0.6), "tracking": (0.6, 1.0)}

    def overall(self, stage: str, stage_progress: float, step: int) -> float:
        if stage in self.SETUP:
            a, b = self.SETUP[stage]
            return a + (b - a) * stage_progress
        if stage == "done":
            return 1.0
        a, b = self.PER_STEP.get(stage, (0.0, 1.0))
        frac = (step + a + (b - a) * stage_progress) / max(self.num_steps, 1)
        return 0.08 + 0.92 * frac


class OrchestratorNode(Node):
    def __init__(self):
        super().__init__("orchestrator")
        p = functools.partial(declare, self)
        self.episode_root = p("episode_root", DEFAULT_EPISODE_ROOT,
                              "folder where one episode folder per goal is written")
        self.camera_timeout_s = p("camera_timeout_s", 10.0,
                                  "how long to wait for a camera image, calibration and pose (s)")
        self.server_timeout_s = p("server_timeout_s", 10.0, "how long to wait for a stage's action server (s)")
        self.stage_timeout_s = p("stage_timeout_s", 600.0, "longest a single stage call may take (s)")
        self.chain_steps = p("chain_steps", True, "true: step k+1's video starts from step k's last frame (generated "
                             "one after the other, overlapping execution); false: every step starts from the "
                             "reference image and all are generated at once")
        self.episode_media = p("episode_media", True, "after every goal, build the episode's four-panel video, plots "
                               "and index.html (seconds of CPU while the robot holds; the result waits for it); "
                               "can be changed while the node runs (ros2 param set)")
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.media_timeout_s = p("episode_media_timeout_s", 300.0, "longest the episode media may take (s)")
        self.streaming = p("streaming", "auto", "true: generate the next step while the current one is estimated and "
                           "executed; false: strictly one stage after the other; auto: true, except for video "
                           f"backends that render on this machine's CPU ({', '.join(LOCAL_CPU_VIDEO_BACKENDS)}), "
                           "whose rendering would compete with the 500 Hz control loop")
        if self.streaming not in ("auto", "true", "false"):
            raise ConfigError(f"parameter 'streaming' must be auto, true or false, got {self.streaming!r}")
        cb = ReentrantCallbackGroup()
        self._image = self._info = self._pose = None
        self._cam_lock = threading.Lock()
        self.create_subscription(Image, "exoactor/camera/image_raw", self._on_image, 1, callback_group=cb)
        self.create_subscription(CameraInfo, "exoactor/camera/camera_info", self._on_info, LATCHED_QOS,
                                 callback_group=cb)
        self.create_subscription(PoseStamped, "exoactor/camera/pose", self._on_pose, LATCHED_QOS, callback_group=cb)
        self.plan_client = self.create_client(PlanTask, "exoactor/plan_task", callback_group=cb)
        self.clients_ = {
            "embodiment_transfer": ActionClient(self, TransferEmbodiment, "exoactor/transfer_embodiment",
                                                callback_group=cb),
            "video_generation": ActionClient(self, GenerateVideo, "exoactor/generate_video", callback_group=cb),
            "motion_estimation": ActionClient(self, EstimateMotion, "exoactor/estimate_motion", callback_group=cb),
            "tracking": ActionClient(self, TrackMotion, "exoactor/track_motion", callback_group=cb),
        }
        self._busy = threading.Lock()
        self.server = ActionServer(self, ExecuteTask, "exoactor/execute_task", execute_callback=self._execute,
                                   goal_callback=lambda _g: GoalResponse.ACCEPT,
                                   cancel_callback=lambda _g: CancelResponse.ACCEPT, callback_group=cb)
        self.get_logger().info("orchestrator ready: send goals to /exoactor/execute_task")

    def _on_image(self, msg: Image) -> None:
        with self._cam_lock:
            self._image = msg

    def _on_info(self, msg: CameraInfo) -> None:
        with self._cam_lock:
            self._info = msg

    def _on_pose(self, msg: PoseStamped) -> None:
        with self._cam_lock:
            self._pose = msg

    def _on_set_parameters(self, params) -> SetParametersResult:
        """``episode_media`` takes effect from the next goal; every other parameter is read at start-up."""
        for prm in params:
            if prm.name == "episode_media":
                if prm.type_ != Parameter.Type.BOOL:
                    return SetParametersResult(successful=False, reason="episode_media must be a boolean")
                self.episode_media = bool(prm.value)
                self.get_logger().info(f"episode media {'on' if self.episode_media else 'off'} from the next goal")
        return SetParametersResult(successful=True)

    def _build_media(self, run: "_Run", episode: Episode, result) -> None:
        """The episode's video, plots and index.html, built by ``python -m exoactor.media`` in a child
        process at niceness 19 (all its threads, MuJoCo's and the encoder's included, yield the CPU to the
        500 Hz simulator and controller while the robot holds); failures only cost the media (logged)."""
        t0 = time.monotonic()
        run.feedback("episode_media", 0.0, "building the episode's video, plots and page")
        cmd = [sys.executable, "-m", "exoactor.media", "--nice", "19", "-q", str(episode.path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.media_timeout_s, check=False)
            outcome = proc.stdout.strip() if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr[-300:]}"
        except (OSError, subprocess.TimeoutExpired) as e:
            outcome = f"{type(e).__name__}: {e}"
        episode.record_time("episode_media", time.monotonic() - t0)
        page = episode.file("index.html")
        episode.log(f"episode page: {page}" if page.is_file() else f"episode media not built: {one_line(outcome)}")
        run.feedback("episode_media", 1.0, f"episode page: {page}" if page.is_file() else "no episode page")

    # ---- the task ---------------------------------------------------------------------------------
    def _execute(self, gh):
        result = ExecuteTask.Result()
        if not self._busy.acquire(blocking=False):
            result.success, result.error_code = False, R.ERROR_BUSY
            result.message = "another task is running; cancel it or wait for it to finish"
            gh.abort()
            return result
        t0 = time.monotonic()
        instruction = gh.request.instruction
        problem = instruction_problem(instruction)
        if problem:  # refused before anything is written: no episode folder, one escaped log line
            self._busy.release()
            result.success, result.error_code, result.failed_stage = False, R.ERROR_INVALID_INSTRUCTION, "planning"
            result.message = problem
            self.get_logger().warning(f"refused a goal: {problem}")
            gh.abort()
            return result
        episode = Episode.create(self.episode_root, instruction)
        episode.write_json("request.json", {"instruction": instruction, "node": self.get_fully_qualified_name(),
                                            "chain_steps": self.chain_steps, "streaming": self.streaming})
        episode.log(f"goal: {one_line(instruction, MAX_INSTRUCTION_CHARS)}")
        run = _Run(self, gh, episode)
        try:
            run.execute(instruction)
            result.success, result.error_code = True, R.ERROR_NONE
            result.message = run.summary
            gh_final = gh.succeed
        except GoalCanceled as e:
            stage, also = run.canceled_where()
            result.success, result.error_code, result.failed_stage = False, R.ERROR_CANCELED, stage
            result.message = f"canceled during {stage}: {e}" + (f" (also stopped: {also})" if also else "")
            gh_final = gh.canceled
        except StageFailed as e:
            result.success, result.error_code, result.failed_stage = False, e.code, e.stage
            result.error_reason = e.reason
            in_step = run.failed_step is not None and e.stage in _Progress.PER_STEP
            where = f" (step {run.failed_step + 1})" if in_step else ""
            result.message = f"{e.stage}{where} failed: {e}"
            gh_final = gh.abort
        except Exception as e:  # noqa: BLE001 - report, keep serving
            result.success, result.error_code, result.failed_stage = False, R.ERROR_INTERNAL, run.stage
            result.message = f"internal error during {run.stage}: {type(e).__name__}: {e}"
            if self.context.ok():
                self.get_logger().error(traceback.format_exc())
            gh_final = gh.abort
        finally:
            self._busy.release()
        result.episode_path = str(episode.path)
        result.total_time_s = float(time.monotonic() - t0)
        result.time_to_first_motion_s = float(run.first_motion_s)
        episode.record_time("total", result.total_time_s)
        if run.first_motion_s >= 0:
            episode.record_time("time_to_first_motion", run.first_motion_s)
        remote = run.remote_totals()
        if remote:
            episode.write_json("remote_calls.json", remote)
        episode.log(f"result: success={result.success} code={result.error_code} {result.message}")
        if self.episode_media and self.context.ok():  # not while the node shuts down
            self._build_media(run, episode, result)
        episode.write_json("result.json", {
            "success": result.success, "error_code": int(result.error_code), "failed_stage": result.failed_stage,
            "message": result.message, "error_reason": result.error_reason, "episode_path": result.episode_path,
            "total_time_s": round(result.total_time_s, 3), "time_to_first_motion_s": round(run.first_motion_s, 3),
            "chain_steps": self.chain_steps, "steps": run.steps_summary, "stages": run.stage_results,
            "remote_calls": remote})
        if not self.context.ok():  # shutting down: the action server's publishers are gone with the context
            try:
                gh_final()
            except Exception:  # noqa: BLE001 - rclpy raises once its context is shut down; nothing to tell
                pass
            return result
        summary = f"{'done' if result.success else 'failed'}: {result.message} (episode {episode.path})"
        if result.success:
            self.get_logger().info(summary)
        else:
            self.get_logger().warning(summary)
        gh_final()
        return result


class _Aborted(Exception):
    """Another activity of the same goal failed: this one stops (the first failure is reported)."""


def _fail_pending(futures: list[Future]) -> None:
    """Wake whoever waits on a future that will now never be set."""
    for f in futures:
        if not f.done():
            f.set_exception(_Aborted())


class _Run:
    """One goal's execution (kept apart from the node so its state dies with the goal).

    Steps are streamed: three activities run at once, each in order over the steps --
    video generation (chained: step k+1 starts from step k's last frame as soon as that frame
    exists; unchained: every step starts from the reference image and all are sent at once, the
    video node enforcing its backend's concurrency), motion estimation of each finished video,
    and tracking of each estimated motion. The robot holds its last pose while the next step is
    not ready and ramps (speed-limited) into each step, so it never jumps. A failure in any
    activity cancels the others; cancel reaches every stage goal in flight.
    """

    def __init__(self, node: OrchestratorNode, gh, episode: Episode):
        self.node, self.gh, self.episode = node, gh, episode
        self.stage = "planning"
        self.step = 0
        self.progress = _Progress()
        self.t0 = time.monotonic()
        self.steps_summary: list[dict] = []
        self.stage_results: dict[str, dict] = {}
        self.summary = ""
        self.first_motion_s = -1.0
        self.failed_step: int | None = None
        self._lock = threading.RLock()
        self._last_fb = 0.0
        self._abort = threading.Event()
        self._first_error: BaseException | None = None
        self._activity: dict[tuple[int, str], tuple[float, str]] = {}
        self._step_progress: dict[tuple[int, str], float] = {}
        self._stage_progress = 0.0  # the current stage's last reported progress (for the heartbeat)
        self._overall_high = 0.0  # overall progress never goes back, whatever order feedback arrives in
        self._timeline: list[dict] = []
        self._remote: dict[str, dict] = {}
        self._canceled: list[tuple[str, int]] = []

    # ---- feedback ---------------------------------------------------------------------------------
    def _overall(self, stage: str, stage_progress: float) -> float:
        if stage in self.progress.SETUP:
            return self.progress.overall(stage, stage_progress, 0)
        if stage in ("done", "episode_media"):  # the media are built after the last step
            return 1.0
        n = max(self.progress.num_steps, 1)
        done = sum((b - a) * self._step_progress.get((k, st), 0.0)
                   for k in range(n) for st, (a, b) in self.progress.PER_STEP.items())
        return 0.08 + 0.92 * done / n

    def feedback(self, stage: str, stage_progress: float, detail: str, step: int = 0) -> None:
        with self._lock:
            if (stage, step) != (self.stage, self.step):
                self.episode.log(f"stage {stage}" + (f" (step {step + 1})" if stage in self.progress.PER_STEP else ""))
            self.stage, self.step, self._stage_progress = stage, step, stage_progress
            if stage in self.progress.PER_STEP:
                # A late or repeated feedback message (a retry restarting at 0) never takes back work done.
                key = (step, stage)
                self._step_progress[key] = max(self._step_progress.get(key, 0.0), stage_progress)
                self._activity[key] = (stage_progress, detail)
            in_flight = "; ".join(f"step {k + 1} {st} {p * 100:.0f}%"
                                  for (k, st), (p, _d) in sorted(self._activity.items()))
            self._overall_high = max(self._overall_high, self._overall(stage, stage_progress))
            fb = ExecuteTask.Feedback(stage=stage, progress=float(self._overall_high),
                                      stage_progress=float(stage_progress), step_index=step,
                                      num_steps=self.progress.num_steps, detail=detail,
                                      elapsed_s=float(time.monotonic() - self.t0), in_flight=in_flight,
                                      remote_calls=self._remote_line())
            self._last_fb = time.monotonic()
            if self.node.context.ok():  # feedback after shutdown would only raise in rclpy
                self.gh.publish_feedback(fb)

    def _heartbeat(self) -> None:
        with self._lock:
            if time.monotonic() - self._last_fb <= 1.0:
                return
            if self._activity:
                (k, st), (p, d) = max(self._activity.items(), key=lambda kv: kv[0])
                self.feedback(st, p, d, k)
            else:
                self.feedback(self.stage, self._stage_progress, f"{self.stage.replace('_', ' ')}", self.step)

    def stopping(self) -> bool:
        """A cancel was requested or the node is shutting down."""
        return bool(self.gh.is_cancel_requested) or not self.node.context.ok()

    def check_cancel(self) -> None:
        if self.stopping():
            raise GoalCanceled("cancel requested" if self.node.context.ok() else "the orchestrator is shutting down")
        if self._abort.is_set():
            raise _Aborted()

    # ---- remote call statistics -------------------------------------------------------------------
    def _note_remote(self, stats_json: str) -> None:
        if not stats_json:
            return
        try:
            d = json.loads(stats_json)
            name, before, after = d["backend"], d.get("before") or {}, d["after"]
        except (ValueError, KeyError, TypeError):
            return
        keys = ("calls", "retries", "errors", "seconds", "bytes_downloaded", "cache_hits")
        with self._lock:
            cur = self._remote.setdefault(name, {"before": {k: before.get(k, 0) for k in keys},
                                                 "after": {k: after.get(k, 0) for k in keys}})
            for k in keys:
                cur["before"][k] = min(cur["before"][k], before.get(k, 0))
                cur["after"][k] = max(cur["after"][k], after.get(k, 0))

    def remote_totals(self) -> dict[str, dict]:
        """Per backend: calls, retries, errors, seconds... spent by this goal."""
        with self._lock:
            return {name: {k: round(v["after"][k] - v["before"][k], 3) for k in v["after"]}
                    for name, v in self._remote.items()}

    def _remote_line(self) -> str:
        return "; ".join(f"{n}: {t['calls']:g} calls, {t['retries']:g} retries, {t['seconds']:.1f} s"
                         + (f", {t['cache_hits']:g} cached" if t.get("cache_hits") else "")
                         for n, t in self.remote_totals().items())

    # ---- the task ---------------------------------------------------------------------------------
    def execute(self, instruction: str) -> None:
        ep = self.episode
        # 1. planning
        self.feedback("planning", 0.0, "decomposing the instruction")
        t = time.monotonic()
        plan = self._plan(instruction)
        ep.record_time("planning", time.monotonic() - t)
        steps = list(plan.steps)
        self.progress.num_steps = len(steps)
        ep.write_json("steps.json", {"backend": plan.backend, "steps": [step_from_msg(s).to_dict() for s in steps]})
        self.feedback("planning", 1.0, f"{len(steps)} step(s): {plan.message}")
        # 2. camera
        self.feedback("camera", 0.0, "waiting for the exocentric camera")
        image, info, pose = self._camera()
        write_image_rgb(ep.file("input.png"), msg_to_image(image))
        save_camera(ep.file(CAMERA_FILE), camera_from_msgs(info, pose.pose))
        # 3. embodiment transfer
        res = self._timed("embodiment_transfer", 0, lambda: self._call(
            "embodiment_transfer", R.ERROR_EMBODIMENT_TRANSFER,
            TransferEmbodiment.Goal(robot_image=image, episode_dir=str(ep.path)), lambda f: (f.progress, f.detail), 0))
        ep.record_time("embodiment_transfer", self._timeline[-1]["end_s"] - self._timeline[-1]["start_s"])
        # 4. the steps, streamed
        self._stream(steps, res.image_path, info, pose)
        self.feedback("done", 1.0, "all steps executed")
        self.summary = f"executed {len(steps)} step(s): {plan.message}"

    def _stream(self, steps, reference: str, info, pose) -> None:
        ep, n = self.episode, len(steps)
        streaming = self.node.streaming != "false"
        chain = self.node.chain_steps or not streaming
        videos: list[Future] = [Future() for _ in range(n)]
        motions: list[Future] = [Future() for _ in range(n)]
        tracked: list[Future] = [Future() for _ in range(n)]  # streaming off: step k+1 waits for these
        joiner = SegmentJoiner(ep.file("task.mp4"))  # built after the last step: never competes with tracking

        def video(k: int, start_image: str):
            action = steps[k].action
            goal = GenerateVideo.Goal(episode_dir=str(ep.path), reference_image_path=reference,
                                      start_image_path=start_image, steps=steps, segment_index=k,
                                      camera_info=info, camera_pose_world=pose.pose)
            return self._timed("video_generation", k, lambda: self._call(
                "video_generation", R.ERROR_VIDEO_GENERATION, goal,
                lambda f: (f.progress, f"step {k + 1}/{n} ({action}): {f.detail}"), k))

        def chained_videos():
            start, overlap = "", streaming
            for k in range(n):
                if not overlap and k > 0 and self._await(tracked[k - 1]) is None:
                    videos[k].set_exception(_Aborted())
                    return
                if not self._settle(videos[k], lambda k=k, s=start: video(k, s)):
                    return
                start = videos[k].result().last_frame_path
                backend = videos[k].result().backend
                if overlap and self.node.streaming == "auto" and backend in LOCAL_CPU_VIDEO_BACKENDS:
                    overlap = False  # from now on step k+1 waits for step k to be executed
                    self.episode.log(f"streaming off: the {backend} video backend renders on this machine's CPU "
                                     "(parameter streaming: true to stream anyway)")

        def estimate_all():
            for k in range(n):
                vid = self._await(videos[k])
                if vid is None:
                    motions[k].set_exception(_Aborted())
                    return
                action = steps[k].action
                goal = EstimateMotion.Goal(video_path=vid.video_path, episode_dir=str(ep.path), segment_index=k,
                                           camera_info=info, camera_pose_world=pose.pose)
                if not self._settle(motions[k], lambda k=k, goal=goal, action=action: self._timed(
                        "motion_estimation", k, lambda: self._call(
                            "motion_estimation", R.ERROR_MOTION_ESTIMATION, goal,
                            lambda f: (f.progress, f"step {k + 1}/{n} ({action}): {f.detail}"), k))):
                    return

        workers = [threading.Thread(target=chained_videos, name="videos", daemon=True)] if chain else [
            threading.Thread(target=self._settle, args=(videos[k], lambda k=k: video(k, "")), name=f"video{k}",
                             daemon=True) for k in range(n)]
        workers.append(threading.Thread(target=estimate_all, name="estimation", daemon=True))
        try:
            for w in workers:
                w.start()
            for k in range(n):
                mot = self._await(motions[k], raise_errors=True)
                action = steps[k].action
                vid = videos[k].result()

                def describe(f, k=k, action=action):
                    if k == 0 and self.first_motion_s < 0 and f.phase in ("ramp_in", "tracking"):
                        self.first_motion_s = time.monotonic() - self.t0
                        self.episode.log(f"robot starts moving at {self.first_motion_s:.2f} s")
                    return f.progress, f"step {k + 1}/{n} ({action}): {f.phase} {f.time_s:.1f} s"

                trk = self._timed("tracking", k, lambda k=k, mot=mot, describe=describe: self._call(
                    "tracking", R.ERROR_TRACKING,
                    TrackMotion.Goal(motion=mot.motion, episode_dir=str(ep.path), segment_index=k, ramp_in=True),
                    describe, k))
                tracked[k].set_result(trk)
                with self._lock:
                    self.steps_summary.append({
                        "action": action, "video": vid.video_path, "motion": mot.motion_path,
                        "trajectory": trk.trajectory_path, "tracking_rmse_rad": round(trk.tracking_rmse_rad, 4),
                        "clamped_commands": int(trk.clamped_commands), "lower_body": trk.lower_body})
        except _Aborted:
            _fail_pending(tracked)
            self._abort.set()
            with self._lock:
                first = self._first_error
            raise (first or StageFailed(R.ERROR_INTERNAL, self.stage, "a step failed")) from None
        except BaseException:
            _fail_pending(tracked)
            self._abort.set()  # stop the other activities (their stage goals get canceled)
            raise
        finally:
            for w in workers:
                w.join(timeout=40.0)
            for k in range(n):  # every step whose video exists, in order (also after a failure or a cancel)
                self._join_ready(joiner, videos, k)
            joiner.close()
            if joiner.steps:
                ep.write_json("task_video.json", {"video": "task.mp4", "fps": joiner.fps, "steps": joiner.steps})

    def _join_ready(self, joiner: SegmentJoiner, videos: list, k: int) -> None:
        """Append step k's video to task.mp4 once (in order; stops at the first missing one)."""
        if len(joiner.steps) != k or not videos[k].done() or videos[k].exception() is not None:
            return
        try:
            joiner.append(k, videos[k].result().video_path)
        except (VideoReadError, OSError, ValueError) as e:
            self.episode.log(f"could not add step {k + 1} to task.mp4: {e}")

    def _settle(self, fut: Future, fn) -> bool:
        """Run ``fn`` in this thread and settle ``fut`` with its result or error; False on error."""
        try:
            fut.set_result(fn())
            return True
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            if not isinstance(e, (_Aborted, GoalCanceled)):
                with self._lock:
                    if self._first_error is None:
                        self._first_error = e
                self._abort.set()
            fut.set_exception(e)
            return False

    def _await(self, fut: Future, raise_errors: bool = False):
        """Wait for another activity's result (cancel and abort honoured); None if it failed."""
        while True:
            try:
                return_value = fut.result(timeout=0.1)
                return return_value
            except FutureTimeout:
                self._heartbeat()
                if self.stopping():
                    if not raise_errors:
                        return None
                    raise GoalCanceled("cancel requested") from None
                if self._abort.is_set() and not raise_errors:
                    return None
            except BaseException as e:  # noqa: BLE001
                if not raise_errors:
                    return None
                with self._lock:
                    first = self._first_error
                if self.stopping():
                    raise GoalCanceled("cancel requested") from None
                raise (first or e) from None

    def _timed(self, stage: str, step: int, fn):
        t = time.monotonic()
        try:
            return fn()
        finally:
            with self._lock:
                self._activity.pop((step, stage), None)
                self._timeline.append({"stage": stage, "step": step, "start_s": round(t - self.t0, 3),
                                       "end_s": round(time.monotonic() - self.t0, 3)})
                if stage in self.progress.PER_STEP:
                    self.episode.record_time(f"step_{step:02d}_{stage}", time.monotonic() - t)
                self.episode.write_json("timeline.json", {"activities": self._timeline,
                                                          "time_to_first_motion_s": round(self.first_motion_s, 3)})

    def canceled_where(self) -> tuple[str, str]:
        """(the most downstream stage that was canceled, the others as text) -- or the current stage."""
        order = ("embodiment_transfer", "video_generation", "motion_estimation", "tracking")
        with self._lock:
            hits = sorted(self._canceled, key=lambda sk: (order.index(sk[0]) if sk[0] in order else -1, -sk[1]))
        if not hits:
            return self.stage, ""
        stage, _ = hits[-1]
        return stage, ", ".join(f"{st.replace('_', ' ')} (step {k + 1})" for st, k in hits[:-1])

    def timeline(self) -> list[dict]:
        with self._lock:
            return list(self._timeline)

    def _plan(self, instruction: str):
        node = self.node
        if not node.plan_client.wait_for_service(timeout_sec=node.server_timeout_s):
            raise StageFailed(R.ERROR_STAGE_UNAVAILABLE, "planning",
                              "the task planner (/exoactor/plan_task) is not running")
        res = wait_for(node.plan_client.call_async(PlanTask.Request(instruction=instruction)), node.stage_timeout_s,
                       self.stopping)
        self.check_cancel()
        if res is None:
            raise StageFailed(R.ERROR_STAGE_UNAVAILABLE, "planning", "the task planner did not answer")
        self._note_remote(res.remote_stats_json)
        self.stage_results["planning"] = {"backend": res.backend, "message": res.message,
                                          "error_reason": res.error_reason}
        if not res.success:
            if res.error_reason:
                raise StageFailed(R.ERROR_PLANNING, "planning", res.message, res.error_reason)
            raise StageFailed(R.ERROR_INVALID_INSTRUCTION, "planning", res.message)
        return res

    def _camera(self):
        node = self.node
        deadline = time.monotonic() + node.camera_timeout_s
        while time.monotonic() < deadline:
            self.check_cancel()
            with node._cam_lock:
                image, info, pose = node._image, node._info, node._pose
            if image is not None and info is not None and pose is not None:
                return image, info, pose
            time.sleep(0.1)
        missing = [n for n, v in (("image", image), ("camera_info", info), ("pose", pose)) if v is None]
        raise StageFailed(R.ERROR_NO_CAMERA_IMAGE, "camera",
                          f"no camera {', '.join(missing)} on /exoactor/camera/* within {node.camera_timeout_s:.0f} s")

    def _call(self, stage: str, error_code: int, goal, describe, step: int):
        """Run one stage action to completion, forwarding feedback, cancel and aborts."""
        node = self.node
        client = node.clients_[stage]
        label = stage.replace("_", " ")
        self.feedback(stage, 0.0, f"starting {label}", step)
        if not client.wait_for_server(timeout_sec=node.server_timeout_s):
            raise StageFailed(R.ERROR_STAGE_UNAVAILABLE, stage, f"the {label} action server is not running")

        def on_feedback(msg) -> None:
            prog, detail = describe(msg.feedback)
            self.feedback(stage, min(max(float(prog), 0.0), 1.0), detail, step)

        gh = wait_for(client.send_goal_async(goal, feedback_callback=on_feedback), node.server_timeout_s, self.stopping)
        self.check_cancel()
        if gh is None:
            raise StageFailed(R.ERROR_STAGE_UNAVAILABLE, stage, f"the {label} server did not answer the goal within "
                              f"{node.server_timeout_s:g} s (overloaded? parameter server_timeout_s)")
        if not gh.accepted:
            raise StageFailed(R.ERROR_STAGE_UNAVAILABLE, stage, f"the {label} server rejected the goal (busy?)")
        result_future = gh.get_result_async()
        deadline = time.monotonic() + node.stage_timeout_s
        canceled = aborted = False
        while not result_future.done():  # polled: a done callback would wait for a free executor thread
            time.sleep(0.1)
            if not node.context.ok():
                raise GoalCanceled("the orchestrator is shutting down")
            if (self.gh.is_cancel_requested or self._abort.is_set()) and not (canceled or aborted):
                canceled = self.gh.is_cancel_requested
                aborted = not canceled
                with self._lock:
                    self._canceled.append((stage, step))
                self.episode.log(f"{'cancel requested' if canceled else 'another step failed'} during {stage} "
                                 f"(step {step + 1}): canceling it")
                gh.cancel_goal_async()
                deadline = min(deadline, time.monotonic() + 30.0)
            if time.monotonic() > deadline:
                gh.cancel_goal_async()
                if aborted:
                    raise _Aborted()
                raise StageFailed(R.ERROR_INTERNAL if not canceled else R.ERROR_CANCELED, stage,
                                  f"{label} did not finish in time")
            self._heartbeat()
        res = result_future.result().result
        self._note_remote(getattr(res, "remote_stats_json", ""))
        reason = getattr(res, "error_reason", "")
        with self._lock:
            self.stage_results[stage if stage not in self.progress.PER_STEP else f"{stage}_{step:02d}"] = {
                "success": bool(res.success), "message": res.message, "backend": getattr(res, "backend", ""),
                **({"error_reason": reason} if reason else {})}
        self.episode.log(f"{stage} (step {step + 1}): {'ok' if res.success else 'FAILED'}: {res.message}")
        if canceled or self.gh.is_cancel_requested:
            raise GoalCanceled(res.message or "cancel requested")
        if aborted:
            raise _Aborted()
        if not res.success:
            self.failed_step = step
            robot = ("lowstate", "fault", "e-stop", "temperature", " C (limit")
            code = R.ERROR_ROBOT_STATE if stage == "tracking" and any(w in res.message for w in robot) else error_code
            raise StageFailed(code, stage, res.message, reason)
        return res


def main(args=None) -> None:
    spin_node(OrchestratorNode, args, threads=6)


if __name__ == "__main__":
    main()
