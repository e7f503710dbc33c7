"""A node's process: start-up, the executor, waiting on futures, and a clean stop.

Stopping: SIGINT or SIGTERM (from a terminal, the launcher or ``ros2 launch``) ends the executor
(rclpy's signal handler shuts the context down), then the node's ``close()`` stops and joins the
threads it started, the node is destroyed and rclpy is shut down, which also removes rclpy's
signal handlers: an exit with them installed (their C++ thread still joinable) or with a thread
still inside rclpy or MuJoCo ends in ``terminate called without an active exception`` or a crash.
Further signals while the node stops are ignored (a terminal's Ctrl-C reaches the launcher and
every node at once, and the launcher forwards it again): a second ``KeyboardInterrupt`` in the
middle of the clean-up is what used to leave tracebacks and half-destroyed nodes behind. A signal
during start-up (loading models can take a while) ends the process at once.
"""
from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import os
import signal
import sys
import threading
import time
from typing import Callable

import rclpy
from rclpy.action import ActionClient as _RclpyActionClient
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions, install_signal_handlers, uninstall_signal_handlers
from rclpy.task import Future

from exoactor.g1.model import RobotModelError
from exoactor.launcher import LAUNCHER_PID_ENV
from exoactor.ros_domain import domain_id_problem
from exoactor.nodes.params import ConfigError
from exoactor.nodes.presence import GraphPresence
from exoactor.registry import UnknownBackendError

try:
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy_impl
    _InvalidHandle = _rclpy_impl.InvalidHandle
except (ImportError, AttributeError):  # pragma: no cover - other rclpy versions
    class _InvalidHandle(Exception):
        pass

STOP_TIMEOUT_S = 5.0
"""How long the clean-up waits for a node's threads and callbacks."""

STOP_DEADLINE_S = 8.0
"""A clean stop that takes longer ends the process (exit status 1) with every thread's stack on
stderr: a stop stuck in the middleware or in a thread would otherwise ignore every further signal
until the launcher's SIGKILL (it waits 10 s), and leave no trace of where it hung."""

_STARTUP_ERRORS = (RobotModelError, UnknownBackendError, FileNotFoundError, RuntimeError)
"""Start-up failures reported in one line (missing model, unknown backend...), not with a traceback."""


class ActionClient(_RclpyActionClient):
    """rclpy's ActionClient, safe to create while its node is spinning in another thread.

    rclpy (Kilted) adds a new client to its node's waitables before it creates the lock the
    executor takes to count the client's entities: an executor thread building its wait set in
    between dies with ``AttributeError: 'ActionClient' object has no attribute '_lock'``, and the
    node never processes anything again. Here the lock exists before rclpy registers the client,
    and rclpy's late assignment is ignored so every thread keeps using that one lock.
    ``destroy()`` is still rclpy's: call it once no executor spins the node (it frees the handle
    an executor thread may be adding to its wait set).
    """

    def __init__(self, *args, **kwargs):
        self.__lock = threading.Lock()
        super().__init__(*args, **kwargs)

    @property
    def _lock(self) -> threading.Lock:
        return self.__lock

    @_lock.setter
    def _lock(self, _late_lock) -> None:
        pass

    def send_goal_async(self, goal, feedback_callback=None, goal_uuid=None) -> Future:
        """rclpy's ``send_goal_async``, with the future it returns registered before the request is sent.

        rclpy (Kilted) registers one future under its lock, sends the request, releases the lock, then
        replaces that future with a second one, which it returns: a goal response processed by an
        executor thread in between completes the first future, and the one the caller waits on never
        completes (a goal "not answered", seen in CI). Here one future is registered, with the feedback
        callback, under the lock the executor takes to read responses, and that future is returned.
        """
        if not isinstance(goal, self._action_type.Goal):
            raise TypeError(f"expected a goal of type {self._action_type.Goal.__name__}, got {type(goal).__name__}")
        request = self._action_type.Impl.SendGoalService.Request()
        request.goal_id = self._generate_random_uuid() if goal_uuid is None else goal_uuid
        request.goal = goal
        goal_key = bytes(request.goal_id.uuid)
        future = Future()
        with self._lock:
            if feedback_callback is not None:
                self._feedback_callbacks[goal_key] = feedback_callback
            sequence_number = self._client_handle.send_goal_request(request)
            if sequence_number in self._pending_goal_requests:
                raise RuntimeError(f"goal request sequence number {sequence_number} is already pending")
            self._pending_goal_requests[sequence_number] = future
            self._goal_sequence_number_to_goal_id[sequence_number] = request.goal_id
            future.add_done_callback(self._remove_pending_goal_request)
            future.add_done_callback(lambda f: self._forget_feedback_of_rejected(f, goal_key))
            self.add_future(future)  # the executor is woken when it completes
        return future

    def _forget_feedback_of_rejected(self, future: Future, goal_key: bytes) -> None:
        ok = future.done() and not future.cancelled() and future.exception() is None
        handle = future.result() if ok else None
        if handle is None or not handle.accepted:
            self._feedback_callbacks.pop(goal_key, None)


