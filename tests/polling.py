"""The one way a test waits for something that happens elsewhere (a server starting, a worker or a
timer acting): poll a condition until it holds, or fail with what was awaited. Never a fixed sleep."""

import time


def wait_until(predicate, timeout=15.0, message="the condition", interval=0.1):
    """Calls `predicate` until it returns something truthy and returns that value. After `timeout`
    seconds raises AssertionError naming `message` (a string, or a function giving one, for details
    known only at the end). A predicate may raise to stop waiting early (a server that died)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            awaited = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g}s waiting for {awaited}")
        time.sleep(interval)
