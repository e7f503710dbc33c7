"""A test's own node spun in a thread, and stopped in the order rclpy needs."""
from __future__ import annotations

import threading


def spin_in_thread(executor, on_error=(Exception,)) -> threading.Thread:
    """Spin ``executor`` in a daemon thread (ends quietly when its context ends)."""

    def spin() -> None:
        try:
            executor.spin()
        except on_error:  # noqa: BLE001 - the test's context ended
            pass

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    return thread


def stop_spinning(executor, thread: threading.Thread, node, timeout_s: float = 5.0) -> None:
    """Shut ``executor`` down, wait for its thread, then destroy ``node``. Destroying a node under a
    spinning executor leaves that thread in a busy loop which starves the test's other threads of the
    GIL (seen in CI: a test's main thread never got to reap a stopped process)."""
    executor.shutdown(timeout_sec=1.0)
    thread.join(timeout_s)
    if thread.is_alive():
        raise RuntimeError(f"the executor thread did not end within {timeout_s:g} s of its shutdown")
    node.destroy_node()
