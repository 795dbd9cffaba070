"""One websocket per debate. Thin: it checks who is connected, calls the services and forwards
what the viewer's role may see (debates.snapshots).

Sequence numbers are gapless per connection: the state frame sets the number, each event frame is
the next one, and every other frame repeats the last number sent. New events arrive already cut
for each audience (debates.live); the database is read only on connect, on a gap and on a
client's sync request. Database work runs on debates.rooms' thread pool.
"""

import asyncio
import json

from autobahn.exception import Disconnected
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.consumer import get_handler_name
from django.conf import settings
from django.db import InterfaceError, OperationalError

from . import live, presence, services, snapshots
from .action_messages import action_fields
from .models import Debate, Participant
from .protocol import Refused
from .rooms import rooms, run_db


TRY_AGAIN_LATER = 1013  # the websocket close code for a server that cannot serve the connection now


class LeavingIsNoError(AsyncJsonWebsocketConsumer):
    """A browser may leave while a frame is on its way to it: daphne then raises from the send
    (django/channels#1820), which would end the consumer without its disconnect handler and leave
    its seat shown online. The frame is dropped; the disconnect that follows cleans up."""

    async def send(self, text_data=None, bytes_data=None, close=False):
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Disconnected:
            pass

    async def send_json(self, content, close=False):  # channels' send_json does not go through send
        try:
            await super().send_json(content, close)
        except Disconnected:
            pass


