"""The goal's overall progress never goes back, whatever order and timing the stages' feedback has."""
import random
import types

from exoactor.nodes.orchestrator_node import _Run


class _Goal:
    def __init__(self):
        self.sent = []
        self.is_cancel_requested = False

    def publish_feedback(self, fb):
        self.sent.append(fb)


def _run(num_steps=2):
    node = types.SimpleNamespace(context=types.SimpleNamespace(ok=lambda: True))
    episode = types.SimpleNamespace(log=lambda *_a, **_k: None)
    gh = _Goal()
    run = _Run(node, gh, episode)
    run.progress.num_steps = num_steps
    return run, gh


def _monotonic(values):
    return all(b >= a - 1e-9 for a, b in zip(values, values[1:]))


def test_heartbeat_between_stages_repeats_the_last_progress_not_zero():
    run, gh = _run()
    run.feedback("embodiment_transfer", 0.0, "starting")
    run.feedback("embodiment_transfer", 0.9, "painting")
    run._last_fb = 0.0  # more than a second of silence
    run._heartbeat()
    progress = [f.progress for f in gh.sent]
    assert len(progress) == 3 and _monotonic(progress), progress
    assert gh.sent[-1].stage_progress == 0.9


def test_a_late_or_restarted_stage_feedback_does_not_take_back_work():
    run, gh = _run()
    run.feedback("video_generation", 0.0, "starting", 0)
    run.feedback("video_generation", 0.8, "rendering", 0)
    run.feedback("video_generation", 0.0, "retry after HTTP 503", 0)  # a retry restarts at 0
    run.feedback("motion_estimation", 0.5, "estimating", 0)
    run.feedback("video_generation", 0.3, "late message", 0)  # arrives after the next stage began
    progress = [f.progress for f in gh.sent]
    assert _monotonic(progress), progress
    assert gh.sent[2].stage_progress == 0.0  # the stage's own progress is reported as it is


def test_random_interleavings_of_pipelined_steps_stay_monotonic():
    rng = random.Random(7)
    stages = ["video_generation", "motion_estimation", "tracking"]
    for _ in range(50):
        run, gh = _run(num_steps=3)
        for st in ("planning", "camera", "embodiment_transfer"):
            for p in sorted(rng.random() for _ in range(3)):
                run.feedback(st, p, st)
            if rng.random() < 0.5:
                run._last_fb = 0.0
                run._heartbeat()
        for _ in range(60):
            step, st = rng.randrange(3), rng.choice(stages)
            run.feedback(st, rng.random(), "x", step)
            if rng.random() < 0.2:
                run._activity.pop((step, st), None)  # a stage ended
            if rng.random() < 0.2:
                run._last_fb = 0.0
                run._heartbeat()
        run.feedback("done", 1.0, "all steps executed")
        progress = [f.progress for f in gh.sent]
        assert _monotonic(progress) and progress[-1] == 1.0, progress
