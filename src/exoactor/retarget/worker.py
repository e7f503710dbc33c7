"""Retargeting in its own process, so the control loop's process does nothing but control.

:class:`RetargetWorker` has the interface of a retargeting backend (``name``,
``retarget(motion, progress, cancel)``) but runs the backend in a child process: the IK's
seconds of Python never hold the control process's GIL, where they would delay the 500 Hz loop
(a normal-priority thread holding the GIL while the machine is busy stalls a real-time thread
waiting for it). The child is started with ``spawn`` (forking a process with DDS and executor
threads is unsafe), builds the backend once, then serves one motion at a time:

    parent -> child: ("retarget", HumanMotion)
    child -> parent: ("progress", done, total, detail) ..., then ("done", G1JointTrajectory)
                     or ("error", exception type name, message)

A cancel (or a stop of execution) sets a shared event the backend polls between frames. A child
that dies (killed, out of memory) fails the running goal with its exit status, and the next goal
starts a fresh one. Once its backend is built, the child runs at the lowest CPU priority (nice 19):
on a machine with few cores it yields to the control loop, the simulator and the other stages.
ROS-free.
"""
from __future__ import annotations

import multiprocessing as mp
import signal
import threading
import time

from exoactor.motion.human_motion import HumanMotion
from exoactor.progress import Canceled, CancelToken, ProgressCallback, no_progress
from exoactor.realtime import lower_process_priority, reset_to_normal_priority
from exoactor.registry import UnknownBackendError
from exoactor.retarget.trajectory import G1JointTrajectory, RetargetingError

START_TIMEOUT_S = 120.0
"""How long the child may take to import and build its backend."""
POLL_S = 0.05
NICE = 19


def _child(registry: dict, backend: str, kwargs: dict, conn, cancel, nice: int) -> None:
    """The child process: build the backend, then retarget each motion sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C: the parent stops this process
    reset_to_normal_priority()  # started from a real-time thread, it would inherit SCHED_FIFO
    try:
        from exoactor.registry import load_backend  # noqa: PLC0415

        retargeter = load_backend(registry, backend, "retargeting", **kwargs)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it at start-up
        conn.send(("error", type(e).__name__, str(e)))
        return
    # Built at normal priority (a one-off, before any goal): at nice 19 on a busy machine the imports
    # alone took over START_TIMEOUT_S. Every thread made so far (torch's, say) and later ones yield.
    lower_process_priority(nice)
    conn.send(("ready", getattr(retargeter, "name", backend)))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if request[0] == "quit":
            return
        _, motion = request

        def progress(done: int, total: int, detail: str) -> None:
            conn.send(("progress", done, total, detail))

        try:
            traj = retargeter.retarget(motion, progress, cancel)
            conn.send(("done", traj))
        except Canceled as e:
            conn.send(("canceled", str(e)))
        except Exception as e:  # noqa: BLE001 - the parent raises it as a RetargetingError
            conn.send(("error", type(e).__name__, str(e)))


class RetargetWorker:
    """A retargeting backend (from ``registry``) run in a child process; one motion at a time.

    ``kwargs`` go to the backend's constructor (picklable values). Construction starts the child
    and waits until the backend is built: a backend that cannot be built raises here, with its
    own message (RetargetingError, or the backend's error type when it is a builtin).
    """

    def __init__(self, registry: dict, backend: str, nice: int = NICE, start_timeout_s: float = START_TIMEOUT_S,
                 **kwargs):
        if backend not in registry:  # the registry's own error, before a process is started
            raise UnknownBackendError(f"unknown retargeting backend {backend!r}; available: "
                                      f"{', '.join(sorted(registry))}")
        self._args = (dict(registry), backend, dict(kwargs))
        self._nice = int(nice)
        self._start_timeout_s = float(start_timeout_s)
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._proc = None
        self._conn = None
        self._cancel = None
        self.name = backend
        self._start()

    # ---- the child -------------------------------------------------------------------------
    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._cancel = self._ctx.Event()
        self._proc = self._ctx.Process(target=_child, args=(*self._args, child, self._cancel, self._nice),
                                       name=f"exoactor-retarget-{self._args[1]}", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        deadline = time.monotonic() + self._start_timeout_s
        while not parent.poll(POLL_S):
            if not self._proc.is_alive():
                raise RetargetingError(f"the retargeting process exited at start-up (exit code {self._proc.exitcode})")
            if time.monotonic() > deadline:
                self.close()
                raise RetargetingError(f"the retargeting process did not start within {self._start_timeout_s:.0f} s")
        msg = self._recv()
        if msg[0] == "error":
            self.close()
            raise _error(msg[1], msg[2])
        self.name = msg[1]

    def _recv(self):
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            self._proc.join(1.0)
            code = self._proc.exitcode
            self._conn.close()
            self._proc = self._conn = None
            raise RetargetingError(f"the retargeting process died (exit code {code}); the next goal starts a new "
                                   "one") from None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        """Stop the child (it is also a daemon: it never outlives this process)."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            try:
                conn.send(("quit",))
            except (OSError, ValueError):
                pass
            conn.close()
        if proc is not None:
            proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)

    # ---- the backend interface -----------------------------------------------------------------
    def retarget(self, motion: HumanMotion, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> G1JointTrajectory:
        progress = progress or no_progress
        with self._lock:  # one motion at a time
            if self._proc is None or not self._proc.is_alive():
                self._start()
            self._cancel.clear()
            self._conn.send(("retarget", motion))
            while True:
                if cancel is not None and cancel.is_set():
                    self._cancel.set()
                if not self._conn.poll(POLL_S):
                    if not self._proc.is_alive():
                        self._recv()  # raises: the child died
                    continue
                msg = self._recv()
                kind = msg[0]
                if kind == "progress":
                    progress(msg[1], msg[2], msg[3])
                elif kind == "done":
                    return msg[1]
                elif kind == "canceled":
                    raise Canceled(msg[1])
                else:
                    raise _error(msg[1], msg[2])


def _error(type_name: str, message: str) -> Exception:
    """The child's exception as the parent raises it: builtin errors keep their type (a missing
    model is a FileNotFoundError), anything else becomes a RetargetingError."""
    import builtins  # noqa: PLC0415

    cls = getattr(builtins, type_name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls is not Exception:
        try:
            return cls(message)
        except TypeError:
            pass
    return RetargetingError(message)
