"""Shared fixtures. The suite runs against real PostgreSQL and Redis (make test sets DATABASE_URL
and REDIS_URL); live tests start a real daphne server and a real Celery worker as subprocesses
pointed at the test database."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


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
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                "config.asgi:application"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    _wait_until_healthy(url, process, log.name)
    return process, url


def _wait_until_healthy(url, process, log_name, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited: {Path(log_name).read_text()[-2000:]}")
        try:
            with urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"daphne did not become healthy: {Path(log_name).read_text()[-2000:]}")


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, tmp_path_factory):
    """A real Celery worker on the test database and the test Redis broker."""
    process = start_celery_worker(_subprocess_env(), tmp_path_factory.mktemp("celery") / "worker.log")
    yield process
    process.terminate()
    process.wait(timeout=20)


def start_celery_worker(env, log_path):
    """A Celery worker (solo pool) with `env`; returns the process once it is ready."""
    start = log_path.stat().st_size if log_path.exists() else 0
    log = open(log_path, "a")
    process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
                                "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while "ready" not in log_path.read_text()[start:]:
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"celery worker did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.3)
    return process


@pytest.fixture
def make_user(db):
    from django.contrib.auth.models import Group, User

    def make(username, role=None, password="pass-for-tests-1"):
        user = User.objects.create_user(username=username, password=password)
        if role:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


@pytest.fixture
def question(db):
    from debates.models import Question

    return Question.objects.create(
        text="Why does the captain open the airlock?", answers=["To save the crew", "To escape the ship"],
        correct_index=0, hidden_material="SECRET PASSAGE: the captain opens the airlock to vent the fire.",
        public_material="A short story about a spaceship.")


@pytest.fixture
def two_round_debate(make_user, question):
    """Debaters alice (A, correct answer) and bob (B), judge judy; simultaneous round then sequential."""
    from debates import services
    from debates.protocol import Protocol

    alice, bob, judy = make_user("alice", "debater"), make_user("bob", "debater"), make_user("judy", "judge")
    protocol = Protocol(rounds=("simultaneous", "judge_feedback", "sequential"), char_limit=500)
    debate = services.create_debate(question, protocol, {"A": (alice, 0), "B": (bob, 1)}, judge=judy, seed=7)
    return debate
