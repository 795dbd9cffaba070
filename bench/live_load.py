"""The live layer at a study's size: N debates x 5 sockets on the production processes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dl_live_bench REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python bench/live_load.py [--scenario small|study|all] [--processes 1 2] [--seconds 60]

Starts the production processes (platform/serve.py with N daphne processes behind one port, a
Celery worker) on the given PostgreSQL and Redis, creates the debates (two debaters, the judge and
two observers each, all signed in with real sessions), opens every socket as a browser would and
waits for each one's state frame (connect time), then has the debaters speak in turn at the given
rate, through the real debate websocket. For each speech it measures the speaker's ack and its
delivery to the other four screens, and counts what never arrived or arrived twice, and checks
that every socket's event numbers stay gapless. Server CPU is the CPU time of the web processes,
the worker, PostgreSQL and Redis over the load phase, divided by its length (2.0 = both cores).
The same clients then run the same job against a plain `websockets` fan-out server (no database,
no auth) for the ratio. The client runs on the same machine, in this process.

Scenarios: small = 20 debates x 5 sockets, 1 speech/s per debate; study = 200 debates x 5
sockets, 0.5 speech/s per debate (100 speeches/s in all). Targets on a 2-core machine, client
included: 1,000 sockets connected in <= 10 s; study: delivery p50 <= 30 ms, p99 <= 150 ms, nothing
lost or duplicated; small: p99 <= 50 ms.
"""

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCENARIOS = {"small": (20, 1.0), "study": (200, 0.5)}
SEATS = ("A", "B", "judge", "observer-1", "observer-2")
CONNECT_CONCURRENCY = 200
DRAIN_SECONDS = 10


def server_environment(prefix: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DEBUG": "0",
            "HTTPS": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CHANNEL_PREFIX": prefix,
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            "CELERY_QUEUE": prefix,
        }
    )
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, processes, seconds=90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        for process in processes:
            if process.poll() is not None:
                sys.exit(f"a server process exited with {process.returncode}")
        try:
            with urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    sys.exit("the server did not become healthy")


# --- data ---------------------------------------------------------------------------------------


