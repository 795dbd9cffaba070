"""Whether a Celery worker is alive, for /healthz: each worker process writes the time into the
cache (Redis in production) every few seconds from a thread started when it is ready; the health
check fails when no worker has written for settings.DEBATELAB_WORKER_MAX_AGE seconds."""

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)
HEARTBEAT_KEY = "debatelab:worker-heartbeat"
HEARTBEAT_SECONDS = 10


def beat() -> None:
    cache.set(HEARTBEAT_KEY, time.time(), timeout=None)


def start_heartbeat(hostname: str) -> threading.Thread:
    def run():
        while True:
            try:
                beat()
            except Exception:  # noqa: BLE001 - Redis down: try again next time, never stop
                log.warning("worker %s could not write its heartbeat", hostname, exc_info=True)
            time.sleep(HEARTBEAT_SECONDS)

    thread = threading.Thread(target=run, name="worker-heartbeat", daemon=True)
    thread.start()
    return thread


def problem() -> str | None:
    """None when a worker has reported in recently enough (or the check is off); else why not."""
    max_age = settings.DEBATELAB_WORKER_MAX_AGE
    if settings.RUN_TASKS_IN_PROCESS or not max_age:
        return None  # the embedded default has no worker: its tasks run in the web process
    last = cache.get(HEARTBEAT_KEY)
    if last is None:
        return "no Celery worker has reported in"
    age = time.time() - float(last)
    if age > max_age:
        return f"no Celery worker has reported in for {age:.0f} s (limit {max_age:g} s)"
    return None
