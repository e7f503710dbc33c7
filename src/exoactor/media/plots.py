"""Episode plots as PNG (matplotlib, Agg): joint tracking, root paths from above, stage timeline."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from exoactor.g1.joints import ARM_INDICES, G1_JOINT_NAMES, LEG_INDICES, WAIST_INDICES
from exoactor.media.episode_data import EpisodeData
from exoactor.media.schedule import Schedule

STAGE_ORDER = ("planning", "embodiment_transfer", "video_generation", "motion_estimation", "tracking")
STAGE_COLORS = {"planning": "#969696", "embodiment_transfer": "#b07cc6", "video_generation": "#4a8ce6",
                "motion_estimation": "#f0aa32", "tracking": "#46be5a"}
JOINT_GROUPS = {"legs": LEG_INDICES, "waist": WAIST_INDICES, "left arm": ARM_INDICES[:7], "right arm": ARM_INDICES[7:]}
DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_joints(ep: EpisodeData, sched: Schedule, path: Path, max_steps: int = 8) -> Path | None:
    """Per executed step (one column each, on the task time axis): commanded vs measured positions of
    the three joints that moved most in that step, and the tracking error per joint group."""
    executed = [w for w in sched.windows if w.executed][:max_steps]
    if not executed:
        return None
    plt = _pyplot()
    n = len(executed)
    fig, axes = plt.subplots(2, n, figsize=(max(9.0, 3.6 * n), 6), dpi=DPI, sharey="row", squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, w in enumerate(executed):
        top, bottom = axes[0, col], axes[1, col]
        cmd, meas = w.log_commanded_rad, w.log_measured_rad
        for n_j, j in enumerate(np.argsort(-(cmd.max(0) - cmd.min(0)))[:3]):
            name = G1_JOINT_NAMES[j].removesuffix("_joint")
            top.plot(w.log_t_s, cmd[:, j], "--", color=colors[n_j], lw=1.2)
            top.plot(w.log_t_s, meas[:, j], "-", color=colors[n_j], lw=1.6, alpha=0.85, label=name)
        top.set_title(f"step {w.step.index + 1}: {w.step.label}", fontsize=9)
        top.legend(fontsize=7, loc="best")
        for g, (name, idx) in enumerate(JOINT_GROUPS.items()):
            err = np.sqrt(np.mean((cmd[:, idx] - meas[:, idx]) ** 2, axis=1))
            bottom.plot(w.log_t_s, err, lw=1.2, color=colors[g + 3], label=name)
        bottom.set_xlabel("task time (s)")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.set_xlim(w.track_start_s, w.track_end_s)
    axes[0, 0].set_ylabel("joint position (rad)")
    axes[1, 0].set_ylabel("tracking error RMS (rad)")
    axes[1, -1].legend(fontsize=7, ncol=2, loc="upper right")
    fig.suptitle("Tracking: commanded (dashed) vs measured (solid), and the error per joint group", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_root_path(ep: EpisodeData, path: Path) -> Path | None:
    """The estimated human root path per step (world x-y, from above), the IK's robot base path,
    the robot's start position and the camera."""
    steps = [s for s in ep.steps if s.motion is not None or s.trajectory is not None]
    if not steps:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6), dpi=DPI)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    pts = [np.zeros((1, 2))]
    for s in steps:
        c = colors[s.index % len(colors)]
        if s.motion is not None:
            xy = s.motion.root_pos_world_m[:, :2]
            ax.plot(xy[:, 0], xy[:, 1], "-", color=c, lw=2, label=f"{s.index + 1}: {s.label} (human)")
            ax.plot(*xy[0], "o", color=c, ms=5)
            ax.plot(*xy[-1], "s", color=c, ms=5)
            pts.append(xy)
        tr = s.trajectory
        if tr is not None and "root_pos_world_m" in tr and len(tr["root_pos_world_m"]):
            xy = np.asarray(tr["root_pos_world_m"])[:, :2]
            ax.plot(xy[:, 0], xy[:, 1], "--", color=c, lw=1.2, label=f"{s.index + 1}: robot base (IK)")
            pts.append(xy)
    ax.plot(0, 0, "k^", ms=9, label="robot at task start")
    ax.annotate("", xy=(0.25, 0), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "k"})
    allp = np.concatenate(pts)
    mid = (allp.min(0) + allp.max(0)) / 2
    half = max(float(np.max(allp.max(0) - allp.min(0))) / 2 + 0.5, 1.0)
    cam = ep.camera
    if cam is not None:
        # The camera is usually metres away: its optical axis (to the floor) is drawn as a line that enters the view.
        p = cam.pos_world_m
        axis = cam.rot_world_from_optical[:, 2]
        reach = (-p[2] / axis[2]) if axis[2] < -1e-6 else 3.0
        tip = p + axis * reach
        ax.plot([p[0], tip[0]], [p[1], tip[1]], ":", color="#555555", lw=1.2,
                label=f"camera axis (camera at {p[0]:.1f}, {p[1]:.1f} m"
                + (", assumed calibration)" if ep.camera_assumed else ")"))
        ax.plot(p[0], p[1], "D", color="#555555", ms=7)
    ax.set_xlim(mid[0] - half, mid[0] + half)
    ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_aspect("equal")
    ax.set_xlabel("world x (m, robot's forward at start)")
    ax.set_ylabel("world y (m, left)")
    ax.set_title("Root path from above (o start, [] end)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_timeline(ep: EpisodeData, sched: Schedule, path: Path) -> Path | None:
    """Gantt chart of the stages per step (timeline.json), the robot's ramp-in/tracking and the time
    to first motion."""
    acts = list(ep.activities)
    planning = ep.timings.get("planning")
    if isinstance(planning, (int, float)) and planning > 0:
        acts.insert(0, {"stage": "planning", "step": 0, "start_s": 0.0, "end_s": float(planning)})
    if not acts:
        return None
    plt = _pyplot()
    stages = [s for s in STAGE_ORDER if any(a["stage"] == s for a in acts)]
    stages += sorted({a["stage"] for a in acts} - set(stages))
    rows = stages + (["robot"] if any(w.executed for w in sched.windows) else [])
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.6), dpi=DPI)
    for a in acts:
        y = rows.index(a["stage"])
        ax.barh(y, a["end_s"] - a["start_s"], left=a["start_s"], height=0.6,
                color=STAGE_COLORS.get(a["stage"], "#a0a0a0"), edgecolor="white")
        if a["stage"] != "planning" and a["stage"] != "embodiment_transfer":
            ax.text((a["start_s"] + a["end_s"]) / 2, y, str(a["step"] + 1), ha="center", va="center", fontsize=7)
    if "robot" in rows:
        y = rows.index("robot")
        for w in sched.windows:
            if w.executed:
                ax.barh(y, w.track_start_s - w.start_s, left=w.start_s, height=0.6, color="#a6dfb0", edgecolor="white")
                ax.barh(y, w.track_end_s - w.track_start_s, left=w.track_start_s, height=0.6, color="#2e8b3e",
                        edgecolor="white")
                ax.text((w.track_start_s + w.track_end_s) / 2, y, str(w.step.index + 1), ha="center", va="center",
                        fontsize=7, color="white")
    first = ep.time_to_first_motion_s
    if first >= 0:
        ax.axvline(first, color="k", lw=1, ls="--")
        ax.text(first, -0.55, f"first motion {first:.1f} s ", fontsize=8, ha="right", va="center")
    total = ep.result.get("total_time_s")
    if isinstance(total, (int, float)) and total > 0:
        ax.axvline(total, color="#aa3333", lw=1)
        ax.text(total, len(rows) - 0.45, f"end {total:.1f} s ", fontsize=8, ha="right", va="center",
                color="#aa3333")
    ax.set_yticks(range(len(rows)), [r.replace("_", " ") + (" (ramp, track)" if r == "robot" else "") for r in rows])
    ax.set_ylim(len(rows) - 0.2, -0.9)
    ax.set_xlabel("task time (s); numbers: step")
    ax.set_title("What ran when")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_specs(ep: EpisodeData, sched: Schedule) -> list[tuple[str, Callable[[Path], Path | None], str]]:
    """(file name, draw(path) -> path or None when there is nothing to draw, why not) of every plot."""
    return [("plot_timeline.png", lambda p: plot_timeline(ep, sched, p), "no timeline"),
            ("plot_tracking.png", lambda p: plot_joints(ep, sched, p), "no executed step (no joint log)"),
            ("plot_root_path.png", lambda p: plot_root_path(ep, p), "no motion or trajectory")]
