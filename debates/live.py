"""Telling connected clients that a debate changed. Events are already saved: a group message only
says 'there is news up to seq N' and each connection reads what its role may see from the database,
so a dropped group message is repaired by the next one or by a client's sync request."""
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def group_name(debate_id: int) -> str:
    return f"debate-{debate_id}"


def publish(debate_id: int, events) -> None:
    if not events:
        return
    seq = max(e.seq for e in events)
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(
        group_name(debate_id), {"type": "debate.changed", "seq": seq}))


async def apublish(debate_id: int, events) -> None:
    if events:
        await get_channel_layer().group_send(group_name(debate_id),
                                             {"type": "debate.changed", "seq": max(e.seq for e in events)})


def publish_ephemeral(debate_id: int, message: dict) -> None:
    """Frames that are not stored (presence, AI tokens): best effort, no sequence number."""
    async_to_sync(get_channel_layer().group_send)(group_name(debate_id), {"type": "debate.ephemeral", "message": message})
