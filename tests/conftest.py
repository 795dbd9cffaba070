"""Test settings: the suite runs against real PostgreSQL and Redis (make test sets DATABASE_URL and
REDIS_URL); these defaults only fill in what is missing."""
import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("HTTPS", "0")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
