"""Settings for the test process: production settings (DEBUG off) served over plain HTTP on
127.0.0.1. The defaults go into the environment, so the daphne and Celery subprocesses that the
live tests start read the same settings."""
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

from config.settings import *  # noqa: E402,F401,F403
