import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from debates.rooms import PooledAuthMiddlewareStack  # noqa: E402  (needs the app registry loaded above)
from debates.routing import websocket_urlpatterns  # noqa: E402
from judging.routing import websocket_urlpatterns as experiment_websockets  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            PooledAuthMiddlewareStack(URLRouter(websocket_urlpatterns + experiment_websockets))
        ),
    }
)

# A web process holds thousands of long-lived objects (a consumer per socket): collected on Python's
# default schedule they stall every socket of the process for tens of milliseconds, many times a
# minute. What start-up made is frozen out of collection, and the young generation is collected
# after 20,000 allocations instead of 700 (bench/live_load.py measures the effect).
gc.freeze()
gc.set_threshold(20_000, 10, 10)

# The embedded default has no Celery beat: this process runs the sweep itself (debates.sweep).
from debates import sweep  # noqa: E402

sweep.start_in_process()
