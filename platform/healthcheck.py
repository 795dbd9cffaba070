"""Exit 0 when this container's /healthz answers 200; used by the compose health check.
/healthz checks the database, the channel layer and (in production) that a Celery worker has
reported in within HEALTH_WORKER_MAX_AGE seconds; its JSON names the part that failed.

The request names an allowed host, and says it came through the TLS proxy when HTTPS is on, so the
security middleware answers it instead of redirecting it.
"""

import os
import sys
from urllib.error import HTTPError
from urllib.request import Request, urlopen


def allowed_host() -> str:
    for host in os.environ.get("ALLOWED_HOSTS", "localhost").split(","):
        host = host.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def https_on() -> bool:
    debug = os.environ.get("DEBUG", "0").strip().lower() in {"1", "true", "yes", "on"}
    return os.environ.get("HTTPS", "0" if debug else "1").strip().lower() in {"1", "true", "yes", "on"}


def main() -> int:
    headers = {"Host": allowed_host()}
    if https_on():
        headers["X-Forwarded-Proto"] = "https"
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    try:
        with urlopen(Request(url, headers=headers), timeout=5) as response:
            print(response.read().decode())
            return 0 if response.status == 200 else 1
    except HTTPError as error:
        print(f"{error.code}: {error.read().decode()}", file=sys.stderr)
    except OSError as error:
        print(f"no answer from {url}: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
