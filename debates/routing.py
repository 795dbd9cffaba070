from django.urls import path

from .consumers import DebateConsumer, PersonalConsumer

websocket_urlpatterns = [
    path("ws/debates/<int:debate_id>/", DebateConsumer.as_asgi()),
    path("ws/me/", PersonalConsumer.as_asgi()),
]
