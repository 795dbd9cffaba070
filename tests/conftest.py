"""Shared fixtures. The suite runs against real PostgreSQL and Redis (make test sets DATABASE_URL
and REDIS_URL); live tests start a real daphne server and a real Celery worker as subprocesses
pointed at the test database."""

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.polling import wait_until

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


# Tests that use these fixtures need PostgreSQL and Redis servers: marked "services", so
# make test-fast can leave them out instead of skipping them one by one.
SERVICE_FIXTURES = {"daphne_server", "embedded_daphne_server", "celery_worker", "real_redis_url"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SERVICE_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.services)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgresql"):
        from django.conf import settings

        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            pytest.skip("needs PostgreSQL (run it with make test)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        pytest.skip("live-server tests need PostgreSQL (run them with make test)")
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _subprocess_env() -> dict:
    env = dict(os.environ)
    env["DATABASE_URL"] = _test_database_url()
    env["PYTHONUNBUFFERED"] = "1"
    if not env.get("REDIS_URL"):
        pytest.skip("live-server tests need Redis (run them with make test)")
    return env


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real daphne process serving the platform on the test database; yields its base URL."""
    yield from _serve(_subprocess_env(), tmp_path_factory)


@pytest.fixture(scope="session")
def embedded_daphne_server(django_db_setup, tmp_path_factory):
    """daphne as in the embedded default: no Redis, so the in-memory channel layer, in-process turn
    timers and AI turns (on the test database, so the tests can look at what it stored)."""
    env = _subprocess_env()
    del env["REDIS_URL"]
    yield from _serve(env, tmp_path_factory)


def _serve(env, tmp_path_factory):
    process, url = start_daphne(env, tmp_path_factory.mktemp("daphne") / "daphne.log")
    yield url
    process.terminate()
    process.wait(timeout=10)


def start_daphne(env, log_path, port=None):
    """A daphne process serving the platform with `env`; returns (process, base URL) once healthy."""
    port = port or _free_port()
    log = open(log_path, "a")
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_until_healthy(url, process, log.name)
    return process, url


def _wait_until_healthy(url, process, log_name, seconds=60):
    def healthy():
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited: {Path(log_name).read_text()[-2000:]}")
        try:
            with urlopen(url + "/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(
        healthy, seconds, lambda: f"daphne to become healthy: {Path(log_name).read_text()[-2000:]}", interval=0.3
    )


class CeleryWorker:
    """A running worker and what its log says about the tasks it ran."""

    def __init__(self, process, log_path):
        self.process = process
        self.log_path = log_path

    def log_size(self) -> int:
        return len(self.log_path.read_text())

    def received(self, task_name, since=0) -> list[str]:
        """Ids of the `task_name` tasks received after log position `since`."""
        pattern = rf"Task {re.escape(task_name)}\[([^\]]+)\] received"
        return re.findall(pattern, self.log_path.read_text()[since:])

    def results(self, task_name, since=0) -> dict[str, str]:
        """Task id -> logged return value of the `task_name` tasks that succeeded after `since`."""
        pattern = rf"Task {re.escape(task_name)}\[([^\]]+)\] succeeded in [\d.e-]+s: (.*)"
        return dict(re.findall(pattern, self.log_path.read_text()[since:]))


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, tmp_path_factory):
    """A real Celery worker on the test database and the test Redis broker."""
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    process = start_celery_worker(_subprocess_env(), log_path)
    yield CeleryWorker(process, log_path)
    process.terminate()
    process.wait(timeout=20)


def start_celery_worker(env, log_path):
    """A Celery worker (solo pool) with `env`; returns the process once it is ready."""
    start = log_path.stat().st_size if log_path.exists() else 0
    log = open(log_path, "a")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ready():
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited: {log_path.read_text()[-2000:]}")
        return "ready" in log_path.read_text()[start:]

    wait_until(ready, 60, lambda: f"the celery worker to start: {log_path.read_text()[-2000:]}", interval=0.3)
    return process


@pytest.fixture
def sent_mail(settings, mailoutbox):
    """E-mail notices go to the background (debates.tasks.send_email). Here they run as in the
    embedded default, on threads of this process; sent_mail() waits for those threads and returns
    the outbox (Django's in-memory back-end)."""
    settings.RUN_TASKS_IN_PROCESS = True

    def sent():
        for thread in threading.enumerate():
            if thread.name.startswith("send_email"):
                thread.join(timeout=30)
        return mailoutbox

    return sent


@pytest.fixture
def make_user(db):
    """make_user(username, role=None, password=...): a user with a real password, in `role`'s group."""
    from tests.factories import TEST_PASSWORD, UserFactory

    def make(username, role=None, password=TEST_PASSWORD):
        return UserFactory(username=username, role=role, password=password)

    return make


@pytest.fixture
def question(db):
    from tests.factories import QuestionFactory

    return QuestionFactory()


@pytest.fixture
def two_round_debate(make_user, question):
    """Debaters alice (A, correct answer) and bob (B), judge judy; simultaneous round then sequential."""
    from tests.factories import DebateFactory

    return DebateFactory(
        question=question,
        debater_a=make_user("alice", "debater"),
        debater_b=make_user("bob", "debater"),
        judge=make_user("judy", "judge"),
    )