class DebateConsumer(LeavingIsNoError):
    viewer = None
    ai_seats: set = frozenset()

    async def dispatch(self, message):
        """As Channels dispatches, without the hop to its one thread for synchronous code that it
        makes before every message to close stale database connections: with a thousand sockets
        every frame would queue on that thread. This consumer reads and writes the database only
        through run_db, whose threads close their own connections."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        self.debate_id = int(self.scope["url_route"]["kwargs"]["debate_id"])
        self.user = self.scope["user"]
        self.sent_seq = 0
        self.lock = asyncio.Lock()
        self.group = live.group_name(self.debate_id)
        # Accepted at once: daphne drops a handshake the application has not accepted within its
        # websocket_connect_timeout (5 s), and under load the state can take longer to read. (Also,
        # closing before accepting makes daphne answer HTTP 403, which a browser cannot tell from a
        # network error: someone who may not see the debate is closed with a code the page reads.)
        await self.accept()
        # Joining the group before reading the state means no event falls between the two:
        # events the state already holds are skipped by their numbers.
        await self._join_group()
        try:
            self.viewer, state = await run_db(self._viewer_and_state)
        except (OperationalError, InterfaceError):  # the database is down or restarting
            await self._leave_group()
            await self.close(code=TRY_AGAIN_LATER)  # the page reconnects with backoff
            return
        if self.viewer is None:
            await self._leave_group()
            await self.close(code=4403)
            return
        async with self.lock:
            self.sent_seq = state["seq"]
            rooms.heard(self.debate_id, self.sent_seq)
            await self.send_json(state)
        rooms.join(self)
        await self._change_presence(presence.store().join)

    async def disconnect(self, code):
        if self.viewer is None:
            return
        rooms.leave(self)
        await self._leave_group()
        await self._change_presence(presence.store().leave)

    async def receive(self, text_data=None, bytes_data=None):
        if bytes_data is not None or text_data is None:
            return await self.send_error("bad_message", "send JSON text frames")
        if len(text_data.encode("utf-8", "surrogatepass")) > settings.DEBATELAB_MAX_MESSAGE_BYTES:
            return await self.send_error(
                "too_large", f"messages may have at most {settings.DEBATELAB_MAX_MESSAGE_BYTES} bytes"
            )
        message = parse_message(text_data)
        if message is None:
            return await self.send_error("bad_json", "that message is not valid JSON")
        if not isinstance(message, dict):
            return await self.send_error("bad_message", "a message is a JSON object with a 'type'")
        kind = message.get("type")
        handler = (
            {"speech": self.act, "feedback": self.act, "sync": self.sync, "ping": self.pong}.get(kind)
            if isinstance(kind, str)
            else None
        )
        if handler is None:
            client_id = message.get("client_id")
            return await self.send_error(
                "unknown_type",
                "type must be speech, feedback, sync or ping",
                client_id if isinstance(client_id, str) else None,
            )
        await handler(message)

    async def act(self, message):
        client_id = message.get("client_id") or ""
        try:
            fields = action_fields(message)
            turn_id, announcement = await run_db(self._submit, message["type"], client_id, fields)
        except Refused as refused:
            return await self.send_error(
                refused.code, refused.message, client_id if isinstance(client_id, str) else None
            )
        await self.send_json({"type": "ack", "client_id": client_id, "turn_id": turn_id})
        if announcement is not None:
            await live.send_announcement(self.debate_id, announcement)

    async def sync(self, message):
        after = message.get("after")
        async with self.lock:
            if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= self.sent_seq:
                await self._send_state()
            else:
                self.sent_seq = after
                await self._send_events_from_database()

    async def pong(self, message):
        """Carries the debate's latest event number as this process knows it, so a client that
        missed an announcement asks for what it lacks by itself."""
        await self.send_json({"type": "pong", "latest": max(rooms.latest_seq(self.debate_id), self.sent_seq)})

    async def send_error(self, code, text, client_id=None):
        await self.send_json({"type": "error", "code": code, "message": text, "client_id": client_id})

    async def send_json(self, content, close=False):
        """Every frame carries a sequence number: events their own, other frames the last one sent
        on this connection, so a client can always tell whether it has missed something."""
        if "seq" not in content:
            content = dict(content, seq=self.sent_seq)
        await super().send_json(content, close)

    async def catch_up(self):
        """Reads and sends the events this connection has not had (rooms' poll found it behind)."""
        async with self.lock:
            await self._send_events_from_database()

    def presence_entry(self):
        participant = self.viewer.participant if self.viewer else None
        if participant is None or participant.seat == Participant.OBSERVER:
            return None
        return self.debate_id, participant.seat, self.channel_name

    # Group messages.
    async def debate_events(self, message):
        """Saved events, cut for every audience: forward ours if it is the next number; read
        from the database on a gap."""
        async with self.lock:
            for event in message["events"]:
                rooms.heard(self.debate_id, event["seq"])
                if event["seq"] <= self.sent_seq:
                    continue
                if event["seq"] != self.sent_seq + 1:
                    await self._send_events_from_database()
                    return
                self.sent_seq = event["seq"]
                await self.send(text_data=event["frames"][event["audiences"][self.viewer.audience]])

    async def debate_changed(self, message):
        if message["seq"] > self.sent_seq:
            await self.catch_up()

    async def debate_ephemeral(self, message):
        frame = snapshots.ephemeral_for(message["message"], self.viewer)
        if frame is None:
            return
        if frame.get("type") == "presence":
            rooms.online[self.debate_id] = frame["seats"]
            return await self.send_presence(frame["seats"])
        await self.send_json(frame)

    async def send_presence(self, connected_seats):
        """The online seats: the seats with a connection, and the AI seats, which are always
        there (shown offline, an AI seat would tell a blinded viewer it is not a person)."""
        await self.send_json({"type": "presence", "seats": sorted(set(connected_seats) | self.ai_seats)})

    # Helpers.
    async def _send_state(self):
        state = await run_db(self._state)
        self.sent_seq = state["seq"]
        await self.send_json(state)

    async def _send_events_from_database(self):
        for frame in await run_db(self._events_after, self.sent_seq):
            self.sent_seq = frame["seq"]
            rooms.heard(self.debate_id, frame["seq"])
            await self.send_json(frame)

    async def _join_group(self):
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
        except Exception:  # noqa: BLE001 - without the layer, rooms' poll still brings the news
            pass

    async def _leave_group(self):
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        except Exception:  # noqa: BLE001 - as in _join_group
            pass

    async def _change_presence(self, change):
        entry = self.presence_entry()
        if entry is None:
            return
        try:
            seats = await change(*entry)
        except Exception:  # noqa: BLE001 - presence is a hint; rooms' poll repairs it
            return
        await live._asend(self.group, live.ephemeral_message({"type": "presence", "seats": seats}))

    # Database work, run on the pool's threads.
    def _viewer_and_state(self):
        debate = Debate.objects.select_related("question", "experiment_version").filter(pk=self.debate_id).first()
        viewer = snapshots.viewer_for(debate, self.user) if debate else None
        self.ai_seats = (
            set(debate.participants.filter(agent__isnull=False).values_list("seat", flat=True)) if viewer else set()
        )
        return viewer, (snapshots.state_for(debate, viewer) if viewer else None)

    def _state(self):
        debate = Debate.objects.select_related("question", "experiment_version").get(pk=self.debate_id)
        return snapshots.state_for(debate, self.viewer)

    def _events_after(self, seq):
        debate = Debate.objects.select_related("experiment_version").get(pk=self.debate_id)
        return snapshots.events_after(debate, self.viewer, seq)

    def _submit(self, kind, client_id, fields):
        turn, events = services.submit_action(self.debate_id, self.user, kind=kind, client_id=client_id, **fields)
        return turn.pk, live.announcement_of(events)


def parse_message(text: str):
    """The frame as JSON, or None when it is not JSON (or nests too deep for the parser)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


class PersonalConsumer(LeavingIsNoError):
    """/ws/me/: one signed-in person's notices (debates.notices, judging.notices): seated as a judge,
    their turn, a debate of theirs ended, their lobby or waiting room changed. The pages that listen
    (the lobby, the study's waiting room) fetch what changed over HTTP, so a lost notice costs only
    a delay: while the socket is down they poll slowly. No database work: the user is resolved by
    the middleware and notices arrive through the person's group (debates.live.notify_users)."""

    group = None
    dispatch = DebateConsumer.dispatch  # no hop to Channels' database thread: this consumer never reads it

    async def connect(self):
        user = self.scope["user"]
        await self.accept()
        if not user.is_authenticated:
            await self.close(code=4403)  # accepted first so the page can read the code (see DebateConsumer)
            return
        try:
            await self.channel_layer.group_add(live.user_group_name(user.pk), self.channel_name)
        except Exception:  # noqa: BLE001 - without the layer no notice can come: the page falls back to polling
            await self.close(code=4503)
            return
        self.group = live.user_group_name(user.pk)
        await self.send_json({"type": "hello"})

    async def disconnect(self, code):
        if self.group is None:
            return
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        except Exception:  # noqa: BLE001 - the layer forgets a closed channel by itself
            pass

    async def receive(self, text_data=None, bytes_data=None):
        """Pings keep the connection's path through proxies open; anything else is ignored."""
        if text_data is not None and parse_message(text_data) == {"type": "ping"}:
            await self.send_json({"type": "pong"})

    async def person_notice(self, message):
        await self.send_json(dict(message["notice"], type="notice"))
