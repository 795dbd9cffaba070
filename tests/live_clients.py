"""Clients for the live tests: real websocket connections (the `websockets` library) and plain HTTP
(urllib) against the daphne server, signed in with a real session cookie."""

import json
import secrets
import time
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def session_for(user) -> str:
    """A real session in the database for `user`, as the login page would create it."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


class LiveSocket:
    """One websocket to a debate. Records every frame and checks, frame by frame, that sequence
    numbers have no gaps: a state frame sets the number, each event is the next one, and every
    other frame repeats the last number sent."""

    def __init__(self, base_url, debate_id, session=None, origin=None, cookie_name="sessionid"):
        host = urlsplit(base_url).netloc
        headers = {"Cookie": f"{cookie_name}={session}"} if session else {}
        self.ws = connect(
            f"ws://{host}/ws/debates/{debate_id}/",
            origin=origin or base_url,
            additional_headers=headers,
            open_timeout=15,
            max_size=2**22,
            legacy=True,
        )
        self.frames = []
        self.raw = []
        self.seq = None

    def send(self, message):
        self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    def recv(self, timeout=15):
        raw = self.ws.recv(timeout=timeout)
        self.raw.append(raw)
        frame = json.loads(raw)
        self._check_sequence(frame)
        self.frames.append(frame)
        return frame

    def _check_sequence(self, frame):
        assert isinstance(frame.get("seq"), int), f"frame without a sequence number: {frame}"
        if frame["type"] == "state":
            assert self.seq is None or frame["seq"] >= self.seq, frame
        elif frame["type"] == "event":
            assert frame["seq"] == self.seq + 1, f"gap or repeat: expected seq {self.seq + 1}, got {frame}"
        else:
            assert frame["seq"] == self.seq, f"expected seq {self.seq} on {frame}"
        self.seq = frame["seq"]

    def wait_for(self, wanted, timeout=15):
        """Reads frames until one satisfies `wanted` (a predicate); returns it."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching frame within {timeout}s; got {seen}")
            try:
                frame = self.recv(timeout=left)
            except TimeoutError:
                continue
            seen.append(frame)
            if wanted(frame):
                return frame

    def wait_for_type(self, frame_type, timeout=15):
        return self.wait_for(lambda f: f["type"] == frame_type, timeout)

    def wait_for_seq(self, seq, timeout=15):
        if self.seq is not None and self.seq >= seq:
            return
        self.wait_for(lambda f: f["type"] in ("event", "state") and f["seq"] >= seq, timeout)

    def wait_for_event(self, kind, timeout=15):
        return self.wait_for(lambda f: f["type"] == "event" and f["kind"] == kind, timeout)

    def act(self, message, timeout=15):
        """Sends a speech or feedback and returns the server's answer to it (ack or error)."""
        self.send(message)
        return self.wait_for(
            lambda f: f["type"] in ("ack", "error") and f.get("client_id") == message.get("client_id"), timeout
        )

    def sync(self, after):
        """Asks the server to resend events after `after` (the replay restarts the numbering there)."""
        if isinstance(after, int) and self.seq is not None and 0 <= after <= self.seq:
            self.seq = after
        self.send({"type": "sync", "after": after})

    def ping(self):
        self.send({"type": "ping"})
        return self.wait_for_type("pong")

    def events(self):
        return [f for f in self.frames if f["type"] == "event"]

    def drain(self, quiet=0.5):
        """Reads whatever arrives until the connection has been quiet for `quiet` seconds."""
        while True:
            try:
                self.recv(timeout=quiet)
            except TimeoutError:
                return

    def close_code(self, timeout=15):
        """Waits for the server to close the connection and returns its close code."""
        try:
            while True:
                self.ws.recv(timeout=timeout)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    def close(self):
        self.ws.close()


class _NoRedirects(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Plain HTTP with a session cookie; records every response body it receives."""

    def __init__(self, base_url, session=None):
        self.base_url = base_url
        self.csrf = secrets.token_hex(16)  # 32 characters: a valid CSRF secret the server accepts
        self.cookie = f"csrftoken={self.csrf}" + (f"; sessionid={session}" if session else "")
        self.opener = build_opener(_NoRedirects)
        self.bodies = []

    def request(self, method, path, form=None, json_body=None):
        data, headers = None, {"Cookie": self.cookie}
        if method == "POST":
            headers["X-CSRFToken"] = self.csrf
            headers["Origin"] = self.base_url
        if form is not None:
            data = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        request = Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=30) as response:
                status, body, response_headers = response.status, response.read(), response.headers
        except HTTPError as error:
            status, body, response_headers = error.code, error.read(), error.headers
        self.bodies.append((method, path, status, body.decode("utf-8", "replace")))
        return status, body.decode("utf-8", "replace"), response_headers

    def get(self, path):
        return self.request("GET", path)

    def get_json(self, path):
        status, body, _ = self.get(path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def post(self, path, form=None, json_body=None):
        return self.request("POST", path, form=form, json_body=json_body)
