"""Thread scheduling helpers: what they change, and that they say so."""
import numpy as np
import os
import threading

import pytest

from exoactor.realtime import lower_process_priority, make_thread_realtime


def _in_thread(fn):
    out = {}

    def run():
        out["said"] = fn()
        out["policy"] = os.sched_getscheduler(0)
        out["nice"] = os.getpriority(os.PRIO_PROCESS, 0)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out


def test_realtime_off_changes_nothing():
    out = _in_thread(lambda: make_thread_realtime(0))
    assert out["said"] == "normal priority (real-time priority off)"
    assert out["policy"] == os.SCHED_OTHER


def test_realtime_priority_is_set_on_the_calling_thread_only_or_refusal_is_explained():
    out = _in_thread(lambda: make_thread_realtime(10))
    if out["said"].startswith("SCHED_FIFO"):
        assert out["policy"] == os.SCHED_FIFO
    else:  # no CAP_SYS_NICE here: the thread is unchanged and the message says why
        assert "not permitted" in out["said"] and out["policy"] == os.SCHED_OTHER
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's thread was not touched


@pytest.mark.parametrize("bad", [-1, 100, 1000])
def test_realtime_priority_out_of_range_is_refused(bad):
    if bad < 0:
        assert make_thread_realtime(bad).startswith("normal priority")
    else:
        with pytest.raises(ValueError, match="1-99"):
            make_thread_realtime(bad)


def test_lower_priority_reaches_every_thread_of_the_process():
    # In a child process, so this test process keeps its own priority.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: a thread started before, one after
        try:
            before_ready, stop = threading.Event(), threading.Event()
            seen = {}

            def before():
                seen["tid"] = threading.get_native_id()
                before_ready.set()
                stop.wait(5)

            t = threading.Thread(target=before)
            t.start()
            before_ready.wait(5)
            said = lower_process_priority(7)
            after = _in_thread(lambda: None)["nice"]
            prio_before = os.getpriority(os.PRIO_PROCESS, seen["tid"])
            stop.set()
            t.join()
            os.write(w, f"{said}|{os.getpriority(os.PRIO_PROCESS, 0)}|{prio_before}|{after}".encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 1000).decode()
    os.waitpid(pid, 0)
    said, main_nice, before_nice, after_nice = data.split("|")
    assert said.startswith("nice 7") and int(main_nice) >= 7 and int(before_nice) >= 7 and int(after_nice) >= 7


def test_lower_priority_range():
    with pytest.raises(ValueError, match="0-19"):
        lower_process_priority(20)
    assert lower_process_priority(0) == "nice 0"


def test_sleep_until_wakes_at_the_absolute_time_and_never_early():
    import time

    from exoactor.realtime import sleep_until

    t0 = time.monotonic()
    late = []
    for k in range(1, 51):
        sleep_until(t0 + 0.002 * k)
        late.append(time.monotonic() - (t0 + 0.002 * k))
    assert min(late) >= 0.0  # never before the deadline
    assert np.median(late) < 0.002  # and on the 2 ms grid, not drifting with each period's delays
    t = time.monotonic()
    sleep_until(t - 1.0)  # a deadline in the past returns at once
    assert time.monotonic() - t < 0.05
