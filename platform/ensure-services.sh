#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on their standard ports, starting them where this machine can.
set -u
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || (command -v psql >/dev/null && psql -h 127.0.0.1 -U postgres -c 'select 1' -qtA >/dev/null 2>&1); }
redis_up() { command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "Starting PostgreSQL..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if ! pg_up; then
  echo "ERROR: PostgreSQL is not answering on 127.0.0.1:5432 and could not be started here." >&2
  echo "       Start it (user 'postgres', trust auth) or set TEST_DATABASE_URL, then run 'make test' again." >&2
  exit 1
fi
if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "Starting Redis..."
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
  fi
fi
if ! redis_up; then
  echo "ERROR: Redis is not answering on 127.0.0.1:6379 and could not be started here." >&2
  echo "       Start it or set TEST_REDIS_URL, then run 'make test' again." >&2
  exit 1
fi
echo "PostgreSQL and Redis are up."
