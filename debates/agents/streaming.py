"""Streaming HTTP for model APIs: POST a JSON body, read server-sent events, retry with
exponential backoff on rate limits, server errors and lost connections. Standard library only."""

import http.client
import json
import logging
import random
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from .errors import AgentError, AgentUnavailable

RETRY_STATUSES = {408, 409, 429}  # and every 5xx
STATUS_CLASSES = {1: "unexpected", 2: "unexpected", 3: "a redirect", 4: "the request was refused", 5: "a server error"}
log = logging.getLogger(__name__)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the key to wherever it points: a 3xx is an error instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post_events(url: str, headers: dict, body: dict, timeout: float):
    """Yields (event, data) for each server-sent event of the response. Failures carry a short,
    fixed description (the status class, a timeout, a refused connection): never the server's
    answer, which may come from anywhere the back-end's address leads; the details go to the log."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "text/event-stream", **headers},
    )
    try:
        response = _opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise _status_error(error) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        log.warning("could not reach the model server %s: %s", urlsplit(url).netloc, reason)
        raise AgentUnavailable("connection_error", f"could not reach the model server ({_failure(reason)})") from None
    with response:
        try:
            yield from server_sent_events(response)
        except (OSError, http.client.HTTPException) as error:
            log.warning("the stream from %s broke off: %s", urlsplit(url).netloc, error)
            raise AgentUnavailable(
                "connection_lost", f"the stream from the model server broke off ({_failure(error)})"
            ) from None


def _failure(reason) -> str:
    """A fixed description of a network failure."""
    if isinstance(reason, (TimeoutError, socket.timeout)) or "timed out" in str(reason):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    return "network error"


def _status_error(error: urllib.error.HTTPError) -> AgentError:
    try:
        detail = error.read(300).decode("utf-8", "replace")
    except OSError:
        detail = ""
    log.warning("model server answered HTTP %s: %s", error.code, detail)
    message = f"the model server answered HTTP {error.code} ({STATUS_CLASSES.get(error.code // 100, 'unexpected')})"
    if error.code in RETRY_STATUSES or error.code >= 500:
        return AgentUnavailable(f"http_{error.code}", message, retry_after=_seconds(error.headers.get("Retry-After")))
    return AgentError(f"http_{error.code}", message)


def _seconds(value) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def server_sent_events(lines):
    """(event, data) pairs from the lines of a text/event-stream (the WHATWG format)."""
    event, data = "message", []
    for raw in lines:
        line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)


class RetryPolicy:
    def __init__(self, attempts: int = 4, base_delay: float = 1.0, max_delay: float = 30.0):
        self.attempts, self.base_delay, self.max_delay = attempts, base_delay, max_delay

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter (so many clients do not retry in step); a server's
        Retry-After wins when it is longer, up to max_delay."""
        backoff = self.base_delay * 2 ** (failures - 1) * random.uniform(0.75, 1.25)
        return min(self.max_delay, max(backoff, retry_after or 0.0))


def with_retries(attempt, policy: RetryPolicy, on_retry=None, sleep=time.sleep):
    """Runs the generator function `attempt` until it finishes, retrying on AgentUnavailable.
    Text already yielded by a failed attempt is superseded: on_retry(failures, error, delay) tells
    the caller to throw it away."""
    for failures in range(1, policy.attempts + 1):
        try:
            yield from attempt()
            return
        except AgentUnavailable as error:
            if failures == policy.attempts:
                raise AgentUnavailable(
                    error.code, f"{error.message} (gave up after {failures} attempts)", error.retry_after
                ) from None
            delay = policy.delay(failures, error.retry_after)
            if on_retry is not None:
                on_retry(failures, error, delay)
            sleep(delay)
