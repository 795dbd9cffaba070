"""Which AI turns have a task on the way, so that the sweep (debates.sweep) can tell a turn whose
worker died from one that is queued or running. Two cache keys (Redis in production) per turn:
- queued: set when the turn is scheduled, for as long as the task may reasonably wait in the queue;
- running: taken (cache.add) by the task that plays the turn and refreshed by a thread while it
  runs; it expires RUNNING_SECONDS after its worker dies.
A turn with neither key is owed and nobody is on it: the sweep schedules it again."""

import contextlib
import threading

from django.core.cache import cache

QUEUED_SECONDS = 120  # a queued task that has not started by then is presumed lost
RUNNING_SECONDS = 15
REFRESH_SECONDS = 4


def _key(kind: str, debate_id: int, round_index: int, seat: str) -> str:
    return f"debatelab:ai-turn:{kind}:{debate_id}:{round_index}:{seat}"


def mark_queued(debate_id: int, round_index: int, seat: str, delay: float = 0.0) -> None:
    cache.set(_key("queued", debate_id, round_index, seat), 1, timeout=int(delay) + QUEUED_SECONDS)


def is_taken(debate_id: int, round_index: int, seat: str) -> bool:
    keys = [_key(kind, debate_id, round_index, seat) for kind in ("queued", "running")]
    return bool(cache.get_many(keys))


@contextlib.contextmanager
def running(debate_id: int, round_index: int, seat: str):
    """Yields True while this task holds the turn, False when another live task already does."""
    key = _key("running", debate_id, round_index, seat)
    if not cache.add(key, 1, timeout=RUNNING_SECONDS):
        yield False
        return
    cache.delete(
        _key("queued", debate_id, round_index, seat)
    )  # it has left the queue: only `running` speaks for it now
    stop = threading.Event()
    refresher = threading.Thread(target=_refresh, args=(key, stop), daemon=True, name=f"lease-{key}")
    refresher.start()
    try:
        yield True
    finally:
        stop.set()
        refresher.join(timeout=5)
        cache.delete(key)


def _refresh(key: str, stop: threading.Event) -> None:
    while not stop.wait(REFRESH_SECONDS):
        try:
            cache.touch(key, RUNNING_SECONDS)
        except Exception:  # noqa: BLE001 - Redis down: the lease may lapse; the turn is idempotent
            pass


def restarts(debate_id: int, round_index: int, seat: str) -> int:
    """Counts one more restart of this turn by the sweep; returns the count."""
    key = _key("restarts", debate_id, round_index, seat)
    cache.add(key, 0, timeout=24 * 3600)
    return cache.incr(key)
