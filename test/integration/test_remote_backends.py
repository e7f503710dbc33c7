"""The whole graph with the remote backends pointed at local stand-ins of the real services:
Gemini image embodiment transfer, the OpenAI-compatible and Gemini planners, Veo and Kling.

The stand-ins serve a video of the synthetic human rendered through the simulator's camera (what
a video model would return for this scene), so estimation and tracking downstream run for real.
Each injected failure must end the goal with a specific result while every node keeps serving,
and no key may appear in any output: node logs, episode files, feedback or results.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import rclpy
from action_msgs.msg import GoalStatus

from exoactor.action import ExecuteTask
from exoactor.nodes.task_client import TaskClient
from fakes.domains import domain_id
from fakes.base import Reply
from fakes.gemini import FakeGemini
from fakes.graph import render_clip, start_graph, wait_ready
from fakes.kling import FakeKling
from fakes.openai_compat import FakeOpenAICompat
from fakes.veo import FakeVeo

R = ExecuteTask.Result
GEMINI_KEY = "AIza-test-gemini-SECRET-4c1f9a"
OPENAI_KEY = "sk-test-openai-SECRET-77ab0e"
VEO_KEY = GEMINI_KEY  # Veo is on the Gemini API: the same key
KLING_AK, KLING_SK = "ak-test-kling-SECRET-19e2", "sk-test-kling-SECRET-5d03"
SECRETS = (GEMINI_KEY, OPENAI_KEY, KLING_SK)
TWO_STEPS = {"steps": [
    {"action": "wave", "side": "right", "amount": 0, "amount_unit": "", "direction": "", "duration_s": 2.0,
     "prompt": "The person waves the raised right hand. Static camera, whole body in view."},
    {"action": "raise_arm", "side": "left", "amount": 0, "amount_unit": "", "direction": "", "duration_s": 2.0,
     "prompt": "The person raises the left arm overhead. Static camera, whole body in view."}]}
ONE_STEP = {"steps": TWO_STEPS["steps"][:1]}
FAST = {"backoff_base_s": 0.05, "connect_timeout_s": 2.0, "read_timeout_s": 5.0, "cache_dir": ""}


def _scan_for_secrets(root: Path, texts: list[str]) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits += [f"{p}: {s}" for s in SECRETS if s.encode() in data]
    for t in texts:
        hits += [f"output: {s}" for s in SECRETS if s in t]
    return hits


class Rig:
    """A running graph, its fakes and a task client."""

    def __init__(self, root: Path, video_backend: str, planner: str, chain: bool, clip: bytes):
        self.root = root
        self.gemini = FakeGemini(api_key=GEMINI_KEY)
        self.gemini.default_answer = ONE_STEP
        self.openai = FakeOpenAICompat(api_key=OPENAI_KEY)
        self.openai.default_answer = ONE_STEP
        self.veo = FakeVeo(clip, api_key=VEO_KEY, polls_before_done=2)
        self.kling = FakeKling(clip, access_key=KLING_AK, secret_key=KLING_SK, polls_before_done=2)
        video = {"veo": {"veo.base_url": self.veo.base_url, **{f"veo.{k}": v for k, v in FAST.items()},
                         "veo.poll_interval_s": 0.2, "veo.max_poll_interval_s": 0.5, "veo.deadline_s": 120.0},
                 "kling": {"kling.base_url": self.kling.base_url, **{f"kling.{k}": v for k, v in FAST.items()},
                           "kling.poll_interval_s": 0.2, "kling.max_poll_interval_s": 0.5}}[video_backend]
        planner_params = {"openai": {"openai.base_url": self.openai.api_base, "openai.model": "llama3.1"},
                          "gemini": {"gemini.base_url": self.gemini.base_url}}[planner]
        planner_params.update({f"{planner}.{k}": v for k, v in FAST.items()})
        overrides = {
            "embodiment_transfer": {"gemini.base_url": self.gemini.base_url,
                                    **{f"gemini.{k}": v for k, v in FAST.items()}},
            "task_planner": planner_params,
            "video_generator": video,
            # media: test_graph.py; a stage that hangs is named (and canceled) before the test's own timeout
            "orchestrator": {"episode_media": False, "stage_timeout_s": 240.0},
            # per-frame estimation (the clip fit is tested in test_graph.py): on 2 cores, with the 500 Hz
            # simulator and controller, the fit can make step 1's estimation outlast step 2's generation
            "pose_estimator": {"fit": False},
        }
        env = {"GEMINI_API_KEY": GEMINI_KEY, "OPENAI_API_KEY": OPENAI_KEY,
               "KLING_ACCESS_KEY": KLING_AK, "KLING_SECRET_KEY": KLING_SK}
        self.graph = start_graph(root, {"embodiment_backend": "gemini", "planner_backend": planner,
                                        "video_backend": video_backend, "chain_steps": str(chain).lower(),
                                        "gantry": "true"},  # on the gantry (the default, pinned)
                                 overrides, env)
        self.node = rclpy.create_node(f"exoactor_test_remote_{video_backend}")
        self.client = TaskClient(self.node)
        self.outputs: list[str] = []
        wait_ready(self.client, self.graph)

    def run(self, instruction: str, **kw):
        feedback = []
        user_cb = kw.pop("on_feedback", None)

        def on_fb(fb):
            feedback.append(fb)
            self.outputs.append(f"{fb.stage} {fb.detail} {fb.in_flight} {fb.remote_calls}")
            if user_cb:
                user_cb(fb)

        try:
            status, result = self.client.run(instruction, on_fb, **kw)
        except BaseException:  # what each node did, in the failure's report
            last = feedback[-1] if feedback else None
            print(f"===== last feedback: {last.stage} {last.in_flight!r} {last.detail!r}" if last else
                  "===== no feedback")
            self.print_logs(60)
            raise
        self.outputs.append(f"{result.message} {result.error_reason} {result.episode_path}")
        return status, result, feedback

    def close(self):
        if self.graph is None:
            return
        self.client.close()
        self.node.destroy_node()
        self.graph.stop()
        self.graph = None
        for f in (self.gemini, self.openai, self.veo, self.kling):
            f.close()
        self.print_logs(15)

    def print_logs(self, lines: int) -> None:
        for log in sorted((self.root / "logs").glob("*.log")):
            print(f"===== {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return render_clip(tmp_path_factory.mktemp("clips") / "wave.mp4", "wave", 2.0).read_bytes()


@pytest.fixture(scope="module")
def ros():
    os.environ.setdefault("ROS_DOMAIN_ID", str(domain_id(0)))
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="module")
def veo_rig(ros, clip, tmp_path_factory):
    rig = Rig(tmp_path_factory.mktemp("veo"), "veo", "openai", chain=True, clip=clip)
    yield rig
    rig.close()


def test_gemini_transfer_openai_planner_and_veo_end_to_end(veo_rig):
    rig = veo_rig
    rig.openai.default_answer = TWO_STEPS
    rig.veo.generation_s = 3.0  # ~12 s per clip: long enough for step 1 to be estimated while step 2 is generated
    try:
        status, result, feedback = rig.run("wave with the right hand, then raise the left arm", timeout_s=300)
    finally:
        rig.veo.generation_s = 0.0
    assert status == GoalStatus.STATUS_SUCCEEDED and result.success, result.message
    ep = Path(result.episode_path)
    for f in ("reference.png", "segment_00.mp4", "segment_01.mp4", "motion_01.npz", "trajectory_01.npz",
              "task.mp4", "task_video.json", "timeline.json", "remote_calls.json"):
        assert (ep / f).is_file(), f
    # The Gemini image came back and is the reference (the fake inverts the colours).
    assert rig.gemini.requests and "generateContent" in rig.gemini.requests[-1].path
    # Chained: step 2 started from step 1's last frame, not from the reference image.
    bodies = [r.body for r in rig.veo.requests if r.method == "POST"]
    assert len(bodies) == 2
    images = [b["instances"][0]["image"]["inlineData"]["data"] for b in bodies]
    assert images[0] != images[1]
    joined = json.loads((ep / "task_video.json").read_text())
    assert [s["step"] for s in joined["steps"]] == [0, 1] and joined["steps"][1]["start_s"] > 1.5
    calls = json.loads((ep / "remote_calls.json").read_text())
    assert {"veo", "openai", "gemini"} <= set(calls) and calls["veo"]["calls"] >= 6  # 2 x (submit, polls, download)
    assert any("veo:" in f.remote_calls for f in feedback)
    # Streaming: the robot moved before the last step's video was generated.
    timeline = json.loads((ep / "timeline.json").read_text())["activities"]
    video_1 = next(a for a in timeline if a["stage"] == "video_generation" and a["step"] == 1)
    assert 0 < result.time_to_first_motion_s < video_1["end_s"] + 0.5
    assert any("step 2 video_generation" in f.in_flight and "step 1" in f.in_flight for f in feedback)


@pytest.mark.parametrize("inject,reason,code,fragment", [
    (("predictLongRunning", Reply(401, {"error": {"code": 401, "message": "API key not valid", "status":
                                                  "UNAUTHENTICATED"}})), "auth", R.ERROR_VIDEO_GENERATION,
     "authentication"),
    (("predictLongRunning", Reply(403, {"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}})),
     "permission", R.ERROR_VIDEO_GENERATION, "permission"),
    (("generateContent", Reply(503, {"error": {"message": "overloaded"}}, {"Retry-After": "0"}, )), "server_error",
     R.ERROR_EMBODIMENT_TRANSFER, "server error"),
    (("chat/completions", Reply(200, "{not json")), "bad_response", R.ERROR_PLANNING, "JSON"),
])
def test_injected_failures_end_with_a_specific_result(veo_rig, inject, reason, code, fragment):
    rig = veo_rig
    rig.openai.default_answer = ONE_STEP
    path, reply = inject
    target = {"predictLongRunning": rig.veo, "generateContent": rig.gemini, "chat/completions": rig.openai}[path]
    target.inject(path, reply, times=10)
    try:
        t0 = time.monotonic()
        status, result, _ = rig.run("wave", timeout_s=120)
    finally:
        target.clear_injections()
    assert status == GoalStatus.STATUS_ABORTED and not result.success
    assert result.error_code == code and result.error_reason == reason, result.message
    assert fragment.lower() in result.message.lower() and time.monotonic() - t0 < 60
    saved = json.loads((Path(result.episode_path) / "result.json").read_text())
    assert saved["error_reason"] == reason  # the failed attempt is kept
    assert not rig.graph.dead()


def test_safety_block_is_reported_as_such(veo_rig):
    rig = veo_rig
    rig.veo.script("blocked")
    status, result, _ = rig.run("wave", timeout_s=120)
    assert status == GoalStatus.STATUS_ABORTED and result.error_reason == "content_blocked", result.message
    assert result.failed_stage == "video_generation"


def test_cancel_while_polling_ends_within_two_seconds(veo_rig):
    rig = veo_rig
    rig.veo.script("never")
    asked = []

    def cancel_when(fb):
        polling = any(w in fb.detail for w in ("queued", "processing"))
        if fb.stage == "video_generation" and polling and not asked:
            asked.append(time.monotonic())
            return True
        return False

    status, result, _ = rig.run("wave", cancel_when=cancel_when, timeout_s=120)
    assert asked, "video generation never reported polling"
    assert status == GoalStatus.STATUS_CANCELED and result.error_code == R.ERROR_CANCELED, result.message
    assert time.monotonic() - asked[0] < 2.0 + 0.5  # result delivered within 2 s (+ action round trip)
    # and the graph still serves
    rig.veo.script("success")
    status, result, _ = rig.run("wave", timeout_s=300)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message


def test_no_key_in_any_output(veo_rig):
    rig = veo_rig
    hits = _scan_for_secrets(rig.root, rig.outputs)
    assert not hits, hits
    # and the services did get the keys (the scan is not vacuous)
    assert any(GEMINI_KEY in str(r.headers) for r in rig.gemini.requests)
    assert any(OPENAI_KEY in str(r.headers) for r in rig.openai.requests)


@pytest.fixture(scope="module")
def kling_rig(ros, clip, tmp_path_factory, veo_rig):
    veo_rig.close()  # one graph at a time on 2 cores
    rig = Rig(tmp_path_factory.mktemp("kling"), "kling", "gemini", chain=False, clip=clip)
    yield rig
    rig.close()


def test_gemini_planner_and_kling_unchained_end_to_end(kling_rig):
    rig = kling_rig
    rig.gemini.default_answer = TWO_STEPS
    status, result, _ = rig.run("wave with the right hand, then raise the left arm", timeout_s=300)
    assert status == GoalStatus.STATUS_SUCCEEDED and result.success, result.message
    subs = rig.kling.submissions
    assert len(subs) == 2 and subs[0]["image"] == subs[1]["image"]  # unchained: both from the reference image
    assert rig.kling.tokens_accepted and not rig.kling.tokens_rejected
    assert (Path(result.episode_path) / "segment_01.mp4").is_file()
    # quota exhausted: a specific reason, not retried
    rig.kling.inject("/v1/videos/image2video$", Reply(429, {"code": 1102, "message": "Account balance not enough"}),
                     method="POST", times=5)
    status, result, _ = rig.run("wave with the right hand, then raise the left arm", timeout_s=120)
    assert status == GoalStatus.STATUS_ABORTED and result.error_reason == "quota", result.message
    assert not _scan_for_secrets(rig.root, rig.outputs)
    assert not rig.graph.dead()