def prepare_debates(count: int) -> list[dict]:
    """`count` live debates with five signed-in people each: [{id, sessions: {seat: key}}]."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from debates import services
    from debates.models import Question
    from debates.protocol import Protocol

    tag = secrets.token_hex(4)
    password = make_password(secrets.token_urlsafe(12))  # one hash for all: hashing 1,000 would take minutes
    users = User.objects.bulk_create(
        [User(username=f"bench-{tag}-{i}-{seat}", password=password) for i in range(count) for seat in SEATS]
    )
    store = SessionStore()
    expiry = timezone.now() + timezone.timedelta(hours=2)
    sessions = {}
    rows = []
    for user in users:
        key = secrets.token_hex(16)
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expiry))
        sessions[user.pk] = key
    Session.objects.bulk_create(rows)
    question = Question.objects.create(
        text="Bench question", answers=["Yes", "No"], correct_index=0, hidden_material="The passage for the bench."
    )
    protocol = Protocol(rounds=("sequential",) * 200, char_limit=500)
    debates = []
    for i in range(count):
        a, b, judge, o1, o2 = users[i * 5 : (i + 1) * 5]
        debate = services.create_debate(
            question, protocol, {"A": (a, 0), "B": (b, 1)}, judge=judge, observers=[o1, o2], seed=i
        )
        services.start_debate(debate.pk)
        people = dict(zip(SEATS, (a, b, judge, o1, o2)))
        debates.append({"id": debate.pk, "sessions": {seat: sessions[u.pk] for seat, u in people.items()}})
    return debates


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Tally:
    connect_seconds: float = 0.0
    acks: list = field(default_factory=list)
    deliveries: list = field(default_factory=list)
    sent: dict = field(default_factory=dict)  # marker -> (send time, debate index)
    acked: set = field(default_factory=set)
    received: dict = field(default_factory=dict)  # (socket, marker) -> count
    refused: int = 0
    out_of_order: int = 0
    connect_failures: int = 0
    connected: set = field(default_factory=set)  # socket names that opened

    def lost_and_duplicated(self) -> tuple[int, int]:
        """Deliveries owed to the connected screens of each acknowledged speech that never came,
        and deliveries that came twice."""
        expected = sum(
            1
            for marker in self.acked
            for seat in SEATS
            if seat != speaker_of(marker) and f"{self.sent[marker][1]}/{seat}" in self.connected
        )
        delivered = sum(1 for (_, marker) in self.received if marker in self.acked)
        duplicated = sum(count - 1 for count in self.received.values() if count > 1)
        return expected - delivered, duplicated


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def run_clients(url_for, headers_for, debates, rate, seconds, platform: bool) -> Tally:
    """Opens 5 sockets per debate, then the debaters speak in turn at `rate` per debate."""
    import websockets

    tally = Tally()
    sockets = {}
    ready = {}
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def reader(name, ws):
        seq = None
        async for raw in ws:
            now = time.monotonic()
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "state":
                seq = frame["seq"]
                ready[name].set()
            elif kind == "event":
                if seq is not None and frame["seq"] != seq + 1:
                    tally.out_of_order += 1
                seq = frame["seq"]
                if frame["kind"] == "speech":
                    record(name, frame["data"]["text"], now)
            elif kind == "speech":  # the plain fan-out server
                record(name, frame["text"], now)
            elif kind == "ack":
                marker = frame["client_id"]
                if marker in tally.sent:
                    tally.acks.append(now - tally.sent[marker][0])
                    tally.acked.add(marker)
            elif kind == "error":
                tally.refused += 1

    def record(name, text, now):
        marker = text.split(" ", 1)[0]
        if name.endswith(f"/{speaker_of(marker)}"):
            return  # the speaker's own screen: its ack is measured instead
        key = (name, marker)
        tally.received[key] = tally.received.get(key, 0) + 1
        if tally.received[key] == 1 and marker in tally.sent:
            tally.deliveries.append(now - tally.sent[marker][0])

    async def open_socket(index, seat):
        name = f"{index}/{seat}"
        ready[name] = asyncio.Event()
        async with gate:
            try:
                ws = await websockets.connect(
                    url_for(debates[index], seat),
                    additional_headers=headers_for(debates[index], seat),
                    origin=headers_for.origin,
                    open_timeout=60,
                    max_size=2**22,
                )
            except Exception as error:  # noqa: BLE001 - counted, the run goes on
                if not tally.connect_failures:
                    print(f"connect failed: {error!r}", file=sys.stderr)
                tally.connect_failures += 1
                ready[name].set()
                return
            sockets[name] = ws
            tally.connected.add(name)
            asyncio.get_running_loop().create_task(reader(name, ws))
            if not platform:
                ready[name].set()
            await ready[name].wait()

    started = time.monotonic()
    await asyncio.gather(*(open_socket(i, seat) for i in range(len(debates)) for seat in SEATS))
    tally.connect_seconds = time.monotonic() - started

    async def speak(index):
        await asyncio.sleep((index / len(debates)) / rate)  # spread the debates over one interval
        begin = time.monotonic()
        for turn in range(int(seconds * rate)):
            await asyncio.sleep(max(0.0, begin + turn / rate - time.monotonic()))
            seat = "A" if turn % 2 == 0 else "B"
            ws = sockets.get(f"{index}/{seat}")
            if ws is None:
                continue
            marker = f"m{index}-{turn}-{seat}"
            tally.sent[marker] = (time.monotonic(), index)
            await ws.send(json.dumps({"type": "speech", "text": f"{marker} " + "x" * 120, "client_id": marker}))

    await asyncio.gather(*(speak(i) for i in range(len(debates))))
    await asyncio.sleep(DRAIN_SECONDS if platform else 2)
    for ws in sockets.values():
        await ws.close()
    return tally


def speaker_of(marker: str) -> str:
    return marker.rsplit("-", 1)[1]


class Headers:
    def __init__(self, origin, function):
        self.origin = origin
        self.function = function

    def __call__(self, debate, seat):
        return self.function(debate, seat)


def cpu_seconds(pids) -> dict[int, float]:
    """CPU time per process (with its waited-for children), for the processes still alive."""
    times = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks
    return times


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[pid] - before[pid] for pid in before if pid in after)


def service_pids(web, worker) -> dict[str, list[int]]:
    """The server's processes by part: web (serve.py and its daphne processes), the worker (and
    its pool), PostgreSQL's and Redis's."""
    parts = {}
    for name, process in (("web", web), ("worker", worker)):
        pids = [process.pid]
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        parts[name] = pids
    for name, pattern in (("postgres", "postgres"), ("redis", "redis-server")):
        parts[name] = [
            int(p) for p in subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        ]
    return parts


# --- the two servers ----------------------------------------------------------------------------


def set_up_django() -> None:
    """Django in this process on the benchmark's database (made and migrated here), with the
    settings the production processes get."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark runs the production processes.")
    from bench.database import ensure_database

    ensure_database()
    os.environ.update(server_environment("bench-setup"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def start_production(processes: int):
    """The production processes on this machine's PostgreSQL and Redis: platform/serve.py with
    `processes` daphne processes behind one port, and a Celery worker on a queue of its own.
    Returns (base URL, web process, worker process) once the site answers /healthz."""
    prefix = f"bench{secrets.token_hex(3)}"
    env = server_environment(prefix)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "platform/serve.py", "--host", "127.0.0.1", "--port", str(port)]
    web = subprocess.Popen([*serve, "--processes", str(processes)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING", "--concurrency", "1"]
        + ["--without-gossip", "--without-mingle", "-Q", prefix],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(base, [web, worker])
    except BaseException:
        stop(web, worker)
        raise
    return base, web, worker


def stop(*processes) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


def run_platform(debate_count, rate, seconds, processes) -> tuple[Tally, float]:
    base, web, worker = start_production(processes)
    port = base.rsplit(":", 1)[1]
    try:
        debates = prepare_debates(debate_count)
        headers = Headers(base, lambda d, seat: {"Cookie": f"sessionid={d['sessions'][seat]}"})
        parts = service_pids(web, worker)
        before, wall_before, client_before = (
            {k: cpu_seconds(v) for k, v in parts.items()},
            time.monotonic(),
            time.process_time(),
        )
        tally = asyncio.run(
            run_clients(
                lambda d, seat: f"ws://127.0.0.1:{port}/ws/debates/{d['id']}/",
                headers,
                debates,
                rate,
                seconds,
                platform=True,
            )
        )
        wall = time.monotonic() - wall_before
        after = service_pids(web, worker)
        cpu = {k: round(cpu_used(before[k], cpu_seconds(after[k])) / wall, 2) for k in parts}
        cpu["client"] = round((time.process_time() - client_before) / wall, 2)
        return tally, cpu
    finally:
        stop(web, worker)


def run_plain(debate_count, rate, seconds) -> Tally:
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--plain-server", str(port)], cwd=ROOT)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("the plain fan-out server did not start")
                time.sleep(0.2)
        debates = [{"id": i} for i in range(debate_count)]
        headers = Headers(None, lambda d, seat: {})
        return asyncio.run(
            run_clients(
                lambda d, seat: f"ws://127.0.0.1:{port}/{d['id']}", headers, debates, rate, seconds, platform=False
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


def plain_server(port: int) -> None:
    """A room per path; a message goes back to its sender as an ack and to the others."""
    import websockets

    rooms: dict[str, set] = {}

    async def handler(ws):
        room = rooms.setdefault(ws.request.path, set())
        room.add(ws)
        try:
            async for raw in ws:
                message = json.loads(raw)
                await ws.send(json.dumps({"type": "ack", "client_id": message["client_id"]}))
                websockets.broadcast(room - {ws}, json.dumps({"type": "speech", "text": message["text"]}))
        finally:
            room.discard(ws)

    async def serve():
        async with websockets.serve(handler, "127.0.0.1", port, max_size=2**22):
            await asyncio.Future()

    asyncio.run(serve())


def report(label, tally: Tally, cpu=None) -> dict:
    lost, duplicated = tally.lost_and_duplicated()
    row = {
        "run": label,
        "connect_s": round(tally.connect_seconds, 2),
        "ack_p50_ms": round(percentile(tally.acks, 50) * 1000, 1),
        "ack_p99_ms": round(percentile(tally.acks, 99) * 1000, 1),
        "delivery_p50_ms": round(percentile(tally.deliveries, 50) * 1000, 1),
        "delivery_p99_ms": round(percentile(tally.deliveries, 99) * 1000, 1),
        "speeches": len(tally.sent),
        "acked": len(tally.acked),
        "deliveries": len(tally.deliveries),
        "lost": lost,
        "duplicated": duplicated,
        "refused": tally.refused,
        "gaps": tally.out_of_order,
        "connect_failures": tally.connect_failures,
        "server_cpu_cores": round(sum(v for k, v in cpu.items() if k != "client"), 2) if cpu else None,
        "cpu_by_part": cpu,
    }
    print(json.dumps(row), flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="web processes to compare")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--no-plain", action="store_true", help="skip the plain websockets fan-out")
    parser.add_argument("--plain-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_server:
        return plain_server(args.plain_server)
    set_up_django()
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    rows = []
    for name in scenarios:
        debates, rate = SCENARIOS[name]
        for processes in args.processes:
            tally, cpu = run_platform(debates, rate, args.seconds, processes)
            rows.append(
                report(
                    f"{name}: {debates * 5} sockets, {debates * rate:g} speeches/s, {processes} web "
                    f"process{'es' if processes > 1 else ''}",
                    tally,
                    cpu,
                )
            )
        if not args.no_plain:
            rows.append(report(f"{name}: plain websockets fan-out", run_plain(debates, rate, args.seconds)))
    print()
    print(
        "| run | connect (s) | ack p50 / p99 (ms) | delivery p50 / p99 (ms) | lost | duplicated | server CPU (cores) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['run']} | {row['connect_s']} | {row['ack_p50_ms']} / {row['ack_p99_ms']} | "
            f"{row['delivery_p50_ms']} / {row['delivery_p99_ms']} | {row['lost']} | {row['duplicated']} | "
            f"{row['server_cpu_cores'] if row['server_cpu_cores'] is not None else '-'} |"
        )


if __name__ == "__main__":
    main()
