"""A platform of its own for the fault tests (tests/test_faults.py): a PostgreSQL cluster and a
redis-server on free ports in a temporary folder, so a test can kill and restart them, plus real
daphne, Celery worker and Celery beat processes pointed at them."""

import glob
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, _free_port, start_celery_worker, start_daphne
from tests.polling import wait_until


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        pytest.skip("the fault tests need PostgreSQL's server programs (initdb, pg_ctl)")
    return Path(found[-1]).parent


class PostgresCluster:
    """PostgreSQL refuses to run as root: as root, the cluster lives in a folder of its own owned by
    the `postgres` system user and its programs run as that user."""

    def __init__(self, folder: Path):
        self.bin = _postgres_bin()
        self.as_user = []
        if os.geteuid() == 0:
            import pwd
            import shutil
            import tempfile

            owner = pwd.getpwnam("postgres")
            folder = Path(tempfile.mkdtemp(prefix="debatelab-faults-pg-"))
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            self.as_user = [shutil.which("runuser"), "-u", "postgres", "--"]
        self.folder = folder
        self.data, self.port = folder / "pgdata", _free_port()
        self.log = folder / "postgres.log"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/debatelab"

    def create(self) -> "PostgresCluster":
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "debatelab")
        return self

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "start",
            "-o",
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def _run(self, program, *args):
        result = subprocess.run(
            [*self.as_user, str(self.bin / program), *args], capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout[-1000:]} {result.stderr[-1000:]}")


class RedisServer:
    """Append-only file on, as in docker-compose.yml, so a restart keeps the broker's queues."""

    def __init__(self, folder: Path):
        if not Path("/usr/bin/redis-server").exists() and not any(
            Path(p, "redis-server").exists() for p in os.environ.get("PATH", "").split(os.pathsep)
        ):
            pytest.skip("the fault tests need redis-server")
        self.folder, self.port = folder, _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--logfile",
                str(self.folder / "redis.log"),
            ]
        )
        import redis

        client = redis.Redis.from_url(self.url)
        wait_until(lambda: self._answers(client), 20, "redis-server answers")
        return self

    @staticmethod
    def _answers(client) -> bool:
        try:
            return client.ping()
        except Exception:  # noqa: BLE001 - still starting
            return False

    def stop(self) -> None:
        self.process.terminate()  # redis-server flushes its append-only file on SIGTERM
        self.process.wait(timeout=20)


class Stack:
    """PostgreSQL, Redis, daphne, one Celery worker and Celery beat, all of their own."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.postgres = self.redis = self.worker = self.web = self.beat = None
        try:
            self._start()
        except BaseException:
            self.close()  # whatever did start must not outlive the test run
            raise

    def _start(self) -> None:
        folder = self.folder
        self.postgres = PostgresCluster(folder)
        self.postgres.create()
        self.redis = RedisServer(folder).start()
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.postgres.url,
            REDIS_URL=self.redis.url,
            PYTHONUNBUFFERED="1",
            CHANNEL_PREFIX=f"faults{self.redis.port}",
            SWEEP_INTERVAL="2",
            HEALTH_WORKER_MAX_AGE="30",
            DEBATELAB_PRESENCE_SECONDS="6",
        )
        self.env = env
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        self.worker = self.start_worker()  # first: /healthz fails until a worker has reported in
        self.web_port = _free_port()
        self.web, self.url = start_daphne(env, folder / "daphne.log", port=self.web_port)
        self.beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(folder / "beat-schedule"),
            ],
            cwd=ROOT,
            env=env,
            stdout=open(folder / "beat.log", "a"),
            stderr=subprocess.STDOUT,
        )

    def start_worker(self):
        self.worker = start_celery_worker(self.env, self.folder / "worker.log")
        return self.worker

    def kill_worker(self) -> None:
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(timeout=10)

    def restart_web(self, kill: bool = True) -> None:
        self.web.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.web.wait(timeout=20)
        self.web, _ = start_daphne(self.env, self.folder / "daphne.log", port=self.web_port)

    def log(self, name: str) -> str:
        return (self.folder / name).read_text()

    def close(self) -> None:
        processes = [p for p in (self.beat, self.worker, self.web) if p is not None]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.redis is not None and self.redis.process is not None:
            self.redis.stop()
        if self.postgres is None:
            return
        if (self.postgres.data / "postmaster.pid").exists():
            self.postgres.stop("immediate")
        if self.postgres.folder != self.folder:
            import shutil

            shutil.rmtree(self.postgres.folder, ignore_errors=True)
