import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from debates.rooms import PooledAuthMiddlewareStack  # noqa: E402  (needs the app registry loaded above)
from debates.routing import websocket_urlpatterns  # noqa: E402
from judging.routing import websocket_urlpatterns as experiment_websockets  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(PooledAuthMiddlewareStack(URLRouter(websocket_urlpatterns + experiment_websockets))),
})

# The embedded default has no Celery beat: this process runs the sweep itself (debates.sweep).
from debates import sweep  # noqa: E402

sweep.start_in_process()