def wait_for(future, timeout_s: float, should_stop: Callable[[], bool] = lambda: False, poll_s: float = 0.05):
    """Block (in any thread) until ``future`` is done; None on timeout, stop or shutdown.

    Polls ``future.done()`` rather than waiting for a done callback: rclpy runs done callbacks as
    executor tasks, so a busy (or stopping) executor would delay the wake-up indefinitely."""
    deadline = time.monotonic() + timeout_s
    while not future.done():
        if should_stop() or not rclpy.ok() or time.monotonic() > deadline:
            return None
        time.sleep(poll_s)
    return future.result()


def join_all(threads, timeout_s: float = STOP_TIMEOUT_S) -> list[threading.Thread]:
    """Join the running ones of ``threads`` within one deadline; returns those still running after it."""
    deadline = time.monotonic() + timeout_s
    for t in threads:
        if t is not None and t.is_alive():
            t.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t is not None and t.is_alive()]


class _StopSignals:
    """SIGINT/SIGTERM handlers: during start-up they end the process at once (exit status 0, nothing
    to save yet); afterwards they only record the request (rclpy's own handler, which chains to
    these, shuts the context down).

    Start-up ends with ``os._exit``, not an exception: a constructor interrupted half-way leaves a
    node that was never returned (so never destroyed) and maybe threads already inside rclpy, and
    the interpreter's normal exit then aborts in C++ (``terminate called without an active
    exception``)."""

    def __init__(self):
        self.started = False
        self.received: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        self.received.append(signum)
        if not self.started:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(0)


def _end_with_launcher() -> None:
    """Under the launcher: get SIGTERM when it dies (Linux), so no node outlives it."""
    launcher = os.environ.get(LAUNCHER_PID_ENV, "")
    if not launcher.isdigit() or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(launcher):  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def spin_node(node_factory: Callable[[], Node], args=None, threads: int = 4,
              stop_deadline_s: float = STOP_DEADLINE_S) -> None:
    """Create the node and spin it (threads > 1: multi-threaded executor, for nodes whose callbacks
    block, like action servers; 1: the cheaper single-threaded one) until SIGINT/SIGTERM, then stop
    cleanly within ``stop_deadline_s`` (see the module's docstring and :data:`STOP_DEADLINE_S`)."""
    signals = _StopSignals()
    _end_with_launcher()
    if problem := domain_id_problem():
        print(f"configuration error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    node = executor = None
    try:
        # rclpy's signal handlers only once the node is built: during start-up a signal must end the
        # process at once (:class:`_StopSignals`), before rclpy's handler shuts the context down under
        # a thread the constructor already started (which then prints a traceback).
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        try:
            node = node_factory()
        except ConfigError as e:
            print(f"configuration error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        except Exception as e:
            if signals.received:  # stopped while starting (the context is gone): not a failure to report
                return
            if isinstance(e, _STARTUP_ERRORS):
                print(f"cannot start: {e}", file=sys.stderr)
                raise SystemExit(1) from None
            raise
        install_signal_handlers(SignalHandlerOptions.ALL)  # before `started`: no signal falls between the two
        signals.started = True
        GraphPresence(node)
        threads = int(getattr(node, "executor_threads", threads))  # a node may need more (queued goals)
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        while True:
            try:
                executor.spin()
                break
            except _InvalidHandle:
                # An entity destroyed by one executor thread (GraphPresence's short-lived publisher)
                # while another built its wait set: that wait is void, the next one is fine.
                if not node.context.ok() or signals.received:
                    break
            except Exception:  # noqa: BLE001 - a signal shut the context down between two waits (RCLError)
                if node.context.ok() and not signals.received:
                    raise
                break
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signals.started = True
        faulthandler.dump_traceback_later(stop_deadline_s, exit=True, file=sys.stderr)
        _stop(node, executor)
        faulthandler.cancel_dump_traceback_later()


def _stop(node: Node | None, executor) -> None:
    """Executor, then the node's own threads (``close()``), the node, and rclpy with its signal handlers."""
    if executor is not None:
        executor.shutdown(timeout_sec=STOP_TIMEOUT_S)
    if node is not None:
        close = getattr(node, "close", None)
        if close is not None:
            close()
        node.destroy_node()
    rclpy.try_shutdown()  # also when a signal already shut the context down
    uninstall_signal_handlers()  # installed by spin_node itself, so rclpy's shutdown leaves them
