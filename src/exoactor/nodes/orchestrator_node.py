"""orchestrator: serves ``/exoactor/execute_task`` and drives the stage nodes.

Order: planning (fails fast on bad instructions) -> camera image -> embodiment transfer -> per
step k: video generation -> motion estimation -> tracking. Feedback is published at every stage
change and at least once a second. Cancel is forwarded to the running stage (tracking ramps the
robot to its hold pose) and ends the goal CANCELED. Any stage failure ends it ABORTED with a
specific error code and message. Everything lands in the episode folder, failures included.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from exoactor.action import EstimateMotion, ExecuteTask, GenerateVideo, TrackMotion, TransferEmbodiment
from exoactor.episode import Episode
from exoactor.nodes.common import LATCHED_QOS, declare, msg_to_image, spin_node, wait_for
from exoactor.nodes.conversions import step_from_msg
from exoactor.srv import PlanTask
from exoactor.video.io import write_image_rgb

R = ExecuteTask.Result


class StageFailed(Exception):
    def __init__(self, code: int, stage: str, message: str):
        super().__init__(message)
        self.code, self.stage = code, stage


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
        p = lambda *a: declare(self, *a)  # noqa: E731
        self.episode_root = p("episode_root", "~/.exoactor/episodes", "folder where one episode folder per goal is written")
        self.camera_timeout_s = p("camera_timeout_s", 10.0, "how long to wait for a camera image, calibration and pose (s)")
        self.server_timeout_s = p("server_timeout_s", 10.0, "how long to wait for a stage's action server (s)")
        self.stage_timeout_s = p("stage_timeout_s", 600.0, "longest a single stage call may take (s)")
        cb = ReentrantCallbackGroup()
        self._image = self._info = self._pose = None
        self._cam_lock = threading.Lock()
        self.create_subscription(Image, "exoactor/camera/image_raw", self._on_image, 1, callback_group=cb)
        self.create_subscription(CameraInfo, "exoactor/camera/camera_info", self._on_info, LATCHED_QOS, callback_group=cb)
        self.create_subscription(PoseStamped, "exoactor/camera/pose", self._on_pose, LATCHED_QOS, callback_group=cb)
        self.plan_client = self.create_client(PlanTask, "exoactor/plan_task", callback_group=cb)
        self.clients_ = {
            "embodiment_transfer": ActionClient(self, TransferEmbodiment, "exoactor/transfer_embodiment", callback_group=cb),
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
        episode = Episode.create(self.episode_root, instruction)
        episode.write_json("request.json", {"instruction": instruction, "node": self.get_fully_qualified_name()})
        episode.log(f"goal: {instruction!r}")
        run = _Run(self, gh, episode)
        try:
            run.execute(instruction)
            result.success, result.error_code = True, R.ERROR_NONE
            result.message = run.summary
            gh_final = gh.succeed
        except GoalCanceled as e:
            result.success, result.error_code, result.failed_stage = False, R.ERROR_CANCELED, run.stage
            result.message = f"canceled during {run.stage}: {e}"
            gh_final = gh.canceled
        except StageFailed as e:
            result.success, result.error_code, result.failed_stage = False, e.code, e.stage
            result.message = f"{e.stage} failed: {e}"
            gh_final = gh.abort
        except Exception as e:  # noqa: BLE001 - report, keep serving
            import traceback  # noqa: PLC0415

            result.success, result.error_code, result.failed_stage = False, R.ERROR_INTERNAL, run.stage
            result.message = f"internal error during {run.stage}: {type(e).__name__}: {e}"
            self.get_logger().error(traceback.format_exc())
            gh_final = gh.abort
        finally:
            self._busy.release()
        result.episode_path = str(episode.path)
        result.total_time_s = float(time.monotonic() - t0)
        episode.record_time("total", result.total_time_s)
        episode.log(f"result: success={result.success} code={result.error_code} {result.message}")
        episode.write_json("result.json", {
            "success": result.success, "error_code": int(result.error_code), "failed_stage": result.failed_stage,
            "message": result.message, "episode_path": result.episode_path, "total_time_s": round(result.total_time_s, 3),
            "steps": run.steps_summary, "stages": run.stage_results})
        (self.get_logger().info if result.success else self.get_logger().warn)(
            f"{'done' if result.success else 'failed'}: {result.message} (episode {episode.path})")
        gh_final()
        return result


class _Run:
    """One goal's execution (kept apart from the node so its state dies with the goal)."""

    def __init__(self, node: OrchestratorNode, gh, episode: Episode):
        self.node, self.gh, self.episode = node, gh, episode
        self.stage = "planning"
        self.step = 0
        self.progress = _Progress()
        self.t0 = time.monotonic()
        self.steps_summary: list[dict] = []
        self.stage_results: dict[str, dict] = {}
        self.summary = ""
        self._last_fb = 0.0
        self._last_progress, self._last_detail = 0.0, ""

    def feedback(self, stage: str, stage_progress: float, detail: str) -> None:
        if stage != self.stage:
            self.episode.log(f"stage {stage} (step {self.step})")
        self.stage = stage
        fb = ExecuteTask.Feedback(stage=stage, progress=float(self.progress.overall(stage, stage_progress, self.step)),
                                  stage_progress=float(stage_progress), step_index=self.step,
                                  num_steps=self.progress.num_steps, detail=detail,
                                  elapsed_s=float(time.monotonic() - self.t0))
        self.gh.publish_feedback(fb)
        self._last_fb = time.monotonic()
        self._last_progress, self._last_detail = stage_progress, detail

    def check_cancel(self) -> None:
        if self.gh.is_cancel_requested:
            raise GoalCanceled("cancel requested")

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
        # 3. embodiment transfer
        t = time.monotonic()
        res = self._call("embodiment_transfer", R.ERROR_EMBODIMENT_TRANSFER,
                         TransferEmbodiment.Goal(robot_image=image, episode_dir=str(ep.path)),
                         lambda f: (f.progress, f.detail))
        ep.record_time("embodiment_transfer", time.monotonic() - t)
        reference = res.image_path
        start_image = ""
        # 4. per step: video -> motion -> tracking
        for k in range(len(steps)):
            self.step = k
            action = steps[k].action
            t = time.monotonic()
            vid = self._call("video_generation", R.ERROR_VIDEO_GENERATION,
                             GenerateVideo.Goal(episode_dir=str(ep.path), reference_image_path=reference,
                                                start_image_path=start_image, steps=steps, segment_index=k,
                                                camera_info=info, camera_pose_world=pose.pose),
                             lambda f: (f.progress, f"step {k + 1}/{len(steps)} ({action}): {f.detail}"))
            ep.record_time(f"step_{k:02d}_video_generation", time.monotonic() - t)
            start_image = vid.last_frame_path
            t = time.monotonic()
            mot = self._call("motion_estimation", R.ERROR_MOTION_ESTIMATION,
                             EstimateMotion.Goal(video_path=vid.video_path, episode_dir=str(ep.path), segment_index=k,
                                                 camera_info=info, camera_pose_world=pose.pose),
                             lambda f: (f.progress, f"step {k + 1}/{len(steps)} ({action}): {f.detail}"))
            ep.record_time(f"step_{k:02d}_motion_estimation", time.monotonic() - t)
            t = time.monotonic()
            trk = self._call("tracking", R.ERROR_TRACKING,
                             TrackMotion.Goal(motion=mot.motion, episode_dir=str(ep.path), segment_index=k, ramp_in=True),
                             lambda f: (f.progress, f"step {k + 1}/{len(steps)} ({action}): {f.phase} {f.time_s:.1f} s"))
            ep.record_time(f"step_{k:02d}_tracking", time.monotonic() - t)
            self.steps_summary.append({"action": action, "video": vid.video_path, "motion": mot.motion_path,
                                       "trajectory": trk.trajectory_path, "tracking_rmse_rad": round(trk.tracking_rmse_rad, 4),
                                       "clamped_commands": int(trk.clamped_commands)})
        self.feedback("done", 1.0, "all steps executed")
        self.summary = f"executed {len(steps)} step(s): {plan.message}"

    def _plan(self, instruction: str):
        node = self.node
        if not node.plan_client.wait_for_service(timeout_sec=node.server_timeout_s):
            raise StageFailed(R.ERROR_STAGE_UNAVAILABLE, "planning", "the task planner (/exoactor/plan_task) is not running")
        res = wait_for(node.plan_client.call_async(PlanTask.Request(instruction=instruction)), node.stage_timeout_s,
                       lambda: self.gh.is_cancel_requested)
        self.check_cancel()
        if res is None:
            raise StageFailed(R.ERROR_STAGE_UNAVAILABLE, "planning", "the task planner did not answer")
        self.stage_results["planning"] = {"backend": res.backend, "message": res.message}
        if not res.success:
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

    def _call(self, stage: str, error_code: int, goal, describe):
        """Run one stage action to completion, forwarding feedback and cancel."""
        node = self.node
        client = node.clients_[stage]
        self.feedback(stage, 0.0, f"starting {stage.replace('_', ' ')}")
        if not client.wait_for_server(timeout_sec=node.server_timeout_s):
            raise StageFailed(R.ERROR_STAGE_UNAVAILABLE, stage, f"the {stage.replace('_', ' ')} action server is not running")

        def on_feedback(msg) -> None:
            prog, detail = describe(msg.feedback)
            self.feedback(stage, min(max(float(prog), 0.0), 1.0), detail)

        gh = wait_for(client.send_goal_async(goal, feedback_callback=on_feedback), node.server_timeout_s)
        if gh is None or not gh.accepted:
            raise StageFailed(R.ERROR_STAGE_UNAVAILABLE, stage, f"the {stage.replace('_', ' ')} server rejected the goal (busy?)")
        result_future = gh.get_result_async()
        deadline = time.monotonic() + node.stage_timeout_s
        done = threading.Event()
        result_future.add_done_callback(lambda _f: done.set())
        canceled = False
        while not done.wait(0.1):
            if self.gh.is_cancel_requested and not canceled:
                canceled = True
                self.episode.log(f"cancel requested during {stage}: forwarding")
                gh.cancel_goal_async()
                deadline = min(deadline, time.monotonic() + 30.0)
            if time.monotonic() > deadline:
                gh.cancel_goal_async()
                raise StageFailed(R.ERROR_INTERNAL if not canceled else R.ERROR_CANCELED, stage,
                                  f"{stage.replace('_', ' ')} did not finish in time")
            if time.monotonic() - self._last_fb > 1.0:
                self.feedback(stage, self._last_progress, self._last_detail)
        res = result_future.result().result
        self.stage_results[stage if stage not in self.progress.PER_STEP else f"{stage}_{self.step:02d}"] = {
            "success": bool(res.success), "message": res.message, "backend": getattr(res, "backend", "")}
        self.episode.log(f"{stage}: {'ok' if res.success else 'FAILED'}: {res.message}")
        if canceled or self.gh.is_cancel_requested:
            raise GoalCanceled(res.message or "cancel requested")
        if not res.success:
            code = R.ERROR_ROBOT_STATE if stage == "tracking" and ("lowstate" in res.message or "fault" in res.message) else error_code
            raise StageFailed(code, stage, res.message)
        return res


def main(args=None) -> None:
    spin_node(OrchestratorNode, args, threads=6)


if __name__ == "__main__":
    main()
