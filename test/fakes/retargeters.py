"""Retargeting backends for testing the retargeting process (importable by its spawned child)."""
from __future__ import annotations

import os
import time

import numpy as np

from exoactor.progress import Canceled
from exoactor.retarget.trajectory import G1JointTrajectory, RetargetingError


class EchoRetargeter:
    """A trajectory from the motion's root, frame by frame (``delay_s`` each); the process id that
    computed it is stored in ``ik_residual_m`` so tests can tell where it ran."""

    name = "echo"

    def __init__(self, delay_s: float = 0.0, **_ignored):
        self.delay_s = float(delay_s)

    def retarget(self, motion, progress, cancel):
        n = motion.num_frames
        for i in range(n):
            if cancel.is_set():
                raise Canceled(f"retargeting canceled at frame {i}")
            time.sleep(self.delay_s)
            progress(i + 1, n, "")
        q = np.zeros((n, 29))
        q[:, 0] = motion.root_pos_world_m[:, 0]
        return G1JointTrajectory(motion.fps, q, np.zeros((n, 29)), motion.root_pos_world_m, motion.root_quat_wxyz,
                                 np.full(n, float(os.getpid())))


class FailingRetargeter(EchoRetargeter):
    name = "failing"

    def retarget(self, motion, progress, cancel):
        raise RetargetingError("IK diverged at frame 2")


class CrashingRetargeter(EchoRetargeter):
    """Dies mid-motion the first time (as a process killed for memory would); works afterwards."""

    name = "crashing"

    def __init__(self, marker: str = "", **kw):
        super().__init__(**kw)
        self.marker = marker

    def retarget(self, motion, progress, cancel):
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(3)
        return super().retarget(motion, progress, cancel)


class UnbuildableRetargeter:
    name = "unbuildable"

    def __init__(self, **_ignored):
        raise FileNotFoundError("no G1 model at /nonexistent/unitree_g1 (set MENAGERIE_ROOT)")


REGISTRY = {n: f"fakes.retargeters:{c}" for n, c in (("echo", "EchoRetargeter"), ("failing", "FailingRetargeter"),
                                                     ("crashing", "CrashingRetargeter"),
                                                     ("unbuildable", "UnbuildableRetargeter"))}
