import logging
import os

from celery import Celery
from celery.signals import worker_ready
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

log = logging.getLogger(__name__)

app = Celery("debatelab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["debates", "judging", "debates.pixel"])


def _restore_unacked_without_a_transport(restore_unacked):
    """Workaround for kombu 5.7.0 with celery 5.7.0: when the worker loses Redis while it holds a
    message (an ETA timer or a running acks_late task), celery's reconnect path closes the kombu
    connection twice; the second close runs QoS.restore_unacked after the transport has dropped
    its connection details, and `_connparams` fails with AttributeError: 'NoneType' object has no
    attribute 'hostname'. That error is not a connection error, so it escapes kombu's cleanup and
    the worker exits ("Unrecoverable error"). Redis is unreachable at that moment anyway, so we
    raise the ConnectionError that restoring would have met: kombu ignores it, the worker
    reconnects, and the held messages stay in Redis's unacked set, from which kombu restores them
    after the visibility timeout (the sweep, debates.sweep, does not wait that long)."""

    def restore(self, client=None):
        if client is None and getattr(self.channel.connection, "client", None) is None:
            log.warning(
                "Redis connection lost with %d unacknowledged message(s): leaving them for the "
                "visibility-timeout restore",
                len(self._delivered),
            )
            raise kombu_redis.redis.exceptions.ConnectionError("the broker connection is closed")
        return restore_unacked(self, client)

    restore.__wrapped__ = restore_unacked
    return restore


if not hasattr(kombu_redis.QoS.restore_unacked, "__wrapped__"):
    kombu_redis.QoS.restore_unacked = _restore_unacked_without_a_transport(kombu_redis.QoS.restore_unacked)


@worker_ready.connect
def _start_worker_heartbeat(sender=None, **kwargs):
    from debates import worker_health

    worker_health.start_heartbeat(getattr(sender, "hostname", "worker"))
