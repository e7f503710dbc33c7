"""Scheduling of the project's threads: real-time priority for control, lower priority for batch work.

On a 2-core machine the imagination stages (video decoding and rendering, pose estimation) can
keep both cores busy for seconds; the 500 Hz control loop and the simulator standing in for the
robot must still run every 2 ms. Two levers, both Linux, both optional:

- :func:`make_thread_realtime` puts the *calling thread* under ``SCHED_FIFO`` at a priority
  (1-99). It needs ``CAP_SYS_NICE`` or an ``rtprio`` limit (``/etc/security/limits.conf``:
  ``@realtime - rtprio 98``, or ``docker run --cap-add SYS_NICE --ulimit rtprio=98``). Without
  either it changes nothing and says so. The kernel's real-time throttling (95 % by default)
  keeps a runaway real-time thread from freezing the machine.
- :func:`lower_process_priority` raises the nice value of every thread of the process (threads
  created later inherit it): batch stages yield the CPU to everything at nice 0.

Both return a one-line description of what took effect, for the node's start-up log.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time

MAX_RT_PRIORITY = 99


def make_thread_realtime(priority: int) -> str:
    """SCHED_FIFO at ``priority`` (1-99) for the calling thread; 0 = leave it alone. Never raises."""
    priority = int(priority)
    if priority <= 0:
        return "normal priority (real-time priority off)"
    if not 1 <= priority <= MAX_RT_PRIORITY:
        raise ValueError(f"real-time priority must be 0 (off) or 1-{MAX_RT_PRIORITY}, got {priority}")
    if not sys.platform.startswith("linux") or not hasattr(os, "sched_setscheduler"):
        return f"normal priority (SCHED_FIFO is Linux-only; this is {sys.platform})"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0: the calling thread (Linux)
    except PermissionError:
        return ("normal priority (SCHED_FIFO not permitted: needs CAP_SYS_NICE or an rtprio limit, "
                "see exoactor/realtime.py)")
    except OSError as e:
        return f"normal priority (SCHED_FIFO failed: {e.strerror or e})"
    return f"SCHED_FIFO priority {priority}"


def lower_process_priority(niceness: int) -> str:
    """Give every thread of this process a nice value of at least ``niceness`` (0-19); threads
    created afterwards inherit it. Raising niceness needs no permission."""
    niceness = int(niceness)
    if not 0 <= niceness <= 19:
        raise ValueError(f"niceness must be 0-19, got {niceness}")
    if niceness == 0:
        return "nice 0"
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    done = 0
    for tid in tids:
        try:
            cur = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, max(cur, niceness)))
            done += 1
        except OSError:  # the thread ended meanwhile
            pass
    return f"nice {niceness} ({done} thread(s))"


def make_named_threads_realtime(prefix: str, priority: int) -> str:
    """SCHED_FIFO at ``priority`` for every thread of this process whose name starts with ``prefix``
    (e.g. Fast DDS's ``dds.`` reception and event threads, which carry /lowstate and /lowcmd to
    the control threads); 0 = leave them alone. Never raises."""
    priority = int(priority)
    if priority <= 0 or not sys.platform.startswith("linux"):
        return "normal priority"
    if priority > MAX_RT_PRIORITY:
        raise ValueError(f"real-time priority must be 0 (off) or 1-{MAX_RT_PRIORITY}, got {priority}")
    done = 0
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return "normal priority (no /proc/self/task)"
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if not f.read().startswith(prefix):
                    continue
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(priority))
            done += 1
        except PermissionError:
            return "normal priority (SCHED_FIFO not permitted)"
        except OSError:  # the thread ended meanwhile
            pass
    return f"SCHED_FIFO priority {priority} ({done} '{prefix}*' thread(s))"


def reset_to_normal_priority(niceness: int = 0) -> None:
    """The calling thread back to SCHED_OTHER (e.g. a child process forked from a real-time thread),
    with at least ``niceness``. Never raises."""
    try:
        if hasattr(os, "sched_setscheduler") and os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError:
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), int(niceness)))
    except OSError:
        pass


class normal_priority:
    """``with normal_priority():`` runs a block of CPU-heavy work (e.g. retargeting) in a real-time
    thread at normal priority (SCHED_OTHER), and restores the thread's scheduling afterwards."""

    def __enter__(self):
        self._saved = None
        if hasattr(os, "sched_getscheduler"):
            try:
                policy = os.sched_getscheduler(0)
                if policy in (os.SCHED_FIFO, os.SCHED_RR):
                    self._saved = (policy, os.sched_getparam(0))
                    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            except OSError:
                self._saved = None
        return self

    def __exit__(self, *_exc):
        if self._saved is not None:
            try:
                os.sched_setscheduler(0, *self._saved)
            except OSError:
                pass
        return False


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _libc_clock_nanosleep():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).clock_nanosleep
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Timespec), ctypes.POINTER(_Timespec)]
    fn.restype = ctypes.c_int
    return fn


_CLOCK_NANOSLEEP = _libc_clock_nanosleep()
_TIMER_ABSTIME = 1


def sleep_until(t_monotonic_s: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``t_monotonic_s`` (returns at once if it has).

    Absolute-time sleep (``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`` on Linux, the clock
    ``time.monotonic`` reads there): a preemption between computing the deadline and sleeping does
    not push the wake-up later, as a relative ``time.sleep(deadline - now)`` would."""
    if _CLOCK_NANOSLEEP is None:
        delay = t_monotonic_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return
    sec = int(t_monotonic_s)
    ts = _Timespec(sec, int((t_monotonic_s - sec) * 1e9))
    while _CLOCK_NANOSLEEP(time.CLOCK_MONOTONIC, _TIMER_ABSTIME, ctypes.byref(ts), None) == 4:  # EINTR
        pass
