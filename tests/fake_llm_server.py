"""TEST DOUBLE for paid model APIs: a small local HTTP server that speaks the streaming protocols
of OpenAI-compatible chat completions (POST /v1/chat/completions) and the Anthropic Messages API
(POST /v1/messages), with scripted replies and scripted failures. No test needs a network or key.

    server = FakeLLMServer().start()
    server.script([Fail(500), Reply("Hello there")])   # first call fails, the second streams
    ... base_url = server.url + "/v1" ...
    server.requests  # what the clients sent (path, headers, body)
"""

import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    text: str
    chunk: int = 7  # characters per streamed delta
    cut_after: int | None = None  # drop the connection after this many deltas


@dataclass
class Fail:
    status: int
    retry_after: float | None = None


class FakeLLMServer:
    def __init__(self, openai_key: str | None = None, anthropic_key: str | None = None, port: int = 0):
        self.openai_key, self.anthropic_key = openai_key, anthropic_key
        self.requests: list[dict] = []
        self._script: list = []
        self._default = Reply("I have nothing more to add.")
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", port), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeLLMServer":
        # stop() waits for the serving loop to look up: every 0.05 s rather than the default 0.5 s.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, steps: list, default: Reply | None = None) -> None:
        """The next calls get these steps in order; afterwards every call gets `default`."""
        with self._lock:
            self._script = list(steps)
            self.requests.clear()
            if default is not None:
                self._default = default

    def _next(self):
        with self._lock:
            return self._script.pop(0) if self._script else self._default

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                if self.path == "/v1/chat/completions":
                    return self._answer(body, "openai")
                if self.path == "/v1/messages":
                    return self._answer(body, "anthropic")
                self._plain(404, {"error": {"message": f"no route {self.path}"}})

            def _answer(self, body, api):
                if (
                    api == "openai"
                    and server.openai_key
                    and self.headers.get("Authorization") != f"Bearer {server.openai_key}"
                ):
                    return self._plain(401, {"error": {"message": "bad key"}})
                if api == "anthropic":
                    if server.anthropic_key and self.headers.get("x-api-key") != server.anthropic_key:
                        return self._plain(401, {"error": {"type": "authentication_error"}})
                    if not self.headers.get("anthropic-version"):
                        return self._plain(
                            400,
                            {
                                "error": {
                                    "type": "invalid_request_error",
                                    "message": "anthropic-version header is required",
                                }
                            },
                        )
                step = server._next()
                if isinstance(step, Fail):
                    headers = {"Retry-After": str(step.retry_after)} if step.retry_after is not None else {}
                    return self._plain(step.status, {"error": {"message": f"scripted failure {step.status}"}}, headers)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                pieces = [step.text[i : i + step.chunk] for i in range(0, len(step.text), step.chunk)]
                prompt_chars = len(json.dumps(body.get("messages", []))) + len(str(body.get("system", "")))
                events = (_openai_events if api == "openai" else _anthropic_events)(body, pieces, prompt_chars)
                for number, event in enumerate(events):
                    if step.cut_after is not None and number > step.cut_after:
                        break  # the connection drops without the closing chunk
                    self._chunk(event)
                else:
                    self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True

            def _chunk(self, text: str):
                data = text.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _plain(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # a client that hung up early is expected


def _openai_events(body, pieces, prompt_chars):
    model = body.get("model", "fake")
    for piece in pieces:
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        yield f"data: {json.dumps(chunk)}\n\n"
    yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_chars // 4 + len(pieces),
        }
        yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def _anthropic_events(body, pieces, prompt_chars):
    def event(name, data):
        return f"event: {name}\ndata: {json.dumps(dict(data, type=name))}\n\n"

    yield event(
        "message_start",
        {
            "message": {
                "id": "msg_fake",
                "model": body.get("model"),
                "role": "assistant",
                "usage": {"input_tokens": prompt_chars // 4, "output_tokens": 1},
            }
        },
    )
    yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    yield event("ping", {})
    for piece in pieces:
        yield event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
    yield event("content_block_stop", {"index": 0})
    yield event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": len(pieces)}})
    yield event("message_stop", {})
