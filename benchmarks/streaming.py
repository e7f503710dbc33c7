#!/usr/bin/env python3
"""Streaming benchmark: the whole graph with the paper's remote latencies simulated by local stand-ins.

    source scripts/env.sh && python benchmarks/streaming.py [--time-scale 1.0] [--out DIR]

Stand-ins (test/fakes): an OpenAI-compatible planner answering after 2.5 s (the paper's task
decomposition), Gemini image embodiment transfer after 10.7 s, and Veo generating 13.2 s per
second of requested video (Veo bills whole 4/6/8 s clips). They return videos of the synthetic
human doing each step, rendered through the simulator's camera, so estimation (MediaPipe) and
tracking (MuJoCo G1 at 500 Hz) run for real on this machine. Three runs of the same three-step
task: streaming with chaining (default), streaming without chaining (every step from the
reference image, generated at once), and strictly sequential (`streaming: false`).

Printed per run: total, time to first robot motion, the critical path (planning + embodiment
transfer + the chained generations + estimation and tracking of the last step) and the ratios
the issue asks for. ``--time-scale`` multiplies every simulated latency (0.25 for a quick look).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))

INSTRUCTION = "wave with the right hand, then raise the left arm, then squat"
PLAN = {"steps": [
    {"action": "wave", "side": "right", "duration_s": 3.0, "prompt": "The person waves the raised right hand."},
    {"action": "raise_arm", "side": "left", "duration_s": 2.0, "prompt": "The person raises the left arm overhead."},
    {"action": "squat", "side": "", "duration_s": 3.0, "prompt": "The person squats down and stands back up."}]}
KEY = "benchmark-key-not-secret"


def run_mode(name: str, orchestrator: dict, clips: dict, scale: float, out: Path) -> dict:
    import rclpy

    from exoactor.nodes.task_client import TaskClient
    from fakes.gemini import FakeGemini
    from fakes.graph import start_graph, wait_ready
    from fakes.openai_compat import FakeOpenAICompat
    from fakes.veo import FakeVeo

    def clip_for(job) -> bytes:
        prompt = json.dumps(job.body).lower()
        for key, data in clips.items():
            if key in prompt:
                return data
        return clips["waves"]

    gemini, llm = FakeGemini(api_key=KEY), FakeOpenAICompat(api_key=KEY)
    llm.default_answer = PLAN
    gemini.set_latency(r":generateContent$", 10.7 * scale)
    llm.set_latency(r"/chat/completions$", 2.5 * scale)
    veo = FakeVeo(clip_for, api_key=KEY, polls_before_done=1, generation_s=13.2 * scale)
    fast = {"cache_dir": "", "backoff_base_s": 0.2}
    overrides = {
        "embodiment_transfer": {"gemini.base_url": gemini.base_url, **{f"gemini.{k}": v for k, v in fast.items()}},
        "task_planner": {"openai.base_url": llm.api_base, **{f"openai.{k}": v for k, v in fast.items()}},
        "video_generator": {"veo.base_url": veo.base_url, "veo.poll_interval_s": 0.5, "veo.max_poll_interval_s": 1.0,
                            "veo.max_concurrent": 4, **{f"veo.{k}": v for k, v in fast.items()}},
        "orchestrator": {"streaming": orchestrator["streaming"], "episode_media": False},
    }
    env = {"GEMINI_API_KEY": KEY, "OPENAI_API_KEY": KEY}
    graph = start_graph(out / name, {"embodiment_backend": "gemini", "planner_backend": "openai",
                                     "video_backend": "veo", "chain_steps": str(orchestrator["chain_steps"]).lower(),
                                     "gantry": "true"},  # the squat needs the gantry
                        overrides, env)
    node = rclpy.create_node(f"streaming_benchmark_{name}")
    client = TaskClient(node)
    try:
        wait_ready(client, graph)
        time.sleep(3.0)  # let every node finish starting
        status, result = client.run(INSTRUCTION, timeout_s=1800)
    finally:
        client.close()
        node.destroy_node()
        graph.stop()
        for f in (gemini, llm, veo):
            f.close()
    if not result.success:
        raise SystemExit(f"{name}: the task failed: {result.message} (logs in {out / name / 'logs'})")
    ep = Path(result.episode_path)
    acts = json.loads((ep / "timeline.json").read_text())["activities"]

    def dur(stage, step=None):
        return sum(a["end_s"] - a["start_s"] for a in acts if a["stage"] == stage and step in (None, a["step"]))

    n = len(PLAN["steps"])
    planning = json.loads((ep / "timings.json").read_text()).get("planning", 0.0)
    critical = planning + dur("embodiment_transfer") + dur("video_generation") + \
        dur("motion_estimation", n - 1) + dur("tracking", n - 1)
    est0_end = next(a["end_s"] for a in acts if a["stage"] == "motion_estimation" and a["step"] == 0)
    return {"mode": name, "total_s": result.total_time_s, "first_motion_s": result.time_to_first_motion_s,
            "step1_estimated_s": est0_end, "critical_path_s": critical, "episode": str(ep)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-scale", type=float, default=1.0, help="factor on every simulated latency")
    ap.add_argument("--out", type=Path, default=None, help="folder for logs and episodes (default: a temp dir)")
    ap.add_argument("--modes", default="chained,unchained,sequential",
                    help="comma-separated subset of chained, unchained, sequential (earlier figures in "
                         "--out/streaming.json "
                         "are kept and merged)")
    a = ap.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="exoactor-streaming-"))
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 101))
    import rclpy

    from fakes.graph import render_clip

    print(f"[benchmark] rendering the stand-in videos into {out}/clips ...", flush=True)
    clips = {key: render_clip(out / "clips" / f"{s['action']}.mp4", s["action"], s["duration_s"],
                              s["side"] or "right").read_bytes()
             for key, s in zip(("waves", "raises", "squats"), PLAN["steps"])}
    rclpy.init()
    saved = out / "streaming.json"
    rows = [r for r in (json.loads(saved.read_text()) if saved.is_file() else [])
            if r["mode"] not in a.modes.split(",")]
    modes = {"chained": {"chain_steps": True, "streaming": "true"},
             "unchained": {"chain_steps": False, "streaming": "true"},
             "sequential": {"chain_steps": True, "streaming": "false"}}
    try:
        for name, orch in modes.items():
            if name not in a.modes.split(","):
                continue
            print(f"[benchmark] {name} ...", flush=True)
            rows.append(run_mode(name, orch, clips, a.time_scale, out))
            print(f"[benchmark] {name}: {json.dumps(rows[-1])}", flush=True)
    finally:
        rclpy.try_shutdown()
    rows.sort(key=lambda r: list(modes).index(r["mode"]))
    seq = next((r["total_s"] for r in rows if r["mode"] == "sequential"), float("nan"))
    print(f"\nthree-step task, simulated latencies x{a.time_scale:g} (planning 2.5 s, embodiment transfer 10.7 s, "
          "video 13.2 s per second of requested video)")
    print(f"{'mode':<11} {'total s':>8} {'first motion s':>15} {'step 1 estimated s':>19} {'critical path s':>16} "
          f"{'total/critical':>15} {'total/sequential':>17}")
    for r in rows:
        print(f"{r['mode']:<11} {r['total_s']:>8.1f} {r['first_motion_s']:>15.1f} {r['step1_estimated_s']:>19.1f} "
              f"{r['critical_path_s']:>16.1f} {r['total_s'] / r['critical_path_s']:>15.3f} {r['total_s'] / seq:>17.3f}")
    saved.write_text(json.dumps(rows, indent=2))
    print(f"\nfigures: {out / 'streaming.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
