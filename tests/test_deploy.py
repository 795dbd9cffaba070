"""The production stack that docker-compose.yml describes. Docker cannot run here, so the compose file
is parsed and every service, command, file and environment variable it names is checked against the
project; the entrypoint's process roles are then run for real against the test database and Redis."""

import ast
import http.client
import importlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import _free_port, _subprocess_env
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ["web", "worker", "beat"]
DOCKERFILE = ROOT / "platform" / "Dockerfile"
ENTRYPOINT = ROOT / "platform" / "entrypoint.sh"
HEALTHCHECK = ROOT / "platform" / "healthcheck.py"
IMAGE_WORKDIR = "/app"  # where the Dockerfile puts the repository inside the image


def in_repo(image_path: str) -> Path:
    """The repository file that an absolute path inside the image comes from."""
    assert image_path.startswith(IMAGE_WORKDIR + "/"), f"{image_path} is not under {IMAGE_WORKDIR}"
    return ROOT / image_path[len(IMAGE_WORKDIR) + 1 :]


def entrypoint_roles() -> set[str]:
    """The role names the entrypoint's case statement handles (the catch-all `*` excluded)."""
    labels = re.findall(r"^\s*([\w|-]+)\)\s*$", ENTRYPOINT.read_text(), flags=re.MULTILINE)
    return {role for label in labels for role in label.split("|")}


