"""Executor helpers: an action client created while its node spins in another thread."""
import threading

import pytest
import rclpy
from rclpy.action import ActionClient as RclpyActionClient
from rclpy.executors import MultiThreadedExecutor

from exoactor.action import TrackMotion
from exoactor.nodes.spin import ActionClient


@pytest.fixture
def node():
    rclpy.init()
    n = rclpy.create_node("exoactor_test_spin")
    try:
        yield n
    finally:
        n.destroy_node()
        rclpy.shutdown()


def _executor_counts_entities_on_registration(node):
    """What an executor thread does when it builds its wait set right as a client registers."""
    counted = []
    add = node.add_waitable

    def add_and_count(waitable):
        add(waitable)
        counted.append(waitable.get_num_entities())

    node.add_waitable = add_and_count
    return counted


def test_rclpy_client_is_not_countable_while_it_registers(node):
    """The race this wrapper exists for (if rclpy fixes it, this test says the wrapper can go)."""
    _executor_counts_entities_on_registration(node)
    with pytest.raises(AttributeError, match="_lock"):
        RclpyActionClient(node, TrackMotion, "exoactor_test/track")


def test_client_is_countable_while_it_registers_and_keeps_one_lock(node):
    counted = _executor_counts_entities_on_registration(node)
    client = ActionClient(node, TrackMotion, "exoactor_test/track")
    assert len(counted) == 1 and counted[0].num_clients == 3  # goal, cancel and result services
    lock = client._lock
    assert lock.acquire(blocking=False)  # the same lock every time, not a fresh one per access
    assert client._lock is lock and not client._lock.acquire(blocking=False)
    lock.release()
    client.destroy()


def test_clients_created_while_the_node_spins(node):
    ex = MultiThreadedExecutor(num_threads=4)
    ex.add_node(node)
    errors = []
    t = threading.Thread(target=lambda: _spin(ex, errors), daemon=True)
    t.start()
    try:
        for _ in range(50):
            ActionClient(node, TrackMotion, "exoactor_test/track")
        assert t.is_alive() and not errors, errors
    finally:
        ex.shutdown()
        t.join(5.0)


def _spin(ex, errors):
    try:
        ex.spin()
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


STARTING_NODE = r"""
import sys, threading, time
import rclpy
from rclpy.executors import SingleThreadedExecutor
from exoactor.nodes.spin import spin_node

def factory():
    node = rclpy.create_node("exoactor_test_slow_start")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()  # a thread already inside rclpy
    print("constructing", flush=True)
    time.sleep(30.0)  # loading models...
    return node

spin_node(factory)
print("returned normally", flush=True)
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_during_start_up_ends_the_process_at_once_and_cleanly(sig):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", STARTING_NODE], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == "constructing"
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(getattr(signal, sig))
        out, _ = proc.communicate(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and took < 3.0, (proc.returncode, took, out)
    assert "terminate called" not in out and "Traceback" not in out, out


HANGING_STOP_NODE = r"""
import rclpy
from rclpy.node import Node as RclpyNode
from exoactor.nodes.spin import spin_node

class Node(RclpyNode):
    def __init__(self):
        super().__init__("exoactor_test_hanging_stop")
        self.timer = self.create_timer(0.05, self.say_spinning)

    def say_spinning(self):
        print("spinning", flush=True)
        self.timer.cancel()

    def close(self):
        import threading
        threading.Event().wait(60.0)  # a clean-up that never ends (a thread stuck in the middleware...)

