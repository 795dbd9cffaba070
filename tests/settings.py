"""Settings for the test process: production settings (DEBUG off) served over plain HTTP on
127.0.0.1. The defaults go into the environment, so the daphne and Celery subprocesses that the
live tests start read the same settings. Passwords are hashed with MD5 (see config/settings.py): real
hashing, but cheap, so fixtures that create users stay fast."""
import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("HTTPS", "0")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("DEBATELAB_FAST_PASSWORD_HASHING", "1")

from config.settings import *  # noqa: E402,F401,F403
