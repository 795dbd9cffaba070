"""Telling connected clients that a debate changed. Events are already saved: a group message only
says 'there is news up to seq N' and each connection reads what its role may see from the database,
so a dropped group message is repaired by the next one or by a client's sync request."""
import time

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction


def group_name(debate_id: int) -> str:
    return f"debate-{debate_id}"


def experiment_group_name(experiment_id: int) -> str:
    return f"experiment-{experiment_id}"


def publish(debate_id: int, events) -> None:
    if not events:
        return
    seq = max(e.seq for e in events)
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(
        group_name(debate_id), {"type": "debate.changed", "seq": seq}))
    transaction.on_commit(lambda: notify_experiment(debate_id))


async def apublish(debate_id: int, events) -> None:
    if events:
        await get_channel_layer().group_send(group_name(debate_id),
                                             {"type": "debate.changed", "seq": max(e.seq for e in events)})
        await database_sync_to_async(notify_experiment)(debate_id)


def notify_experiment(debate_id: int) -> None:
    """Tells the experiment's live dashboards (if the debate belongs to one) to refresh their summary."""
    from .models import Debate

    experiment_id = (Debate.objects.filter(pk=debate_id)
                     .values_list("experiment_version__experiment_id", flat=True).first())
    if experiment_id is not None:
        async_to_sync(get_channel_layer().group_send)(
            experiment_group_name(experiment_id), {"type": "experiment.changed", "at": time.time()})


def publish_ephemeral(debate_id: int, message: dict) -> None:
    """Frames that are not stored (presence, AI tokens): best effort, no sequence number."""
    async_to_sync(get_channel_layer().group_send)(group_name(debate_id), {"type": "debate.ephemeral", "message": message})
