"""Serves DebateLab with several daphne processes behind one address.

    python platform/serve.py --port 8000 --processes 2

Binds the listening socket once and hands it to N daphne processes (`daphne --fd`), so the
kernel spreads new connections over them and each process uses a core. A process that exits is
started again (its sockets reconnect to the others and resynchronise); SIGTERM or SIGINT stops
them all. Run from the repository root (platform/entrypoint.sh web does).
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

RESTART_PAUSE = 1.0  # seconds between restarts of a process that keeps failing
# daphne drops a websocket whose handshake the application has not finished within this time (its
# default is 5 s). Hundreds of people connecting at once on a loaded server can take longer, and a
# dropped handshake only comes back as a retry: bench/crowd_study.py lost bots to it at 5 s.
HANDSHAKE_SECONDS = "20"


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def start_daphne(fd: int, extra: list[str]) -> subprocess.Popen:
    defaults = [] if "--websocket_connect_timeout" in extra else ["--websocket_connect_timeout", HANDSHAKE_SECONDS]
    command = [sys.executable, "-m", "daphne", "--fd", str(fd), *defaults, *extra, "config.asgi:application"]
    return subprocess.Popen(command, pass_fds=[fd])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--processes",
        type=int,
        default=int(os.environ.get("WEB_PROCESSES") or os.cpu_count() or 1),
        help="daphne processes (default: WEB_PROCESSES, else one per core)",
    )
    args, extra = parser.parse_known_args(argv)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    sock = listening_socket(args.host, args.port)
    print(f"serving on {args.host}:{args.port} with {args.processes} daphne processes", flush=True)
    children = [start_daphne(sock.fileno(), extra) for _ in range(args.processes)]
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        time.sleep(0.2)
        for i, child in enumerate(children):
            if child.poll() is not None and not stopping:
                print(f"daphne process {child.pid} exited with {child.returncode}; starting another", flush=True)
                time.sleep(RESTART_PAUSE)
                children[i] = start_daphne(sock.fileno(), extra)
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
