"""Telling connected clients that a debate changed.

Events are saved before they are announced. An announcement carries each new event already cut
for every audience of the debate (debates.snapshots.frames_by_audience), so a socket forwards its
frame without reading the database. The announcement is a hint, not the record: when it is lost
(the channel layer is down, a message is dropped) a socket notices the gap, or the web process's
poll of the debates it serves does (debates.rooms), and the missing events are read from the
database. So publishing never fails the caller: what was saved reaches every screen either way.
"""

import asyncio
import json
import logging
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from . import snapshots

log = logging.getLogger(__name__)


def group_name(debate_id: int) -> str:
    return f"debate-{debate_id}"


def experiment_group_name(experiment_id: int) -> str:
    return f"experiment-{experiment_id}"


def user_group_name(user_id: int) -> str:
    """Every open /ws/me/ socket of one person (debates.consumers.PersonalConsumer)."""
    return f"user-{user_id}"


def events_message(events) -> dict:
    """The group message announcing saved events (DebateEvent rows of one debate, in order): each
    event's frames, already JSON, and which audience gets which."""
    debate = events[0].debate
    announced = []
    for event in sorted(events, key=lambda e: e.seq):
        frames, audiences = snapshots.frames_by_audience(debate, event)
        announced.append({"seq": event.seq, "frames": [json.dumps(f) for f in frames], "audiences": audiences})
    return {"type": "debate.events", "events": announced}


def publish(debate_id: int, events) -> None:
    """Announces saved events once the transaction that saved them commits (at once outside one)."""
    announcement = announcement_of(events)
    if announcement is not None:
        transaction.on_commit(lambda: async_to_sync(send_announcement)(debate_id, announcement))


def announcement_of(events) -> tuple[dict, int | None] | None:
    """What publishing these events sends: the debate's group message and the experiment whose
    dashboards hear of it. Built where the database may be read (a thread, not the event loop)."""
    if not events:
        return None
    return events_message(events), _experiment_of_version(events[0].debate.experiment_version_id)


async def send_announcement(debate_id: int, announcement: tuple[dict, int | None]) -> None:
    message, experiment_id = announcement
    await _asend(group_name(debate_id), message)
    if experiment_id is not None:
        await _asend(experiment_group_name(experiment_id), {"type": "experiment.changed", "at": time.time()})


_experiment_of_versions: dict[int, int] = {}  # a version never moves to another experiment


def _experiment_of_version(version_id: int | None) -> int | None:
    if version_id is None:
        return None
    if version_id not in _experiment_of_versions:
        from .models import ExperimentVersion

        _experiment_of_versions[version_id] = (
            ExperimentVersion.objects.filter(pk=version_id).values_list("experiment_id", flat=True).first()
        )
    return _experiment_of_versions[version_id]


def notify_experiment(debate_id: int) -> None:
    """Tells the experiment's live dashboards (if the debate belongs to one) to refresh their summary."""
    from .models import Debate

    experiment_id = (
        Debate.objects.filter(pk=debate_id).values_list("experiment_version__experiment_id", flat=True).first()
    )
    if experiment_id is not None:
        notify_experiment_id(experiment_id)


def notify_experiment_id(experiment_id: int) -> None:
    _send_now(experiment_group_name(experiment_id), {"type": "experiment.changed", "at": time.time()})


def notify_users(user_ids, notice: dict) -> None:
    """Puts a notice ({"kind": ..., ...}) on each person's own sockets once the transaction commits
    (at once outside one). A hint like every announcement: the pages it wakes read what changed from
    the server, and poll slowly while their socket is down."""
    user_ids = sorted({user_id for user_id in user_ids if user_id is not None})
    if user_ids:
        transaction.on_commit(lambda: _send_hint(_send_notices(user_ids, notice)))


_thread_loop = threading.local()


def serve_hints_on(loop: asyncio.AbstractEventLoop | None) -> None:
    """Called by the web process's database threads (debates.rooms.run_db) around each call: hints
    sent from the thread then go to that event loop without waiting for it."""
    _thread_loop.loop = loop


def _send_hint(coroutine) -> None:
    """Sends a hint (a notice, not a saved event). On a web process's database thread it is handed to
    the process's event loop and the thread goes on at once: waiting for the loop, which is busy
    with every socket's frames, held the thread (and the next socket's speech) for milliseconds.
    Elsewhere (a worker, a page view) it is sent before returning."""
    loop = getattr(_thread_loop, "loop", None)
    if loop is not None and not loop.is_closed():
        asyncio.run_coroutine_threadsafe(coroutine, loop)
    else:
        async_to_sync(_awaited)(coroutine)


async def _awaited(coroutine):
    return await coroutine


async def _send_notices(user_ids: list[int], notice: dict) -> None:
    for user_id in user_ids:
        await _asend(user_group_name(user_id), {"type": "person.notice", "notice": notice})


def publish_ephemeral(debate_id: int, message: dict) -> None:
    """Frames that are not stored (presence, AI tokens): best effort, no sequence number."""
    _send_now(group_name(debate_id), ephemeral_message(message))


def ephemeral_message(message: dict) -> dict:
    return {"type": "debate.ephemeral", "message": message}


def _send_now(group: str, message: dict) -> None:
    async_to_sync(_asend)(group, message)


async def _asend(group: str, message: dict) -> None:
    try:
        await get_channel_layer().group_send(group, message)
    except Exception as error:  # noqa: BLE001 - see the module docstring: the record is in the database
        log.warning(
            "could not announce to %s (%s: %s); clients catch up from the database",
            group,
            error.__class__.__name__,
            error,
        )
