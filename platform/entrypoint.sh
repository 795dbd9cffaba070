#!/bin/sh
# One image, several process roles: `entrypoint.sh web|worker|beat|migrate [extra arguments]`.
# web: apply migrations, then serve HTTP and websockets on port 8000 (PORT overrides) with
#      WEB_PROCESSES daphne processes sharing the port (default: one per core; platform/serve.py).
# worker: a Celery worker (turn timeouts, AI work); scale with `docker compose up --scale worker=N`.
# beat: Celery beat, which runs the sweep (debates.sweep) every SWEEP_INTERVAL seconds; run exactly one.
# migrate: apply migrations and exit.
set -eu
cd "$(dirname "$0")/.."

role="${1:-web}"
if [ "$#" -gt 0 ]; then shift; fi

case "$role" in
  web)
    python manage.py migrate --noinput
    exec python platform/serve.py --host 0.0.0.0 --port "${PORT:-8000}" "$@"
    ;;
  worker)
    exec celery -A config worker --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
  beat)
    exec celery -A config beat --loglevel "${LOG_LEVEL:-INFO}" --schedule "${BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}" "$@"
    ;;
  migrate)
    exec python manage.py migrate --noinput "$@"
    ;;
  *)
    echo "entrypoint.sh: unknown role '$role' (expected web, worker, beat or migrate)" >&2
    exit 64
    ;;
esac
