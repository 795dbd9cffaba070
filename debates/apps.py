from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed


class DebatesConfig(AppConfig):
    name = "debates"

    def ready(self):
        install_ai_backends()
        setting_changed.connect(_ai_backends_changed)


def install_ai_backends():
    from django.conf import settings

    from .agents import backends

    try:
        backends.install(getattr(settings, "DEBATELAB_AI_BACKENDS", {}))
    except backends.BackendConfigError as error:
        raise ImproperlyConfigured(str(error)) from None


def _ai_backends_changed(setting, **kwargs):
    if setting == "DEBATELAB_AI_BACKENDS":
        install_ai_backends()