def interpolate(value: str, variables: dict) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} substitution, for the forms this file uses."""

    def substitute(match):
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        if variables.get(name):
            return variables[name]
        if operator == ":?":
            raise LookupError(f"{name} is required: {argument}")
        return argument

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", substitute, value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def dockerfile_values(instruction: str) -> list[str]:
    return [value for name, value in dockerfile_instructions() if name == instruction]


def environment_names_read_by(path: Path) -> set[str]:
    """Variable names a module reads from os.environ, directly or through a helper such as env_bool(name)."""
    tree = ast.parse(path.read_text())
    readers = {"os.environ.get", "os.getenv"}
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        parameters = [arg.arg for arg in function.args.args]
        for call in (node for node in ast.walk(function) if isinstance(node, ast.Call)):
            if (
                ast.unparse(call.func) in readers
                and call.args
                and isinstance(call.args[0], ast.Name)
                and call.args[0].id in parameters
            ):
                readers.add(function.name)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in readers:
            key = node.args[0] if node.args else None
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        else:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
    return names


# --- the compose file -------------------------------------------------------------------------


def test_compose_defines_the_four_services():
    assert {"postgres", "redis", "web", "worker"} <= set(SERVICES)


@pytest.mark.parametrize("service", ["postgres", "redis", "web", "worker"])
def test_every_service_has_a_health_check(service):
    healthcheck = SERVICES[service].get("healthcheck")
    assert healthcheck and healthcheck.get("test"), f"{service} has no health check"
    assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}


def test_database_services_use_the_pinned_images_and_their_own_health_probes():
    assert SERVICES["postgres"]["image"] == "postgres:16"
    assert SERVICES["redis"]["image"] == "redis:7"
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert SERVICES["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


@pytest.mark.parametrize("service, data_dir", [("postgres", "/var/lib/postgresql/data"), ("redis", "/data")])
def test_database_services_keep_their_data_in_named_volumes(service, data_dir):
    mounts = dict(volume.rsplit(":", 1)[::-1] for volume in SERVICES[service].get("volumes", []))
    assert data_dir in mounts, f"{service} does not mount a volume at {data_dir}"
    assert mounts[data_dir] in (COMPOSE.get("volumes") or {}), f"{mounts[data_dir]} is not a declared volume"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_build_the_project_image(service):
    build = SERVICES[service]["build"]
    assert (ROOT / build["context"]).resolve() == ROOT
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_wait_for_healthy_postgres_and_redis(service):
    depends_on = SERVICES[service]["depends_on"]
    for dependency in ("postgres", "redis"):
        assert depends_on[dependency]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_run_roles_the_entrypoint_handles(service):
    role = SERVICES[service]["command"][0]
    assert role == service
    assert role in entrypoint_roles()


def test_dockerfile_default_role_is_handled_by_the_entrypoint():
    (cmd,) = dockerfile_values("CMD")
    assert json.loads(cmd)[0] in entrypoint_roles()


def test_the_web_health_check_runs_a_script_in_the_project():
    test = SERVICES["web"]["healthcheck"]["test"]
    script = next(part for part in test if part.endswith(".py"))
    assert in_repo(script) == HEALTHCHECK and HEALTHCHECK.is_file()


def test_worker_can_be_scaled():
    # `--scale worker=N` needs replicas that do not claim a fixed name or host port.
    assert "container_name" not in SERVICES["worker"]
    assert "ports" not in SERVICES["worker"]


def test_web_publishes_the_port_daphne_listens_on():
    (mapping,) = SERVICES["web"]["ports"]
    assert mapping.rsplit(":", 1)[1] == "8000"
    assert re.search(r"platform/serve\.py --host 0\.0\.0\.0 --port \"\$\{PORT:-8000\}\"", ENTRYPOINT.read_text())


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_environment_is_read_by_the_settings(service):
    read = environment_names_read_by(ROOT / "config" / "settings.py")
    assert {"SECRET_KEY", "DEBUG", "HTTPS"} <= read  # the scan sees direct reads and env_bool(...)
    read |= environment_names_read_by(ROOT / "platform" / "serve.py")  # WEB_PROCESSES
    unread = set(SERVICES[service]["environment"]) - read
    assert not unread, f"{service} sets variables config/settings.py never reads: {sorted(unread)}"


DOT_ENV = {"SECRET_KEY": "k" + "x1y2z3" * 10, "POSTGRES_PASSWORD": "pg-password-from-dot-env"}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_environment_points_at_the_compose_services(service):
    env = {name: interpolate(str(value), DOT_ENV) for name, value in SERVICES[service]["environment"].items()}
    postgres = SERVICES["postgres"]["environment"]
    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme == "postgres" and database.hostname == "postgres"
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == interpolate(postgres["POSTGRES_PASSWORD"], DOT_ENV) == DOT_ENV["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["POSTGRES_DB"]
    redis_url = urlsplit(env["REDIS_URL"])
    assert redis_url.scheme == "redis" and redis_url.hostname == "redis"
    assert env["SECRET_KEY"] == DOT_ENV["SECRET_KEY"]
    assert env["DEBUG"] == "0"
    assert env["HTTPS"] == "1" and env["ALLOWED_HOSTS"]


@pytest.mark.parametrize("service", APP_SERVICES)
@pytest.mark.parametrize("missing", ["SECRET_KEY", "POSTGRES_PASSWORD"])
def test_compose_refuses_to_start_without_the_secrets(service, missing):
    variables = {name: value for name, value in DOT_ENV.items() if name != missing}
    with pytest.raises(LookupError, match=missing):
        for value in SERVICES[service]["environment"].values():
            interpolate(str(value), variables)


def test_env_example_names_the_variables_compose_requires():
    example = (ROOT / "platform" / "env.example").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert required == {"SECRET_KEY", "POSTGRES_PASSWORD"}
    for name in required:
        assert re.search(rf"^{name}=", example, flags=re.MULTILINE), f"env.example lacks {name}"


# --- the image --------------------------------------------------------------------------------


def test_dockerfile_builds_a_cpu_only_python_311_image_run_by_a_non_root_user():
    assert dockerfile_values("FROM") == ["python:3.11-slim"]
    (install,) = [run for run in dockerfile_values("RUN") if "pip install" in run]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in install
    assert "-r requirements.txt" in install
    assert any("collectstatic" in run for run in dockerfile_values("RUN"))
    (user,) = dockerfile_values("USER")
    assert user not in {"root", "0"}


def test_dockerfile_copies_files_that_exist_and_enters_through_the_entrypoint():
    for copy in dockerfile_values("COPY"):
        for source in copy.split()[:-1]:
            assert (ROOT / source).exists(), f"COPY names {source}, which is not in the project"
    (entrypoint,) = dockerfile_values("ENTRYPOINT")
    script = in_repo(json.loads(entrypoint)[0])
    assert script == ENTRYPOINT and os.access(script, os.X_OK)


def test_the_entrypoint_runs_the_project_asgi_application_and_celery_app():
    text = ENTRYPOINT.read_text()
    (asgi_target,) = re.findall(r"\"(\w+(?:\.\w+)*:\w+)\"", (ROOT / "platform" / "serve.py").read_text())
    (celery_target,) = re.findall(r"celery -A (\S+) worker", text)
    module, attribute = asgi_target.split(":")

    from celery import Celery
    from celery.app.utils import find_app
    from channels.routing import ProtocolTypeRouter

    application = getattr(importlib.import_module(module), attribute)
    assert isinstance(application, ProtocolTypeRouter)
    assert {"http", "websocket"} <= set(application.application_mapping)
    celery_app = find_app(celery_target)
    assert isinstance(celery_app, Celery) and celery_app.main == "debatelab"


def test_the_entrypoint_refuses_an_unknown_role():
    result = subprocess.run(["sh", str(ENTRYPOINT), "serve"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 64
    assert "unknown role 'serve'" in result.stderr


# --- the roles, run for real ------------------------------------------------------------------


def role_env(**overrides) -> dict:
    """The test database and Redis, the project's own settings module (as in the image), the venv on PATH."""
    env = _subprocess_env()
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


@pytest.mark.slow
def test_migrate_role_applies_migrations(django_db_setup):
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "migrate"], env=role_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "No migrations to apply." in result.stdout


