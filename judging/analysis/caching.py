"""The analysis page cached until a verdict is added or removed, and refreshed in the background
when a page may be served stale."""

import hashlib

from django.core.cache import cache

from debates import background

from .figures import N_BOOT
from .page import compute
from .queries import data_stamp, short_queries


CACHE_SECONDS = 3600


def analyse(verdicts, n_boot: int = N_BOOT, wait: bool = True) -> dict:
    """Every figure for a set of verdicts, cached until a verdict is added or removed.

    With wait=False a page that was computed before is served at once even when verdicts have
    arrived since ("stale": True), and a background thread computes the new figures; the page
    polls and swaps them in when they are ready. Nothing cached yet: computed now either way."""
    query = hashlib.sha256(f"{verdicts.query}:{n_boot}".encode()).hexdigest()[:20]
    key = f"judging:analysis:{query}"
    latest = cache.get(key)
    if latest is None:  # nothing to compare with: compute() takes the stamp from the data it reads
        result = compute(verdicts, n_boot)
        cache.set(key, result, CACHE_SECONDS)
        return result
    with short_queries():
        stamp = data_stamp(verdicts)
    if latest["stamp"] == stamp:
        return latest
    if not wait:
        if cache.add(f"{key}:refreshing", stamp, timeout=600):
            _refresh_in_background(verdicts, n_boot, key)
        return dict(latest, stale=True)
    result = compute(verdicts, n_boot)
    cache.set(key, result, CACHE_SECONDS)
    return result


def _refresh_in_background(verdicts, n_boot, key):
    # A thread of this process in every mode: the refresh holds a queryset, which no task message carries.
    background.start_thread(_refresh, verdicts, n_boot, key, name="analysis-refresh")


def _refresh(verdicts, n_boot, key):
    try:
        cache.set(key, compute(verdicts, n_boot), CACHE_SECONDS)
    finally:
        cache.delete(f"{key}:refreshing")
