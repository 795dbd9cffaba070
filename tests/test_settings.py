"""Settings chosen by environment variables: each case starts a fresh Python process with exactly the
environment a deployment would give it, since settings are read once, at import."""

import json
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_DATABASE_URL = "postgres://debatelab:secret@db.internal:5432/debatelab"
PRODUCTION_REDIS_URL = "redis://redis.internal:6379/0"

pytestmark = pytest.mark.subprocess


def production_env(**overrides) -> dict:
    """What docker-compose.yml gives the web service, with HTTPS left to its default. Variables the test
    runner set for itself (HTTPS=0, a test DATABASE_URL) are deliberately not inherited."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "SYSTEMROOT") if name in os.environ}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=PRODUCTION_DATABASE_URL,
        REDIS_URL=PRODUCTION_REDIS_URL,
        ALLOWED_HOSTS="example.org",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def manage(*args, env) -> subprocess.CompletedProcess:
    return run(["manage.py", *args], env)


SETTINGS_AS_JSON = """
import django, json
django.setup()
from django.conf import settings
print(json.dumps({
    "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "channel_layer_hosts": settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts"),
    "cache": settings.CACHES["default"]["BACKEND"],
    "cache_location": settings.CACHES["default"].get("LOCATION"),
    "broker": settings.CELERY_BROKER_URL,
    "tasks_eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "tasks_in_process": settings.RUN_TASKS_IN_PROCESS,
    "database_engine": settings.DATABASES["default"]["ENGINE"],
    "password_hashers": settings.PASSWORD_HASHERS,
}))
"""


def settings_under(env) -> dict:
    result = run(["-c", SETTINGS_AS_JSON], env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- production is secure ---------------------------------------------------------------------


def test_check_deploy_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_check_deploy_would_flag_production_served_over_plain_http():
    # The same command does report warnings: HTTPS=0 turns off the redirect and secure cookies.
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(HTTPS="0"))
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", env=production_env(SECRET_KEY=None))
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off (production)." in result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "",  # set but empty counts as unset
        "short-but-random-" + secrets.token_urlsafe(8),
        "insecure-" + secrets.token_urlsafe(50),
        "django-insecure-" + secrets.token_urlsafe(50),
        "abab" * 20,
    ],
    ids=["empty", "short", "our-insecure-prefix", "django-insecure-prefix", "few-distinct-characters"],
)
def test_production_refuses_an_insecure_secret_key(key):
    result = manage("check", env=production_env(SECRET_KEY=key))
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY" in result.stderr


def test_debug_mode_runs_without_a_secret_key():
    result = manage("check", env=production_env(DEBUG="1", SECRET_KEY=None, DATABASE_URL=None, REDIS_URL=None))
    assert result.returncode == 0, result.stderr[-2000:]


# --- REDIS_URL picks the production backends --------------------------------------------------


def test_redis_url_selects_redis_for_channel_layer_cache_and_celery():
    chosen = settings_under(production_env())
    assert chosen["channel_layer"].startswith("channels_redis.")
    assert chosen["channel_layer_hosts"][0]["address"] == PRODUCTION_REDIS_URL
    assert chosen["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert chosen["cache_location"] == PRODUCTION_REDIS_URL
    assert chosen["broker"] == PRODUCTION_REDIS_URL
    assert chosen["tasks_eager"] is False and chosen["tasks_in_process"] is False
    assert chosen["database_engine"] == "django.db.backends.postgresql"


def test_without_redis_url_the_embedded_backends_are_used():
    chosen = settings_under(production_env(REDIS_URL=None, DATABASE_URL=None, DEBUG="1"))
    assert chosen["channel_layer"] == "debates.channel_layer.EmbeddedChannelLayer"
    assert chosen["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert chosen["broker"] == "memory://"
    assert chosen["tasks_eager"] is True and chosen["tasks_in_process"] is True
    assert chosen["database_engine"] == "django.db.backends.sqlite3"


# --- password hashing ---------------------------------------------------------------------------


def test_production_hashes_passwords_with_pbkdf2():
    assert settings_under(production_env())["password_hashers"][0] == "django.contrib.auth.hashers.PBKDF2PasswordHasher"


def test_the_tests_hash_with_md5_and_their_servers_still_check_every_hash():
    from django.conf import settings
    from django.contrib.auth.hashers import check_password, make_password

    assert settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.MD5PasswordHasher"
    assert make_password("pass-for-tests-1").startswith("md5$")
    # The daphne and Celery subprocesses inherit the variable, so they accept the fixtures' passwords;
    # a production (PBKDF2) hash still checks there too.
    served = settings_under(production_env(DEBATELAB_FAST_PASSWORD_HASHING="1"))["password_hashers"]
    assert served[0] == settings.PASSWORD_HASHERS[0] and "django.contrib.auth.hashers.PBKDF2PasswordHasher" in served
    assert os.environ["DEBATELAB_FAST_PASSWORD_HASHING"] == "1"
    assert check_password("pass-for-tests-1", make_password("pass-for-tests-1", hasher="pbkdf2_sha256"))


# What a turn timeout does once scheduled: a timer thread in this process, or a message on the broker.
SCHEDULE_A_TIMEOUT = """
import django, json, threading
from datetime import timedelta
django.setup()
from django.utils import timezone
from debates import background
background.dispatch("debates.tasks.expire_turn", 987654321, eta=timezone.now() + timedelta(hours=1))
timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
print(json.dumps({"timers": len(timers)}))
"""


def test_without_redis_url_turn_timeouts_run_in_process():
    result = run(["-c", SCHEDULE_A_TIMEOUT], production_env(REDIS_URL=None, DATABASE_URL=None, DEBUG="1"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"timers": 1}


@pytest.fixture
def real_redis_url():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs Redis (run with REDIS_URL set, as make test does)")
    return url


def test_with_redis_url_turn_timeouts_go_to_the_celery_broker(real_redis_url):
    import redis

    queue = f"settings-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(real_redis_url)
    try:
        result = run(["-c", SCHEDULE_A_TIMEOUT], production_env(REDIS_URL=real_redis_url, CELERY_QUEUE=queue))
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads(result.stdout.strip().splitlines()[-1]) == {"timers": 0}
        message = json.loads(client.lindex(queue, 0))
        assert message["headers"]["task"] == "debates.tasks.expire_turn"
        assert client.llen(queue) == 1
    finally:
        for key in client.scan_iter(f"*{queue}*"):
            client.delete(key)


USE_REDIS_BACKENDS = """
import asyncio, django, json
django.setup()
from channels.layers import get_channel_layer
from django.core.cache import cache

async def round_trip():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "probe", "text": "through redis"})
    return type(layer).__module__, (await asyncio.wait_for(layer.receive(channel), 10))["text"]

module, text = asyncio.run(round_trip())
cache.set("settings-probe", "cached in redis", 60)
print(json.dumps({"layer_module": module, "text": text, "cache_key": cache.make_key("settings-probe")}))
"""


def test_redis_url_backends_really_use_redis(real_redis_url):
    import redis

    result = run(["-c", USE_REDIS_BACKENDS], production_env(REDIS_URL=real_redis_url))
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["layer_module"].startswith("channels_redis.")
    assert seen["text"] == "through redis"
    client = redis.Redis.from_url(real_redis_url)
    try:
        assert client.exists(seen["cache_key"]), "the cache entry is not in Redis"
    finally:
        client.delete(seen["cache_key"])