spin_node(Node, stop_deadline_s=1.0)
print("returned normally", flush=True)
"""


def test_a_stop_that_hangs_ends_the_process_with_every_threads_stack():
    import os
    import signal
    import subprocess
    import sys
    import time

    from fakes.domains import domain_id

    proc = subprocess.Popen([sys.executable, "-c", HANGING_STOP_NODE], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "ROS_DOMAIN_ID": str(domain_id(7))})
    try:
        assert proc.stdout.readline().strip() == "spinning"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and 0.9 < took < 5.0, (proc.returncode, took, out)
    assert "returned normally" not in out
    assert "Timeout" in out and "in close" in out, out  # faulthandler's dump names the stuck frame


class _HandleThatRecordsRequests:
    """Stands in for the rcl handle: sending a goal request only records its sequence number."""

    def __init__(self):
        self.sent = []

    def send_goal_request(self, _request):
        self.sent.append(len(self.sent) + 1)
        return self.sent[-1]


class _RespondsWhenFeedbackIsRegistered(dict):
    """The executor thread processing the goal response at the moment the feedback callback is stored."""

    def __init__(self, respond):
        super().__init__()
        self.respond = respond

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.respond()


def _goal_response_race(client):
    """Send a goal while an 'executor' answers every request already sent when the feedback callback is
    stored (in rclpy, after its lock is released); returns (returned future, futures answered)."""
    handle = _HandleThatRecordsRequests()
    real_handle, client._client_handle = client._client_handle, handle
    answered = []

    def respond():
        for seq in [s for s in handle.sent if s not in answered]:
            answered.append(seq)
            response = TrackMotion.Impl.SendGoalService.Response(accepted=True)
            coro = client.execute({"goal": (seq, response)})
            with pytest.raises(StopIteration):
                coro.send(None)

    client._feedback_callbacks = _RespondsWhenFeedbackIsRegistered(respond)
    try:
        future = client.send_goal_async(TrackMotion.Goal(), feedback_callback=lambda _fb: None)
        respond()  # the executor's next turn answers what is left
    finally:
        client._client_handle = real_handle
    return future, answered


def test_rclpy_send_goal_async_can_return_a_future_that_never_completes(node):
    """rclpy's race (if rclpy fixes it, this test says the override can go)."""
    client = RclpyActionClient(node, TrackMotion, "exoactor_test/track")
    future, answered = _goal_response_race(client)
    assert answered == [1] and not future.done()
    client.destroy()


def test_send_goal_async_returns_the_future_the_response_completes(node):
    client = ActionClient(node, TrackMotion, "exoactor_test/track")
    future, answered = _goal_response_race(client)
    assert answered == [1] and future.done() and future.result().accepted
    assert not client._pending_goal_requests and not client._goal_sequence_number_to_goal_id
    assert len(client._feedback_callbacks) == 1  # kept for the accepted goal's feedback
    client.destroy()


def test_a_rejected_goal_forgets_its_feedback_callback(node):
    client = ActionClient(node, TrackMotion, "exoactor_test/track")
    client._client_handle, real = _HandleThatRecordsRequests(), client._client_handle
    try:
        future = client.send_goal_async(TrackMotion.Goal(), feedback_callback=lambda _fb: None)
        coro = client.execute({"goal": (1, TrackMotion.Impl.SendGoalService.Response(accepted=False))})
        with pytest.raises(StopIteration):
            coro.send(None)
    finally:
        client._client_handle = real
    assert future.done() and not future.result().accepted and not client._feedback_callbacks
    client.destroy()


def test_send_goal_async_checks_the_goal_type(node):
    client = ActionClient(node, TrackMotion, "exoactor_test/track")
    with pytest.raises(TypeError, match="expected a goal of type"):
        client.send_goal_async(TrackMotion.Result())
    client.destroy()


def test_wait_for_returns_when_the_executor_never_runs_done_callbacks():
    """A future completed while its executor is busy (or stopped) still wakes the waiter: rclpy
    schedules done callbacks as executor tasks, which an executor that never spins never runs."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.task import Future

    from exoactor.nodes.spin import wait_for

    rclpy.init()
    try:
        executor = SingleThreadedExecutor()  # never spun
        fut = Future(executor=executor)
        called = []
        fut.add_done_callback(lambda _f: called.append(1))
        threading.Timer(0.1, fut.set_result, args=("answer",)).start()
        assert wait_for(fut, 5.0) == "answer"
        assert not called  # the callback route would still be waiting
        pending = Future(executor=executor)
        assert wait_for(pending, 0.2) is None  # timeout
        assert wait_for(pending, 5.0, should_stop=lambda: True) is None  # stop requested
        executor.shutdown()
    finally:
        rclpy.shutdown()
