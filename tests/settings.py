"""Settings for the test process: production settings (DEBUG off) served over plain HTTP on
127.0.0.1. The defaults go into the environment, so the daphne and Celery subprocesses that the
live tests start read the same settings. Passwords are hashed with MD5 (see config/settings.py): real
hashing, but cheap, so fixtures that create users stay fast."""

import json
import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("HTTPS", "0")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# Most live tests run daphne with no Celery worker, or share the test database with other tests: the
# worker health check and the sweep are off unless a test turns them on (tests/test_faults.py).
os.environ.setdefault("HEALTH_WORKER_MAX_AGE", "0")
os.environ.setdefault("SWEEP_INTERVAL", "0")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# AI back-ends are the operator's (DEBATELAB_AI_BACKENDS). The tests register the TEST DOUBLE of the
# paid model APIs (tests/fake_llm_server.py) on two fixed ports of this run, so the daphne and
# Celery subprocesses know the same back-ends.
os.environ.setdefault("FAKE_LLM_PORT", str(_free_port()))
os.environ.setdefault("FAKE_LOCAL_LLM_PORT", str(_free_port()))
_FAKE = f"http://127.0.0.1:{os.environ['FAKE_LLM_PORT']}/v1"
os.environ.setdefault(
    "DEBATELAB_AI_BACKENDS",
    json.dumps(
        {
            "fake-openai": {"kind": "openai-compatible", "base_url": _FAKE, "api_key_env": "FAKE_OPENAI_KEY"},
            "fake-anthropic": {
                "kind": "anthropic",
                "base_url": _FAKE,
                "api_key_env": "FAKE_ANTHROPIC_KEY",
                "models": ["fake-claude", "fake-claude-large"],
            },
            "fake-local": {
                "kind": "openai-compatible",
                "base_url": f"http://127.0.0.1:{os.environ['FAKE_LOCAL_LLM_PORT']}/v1",
            },
            "no-key": {
                "kind": "openai-compatible",
                "base_url": _FAKE,
                "api_key_env": "DEBATELAB_TEST_KEY_THAT_IS_NOT_SET",
            },
            "unreachable": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"},
        }
    ),
)
os.environ.setdefault("DEBATELAB_FAST_PASSWORD_HASHING", "1")

from config.settings import *  # noqa: E402,F401,F403

# The test client loads the middleware anew for every test, and WhiteNoise, which serves from the
# app folders (WHITENOISE_USE_FINDERS), would index every static file each time (half the time of
# the authorization matrix): find each file when it is asked for instead. Same files, same headers.
WHITENOISE_AUTOREFRESH = True