@pytest.mark.slow
def test_web_role_passes_the_compose_health_check_behind_https(django_db_setup, tmp_path):
    port = _free_port()
    env = role_env(PORT=str(port), HTTPS="1", ALLOWED_HOSTS="debatelab.example.org", WEB_PROCESSES="2")
    log_path = tmp_path / "web.log"
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "web"], env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT
    )
    try:

        def health_check():
            check = subprocess.run(
                [sys.executable, str(HEALTHCHECK)], env=env, capture_output=True, text=True, timeout=15
            )
            assert check.returncode == 0 or process.poll() is None, f"web exited: {log_path.read_text()[-2000:]}"
            return check if check.returncode == 0 else None

        check = wait_until(
            health_check, 120, lambda: f"the health check to pass: {log_path.read_text()[-2000:]}", interval=0.5
        )
        assert json.loads(check.stdout) == {"status": "ok", "database": "ok", "channel_layer": "ok"}
        assert "with 2 daphne processes" in log_path.read_text()
        # Without the proxy's X-Forwarded-Proto the same request is redirected to HTTPS.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz", headers={"Host": "debatelab.example.org"})
        assert connection.getresponse().status == 301
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.slow
def test_worker_role_starts_a_celery_worker(django_db_setup, tmp_path):
    log_path = tmp_path / "worker.log"
    # A queue of its own, so this worker never takes tasks meant for another test's worker.
    env = role_env(CELERY_QUEUE=f"deploy-test-{uuid.uuid4().hex[:8]}")
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "worker", "--pool", "solo", "--without-gossip", "--without-mingle"],
        env=env,
        stdout=open(log_path, "w"),
        stderr=subprocess.STDOUT,
    )
    try:

        def ready():
            assert process.poll() is None, f"worker exited: {log_path.read_text()[-2000:]}"
            return "ready." in log_path.read_text()

        wait_until(ready, 90, lambda: f"the worker to be ready: {log_path.read_text()[-2000:]}", interval=0.3)
        assert env["CELERY_QUEUE"] in log_path.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_beat_role_sends_the_sweep_on_its_schedule(django_db_setup, tmp_path):
    import redis

    queue = f"deploy-beat-{uuid.uuid4().hex[:8]}"
    env = role_env(CELERY_QUEUE=queue, SWEEP_INTERVAL="1", BEAT_SCHEDULE_FILE=str(tmp_path / "schedule"))
    client = redis.Redis.from_url(env["REDIS_URL"])
    log_path = tmp_path / "beat.log"
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "beat"], env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT
    )
    try:

        def sent_twice():
            assert process.poll() is None, f"beat exited: {log_path.read_text()[-2000:]}"
            return client.llen(queue) >= 2

        wait_until(sent_twice, 60, lambda: f"two sweeps sent: {log_path.read_text()[-2000:]}")
        message = json.loads(client.lindex(queue, 0))
        assert message["headers"]["task"] == "debates.tasks.sweep_owed_work"
        assert message["headers"]["expires"]  # a sweep that waited out a worker outage is dropped
    finally:
        process.terminate()
        process.wait(timeout=30)
        client.delete(queue)


# --- /healthz ---------------------------------------------------------------------------------


def test_healthz_reports_database_and_channel_layer_ok(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


@pytest.fixture
def worker_check_on(settings):
    from django.core.cache import cache

    from debates import worker_health

    settings.DEBATELAB_WORKER_MAX_AGE = 60
    settings.RUN_TASKS_IN_PROCESS = False  # a deployment with workers, whether or not REDIS_URL is set here
    yield lambda seconds_ago: cache.set(worker_health.HEARTBEAT_KEY, time.time() - seconds_ago, timeout=None)
    cache.delete(worker_health.HEARTBEAT_KEY)


def test_healthz_fails_when_no_worker_has_reported_in_for_the_limit(client, db, worker_check_on):
    worker_check_on(seconds_ago=120)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["database"] == "ok" and body["channel_layer"] == "ok"
    assert body["worker"] == "error: no Celery worker has reported in for 120 s (limit 60 s)"


def test_healthz_passes_when_a_worker_reported_in_recently(client, db, worker_check_on):
    worker_check_on(seconds_ago=5)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok", "worker": "ok"}


def test_the_embedded_default_has_no_worker_to_check(client, db, worker_check_on, settings):
    settings.RUN_TASKS_IN_PROCESS = True
    worker_check_on(seconds_ago=1000)
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


def closed_port() -> int:
    return _free_port()  # nothing listens there once the probe socket is closed


def healthz_in_subprocess(**env_overrides) -> tuple[int, dict]:
    code = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        "response = Client().get('/healthz')\n"
        "print(response.status_code, response.content.decode())\n"
    )
    env = dict(os.environ)
    env.update(env_overrides)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    status, body = result.stdout.strip().splitlines()[-1].split(" ", 1)
    return int(status), json.loads(body)


@pytest.mark.slow
def test_healthz_answers_503_when_the_database_is_unreachable():
    status, body = healthz_in_subprocess(DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/nowhere")
    assert status == 503
    assert body["status"] == "error"
    assert body["database"] == "error: OperationalError"
    assert body["channel_layer"] == "ok"


@pytest.mark.slow
def test_healthz_answers_503_when_redis_is_unreachable():
    status, body = healthz_in_subprocess(
        DATABASE_URL="sqlite://:memory:", REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0"
    )
    assert status == 503
    assert body["database"] == "ok"
    assert body["channel_layer"].startswith("error: ")
