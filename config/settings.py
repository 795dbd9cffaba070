"""DebateLab settings, read from the environment.

Embedded default (nothing set): SQLite in var/, in-memory channel layer, AI work and turn timers
run in-process. Production: DATABASE_URL (PostgreSQL) and REDIS_URL (channel layer, cache, Celery
broker) chosen by environment variables, DEBUG off, a real SECRET_KEY required.
"""

import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DEBATELAB_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


INSECURE_KEY_PREFIX = "insecure-"


def is_weak_secret(key: str) -> bool:
    """The same test as Django's security.W009 check, so production refuses what check --deploy flags."""
    return key.startswith((INSECURE_KEY_PREFIX, "django-insecure-")) or len(key) < 50 or len(set(key)) < 5


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (production).")
    SECRET_KEY = INSECURE_KEY_PREFIX + "development-only-key"
if not DEBUG and is_weak_secret(SECRET_KEY):
    raise ImproperlyConfigured("SECRET_KEY must be a real secret (50+ random characters) in production.")

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "debates",
    "judging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it turns a locked-out sign-in into its answer
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "judging.context_processors.offline_assignments",  # the lobby's offline judging list
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'debatelab.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Live pages write from several threads; wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
elif env_bool("DATABASE_POOL", default=True):
    # A process's threads (sockets' database work, requests) borrow connections from a pool
    # instead of opening one per call; DATABASE_POOL_SIZE bounds what one process holds.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": int(os.environ.get("DATABASE_POOL_SIZE", "12")),
        "timeout": 30,
    }
    # After a PostgreSQL restart the pool's idle connections are dead: the pool checks each one as
    # it lends it out and replaces it, instead of failing one request or task per dead connection.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# Embedded mode: no broker, so AI work and turn timers run inside the web process.
RUN_TASKS_IN_PROCESS = not REDIS_URL

# Keeps deployments (or test runs) that share a Redis server apart.
DEBATELAB_LIVE_PREFIX = os.environ.get("CHANNEL_PREFIX") or "debatelab" + urlsplit(REDIS_URL).path.replace("/", "-")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # Pub/sub channels ignore Redis database numbers: the prefix keeps deployments (or test
            # runs) that share a Redis server apart.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "max_connections": 1000}], "prefix": DEBATELAB_LIVE_PREFIX},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "debates.channel_layer.EmbeddedChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = RUN_TASKS_IN_PROCESS
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "debatelab")

# The sweep (debates.sweep) reschedules overdue turn deadlines and AI turns that lost their task:
# Celery beat runs it in production (`platform/entrypoint.sh beat`), a timer thread in the embedded
# default. 0 turns it off.
DEBATELAB_SWEEP_INTERVAL = float(os.environ.get("SWEEP_INTERVAL", "10"))
if REDIS_URL and DEBATELAB_SWEEP_INTERVAL > 0:
    CELERY_BEAT_SCHEDULE = {
        "sweep-owed-work": {
            "task": "debates.tasks.sweep_owed_work",
            "schedule": DEBATELAB_SWEEP_INTERVAL,
            # A sweep that waited out a worker outage in the queue is stale: the next one does its work.
            "options": {"expires": max(5.0, DEBATELAB_SWEEP_INTERVAL * 2)},
        }
    }
# /healthz fails when no Celery worker has reported in for this many seconds (production only; the
# embedded default has no worker). 0 turns the check off.
DEBATELAB_WORKER_MAX_AGE = float(os.environ.get("HEALTH_WORKER_MAX_AGE", "60"))

# Production keeps Django's default hashers (PBKDF2 first). The test settings set
# DEBATELAB_FAST_PASSWORD_HASHING=1, which puts MD5 first: fixtures create hundreds of users and each
# PBKDF2 hash costs about a second here. It is an environment variable, not a test-only setting, so
# the daphne and Celery subprocesses the live tests start can check the passwords of those users.
# Never set it in production.
if env_bool("DEBATELAB_FAST_PASSWORD_HASHING"):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *global_settings.PASSWORD_HASHERS]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses sign-ins while locked out
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from
# one address, that pair is locked out for AXES_COOLOFF_MINUTES (HTTP 429), even with the right
# password. Counting the pair, not the address alone, keeps one lab behind one NAT from locking
# each other out. Behind a proxy, run daphne with --proxy-headers so the address is the client's.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Password reset by e-mail. The console back-end (the default) prints the mails to the log; set
# EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST... to send them.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
# Notices are mailed from the thread that made the change (docs/operations.md): a hung server
# must not hold it for long.
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "DebateLab <debatelab@localhost>")
PASSWORD_RESET_TIMEOUT = 24 * 3600

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "lobby"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"


def _ai_backends(value: str) -> dict:
    """DEBATELAB_AI_BACKENDS: a JSON object, or the path of a JSON file holding one. The operator's
    AI back-ends (debates/agents/backends.py checks them); the scripted back-end is always there."""
    if not value.strip():
        return {}
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = Path(value).read_text()
        except OSError as error:
            raise ImproperlyConfigured(f"DEBATELAB_AI_BACKENDS names a file that cannot be read: {error}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ImproperlyConfigured(f"DEBATELAB_AI_BACKENDS is not valid JSON: {error}") from None


DEBATELAB_AI_BACKENDS = _ai_backends(os.environ.get("DEBATELAB_AI_BACKENDS", ""))

# The address people reach this site at, for links in e-mails (pages build theirs from the request).
DEBATELAB_SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# Websocket frames larger than this are refused with an error frame.
DEBATELAB_MAX_MESSAGE_BYTES = 32_000
# The live layer (debates.rooms): threads for the sockets' database work per web process (a few:
# more only fight the event loop for the interpreter lock; scale with WEB_PROCESSES instead), how
# often a web process checks that its sockets have every saved event, and how long a connection
# counts as online after its process was last heard of.
DEBATELAB_DB_THREADS = int(os.environ.get("DEBATELAB_DB_THREADS", "2"))
DEBATELAB_LIVE_POLL_SECONDS = float(os.environ.get("DEBATELAB_LIVE_POLL_SECONDS", "2"))
DEBATELAB_PRESENCE_SECONDS = float(os.environ.get("DEBATELAB_PRESENCE_SECONDS", "30"))

# Production is served over HTTPS (behind a TLS-terminating proxy); HTTPS=0 serves plain HTTP
# with production settings otherwise, as the test suite does on 127.0.0.1.
if env_bool("HTTPS", default=not DEBUG):
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Content-Security-Policy (django-csp): scripts, styles, images and connections only from this
# site (websockets to it included); no inline scripts, no plugins, no framing. Inline style
# attributes stay allowed (server-drawn bar widths): they cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# Serve static files straight from the app folders too, so daphne alone serves a complete site.
WHITENOISE_USE_FINDERS = True
