"""The episode folder: everything one task goal produced, kept on success and failure.

Layout (``<root>/<YYYYmmdd-HHMMSS>_<slug>/``)::

    request.json        instruction, parameters of the run (no secrets)
    input.png           exocentric camera image of the robot
    reference.png       embodiment-transfer output (the human in the robot's place)
    steps.json          planned steps (StepPrompt fields)
    segment_XX.mp4      generated video per step; segment_XX_last.png its final frame
    motion_XX.npz       estimated human motion per step (HumanMotion.save)
    trajectory_XX.npz   G1 joint trajectory per step (commanded) and tracking log
    timings.json        wall time per stage and step, seconds
    log.txt             timestamped log lines of the orchestrator
    result.json         the action result (success, error code, message)
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path


DEFAULT_EPISODE_ROOT = "~/.exoactor/episodes"
"""Where episode folders go unless the ``episode_root`` parameter says otherwise."""
MAX_INSTRUCTION_CHARS = 2000
"""Longest instruction a goal may carry (planners set their own, smaller limits)."""


class EpisodePathError(ValueError):
    """A path in a goal that is not inside the episode root (refused before anything is read or written)."""


def confine(path: str | Path, root: str | Path, what: str = "path") -> Path:
    """``path`` resolved (symlinks, ``..``) and checked to lie inside ``root``; raises EpisodePathError."""
    if not str(path).strip():
        raise EpisodePathError(f"{what} is empty")
    if "\x00" in str(path):
        raise EpisodePathError(f"{what} contains a NUL character")
    r = Path(os.path.expanduser(str(root))).resolve()
    p = Path(os.path.expanduser(str(path))).resolve()
    if p != r and r not in p.parents:
        raise EpisodePathError(f"{what} {one_line(str(path), 120)} is outside the episode root {r} "
                               "(parameter episode_root); refusing to read or write there")
    return p


def one_line(text: str, limit: int = 200) -> str:
    """``text`` for a log line: quoted, escaped (no newlines or control characters) and bounded."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _slug(text: str, max_len: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s[:max_len].rstrip("-")) or "task"


def write_json_atomic(path: Path, data) -> None:
    """Write JSON through a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp, path)


class Episode:
    """An episode folder with thread-safe timing and log helpers."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._timings: dict[str, float] = {}
        self._t0 = time.monotonic()

    @classmethod
    def create(cls, root: Path | str, instruction: str) -> "Episode":
        root = Path(os.path.expanduser(str(root)))
        root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = root / f"{stamp}_{_slug(instruction)}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = Path(f"{base}-{n}")
        return cls(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def log(self, line: str) -> None:
        stamp = datetime.now().isoformat(timespec="milliseconds")
        with self._lock, open(self.path / "log.txt", "a") as f:
            f.write(f"{stamp} {line}\n")

    def record_time(self, key: str, seconds: float) -> None:
        with self._lock:
            self._timings[key] = round(float(seconds), 3)
            self._timings["total"] = round(time.monotonic() - self._t0, 3)
            write_json_atomic(self.path / "timings.json", self._timings)

    @property
    def timings(self) -> dict[str, float]:
        with self._lock:
            return dict(self._timings)

    def write_json(self, name: str, data) -> Path:
        p = self.path / name
        write_json_atomic(p, data)
        return p
