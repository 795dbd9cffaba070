"""TEST DOUBLE for a mail server (none runs on this machine): a small local server that speaks
enough SMTP for Django's SMTP back-end (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT),
and can refuse the first connections with 421, as a busy or restarting server does.

    server = FakeSMTPServer(refuse_first=1).start()
    ... EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend EMAIL_PORT=server.port ...
    server.messages    # the raw messages it accepted
    server.refused     # how many connections it turned away
"""

import socketserver
import threading


class FakeSMTPServer:
    def __init__(self, refuse_first: int = 0):
        self.refuse_first = refuse_first
        self.refused = 0
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "FakeSMTPServer":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _turn_away(self) -> bool:
        with self._lock:
            if self.refused < self.refuse_first:
                self.refused += 1
                return True
            return False

    def _handler(self):
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                if server._turn_away():
                    self.reply("421 fake.smtp busy, try again later")
                    return
                self.reply("220 fake.smtp ready")
                while line := self.rfile.readline():
                    verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
                    if verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        server.messages.append(self._message())
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    elif verb in ("EHLO", "HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                        self.reply("250 ok")
                    else:
                        self.reply("502 not implemented")

            def _message(self) -> str:
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(line.decode(errors="replace"))
                return "".join(lines)

        return Handler
