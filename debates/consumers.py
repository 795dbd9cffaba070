"""One websocket per debate. Thin: it checks who is connected, calls the services and forwards
what the viewer's role may see (debates.snapshots)."""
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db.models import F

from . import live, services, snapshots
from .models import Debate, Participant
from .protocol import Refused


class DebateConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.debate_id = int(self.scope["url_route"]["kwargs"]["debate_id"])
        self.user = self.scope["user"]
        self.viewer = await database_sync_to_async(self._find_viewer)()
        if self.viewer is None:
            # Closing before accepting makes daphne answer HTTP 403, and a browser cannot tell that
            # from a network error: accept, then close with a code the page can read.
            await self.accept()
            await self.close(code=4403)
            return
        self.group = live.group_name(self.debate_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.sent_seq = 0
        await self.send_state()
        await self._change_presence(+1)

    async def disconnect(self, code):
        if getattr(self, "viewer", None) is None:
            return
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await self._change_presence(-1)

    async def receive(self, text_data=None, bytes_data=None):
        if bytes_data is not None or text_data is None:
            return await self.send_error("bad_message", "send JSON text frames")
        if len(text_data.encode()) > settings.DEBATELAB_MAX_MESSAGE_BYTES:
            return await self.send_error("too_large", f"messages may have at most {settings.DEBATELAB_MAX_MESSAGE_BYTES} bytes")
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
            return await self.send_error("bad_json", "that message is not valid JSON")
        if not isinstance(message, dict):
            return await self.send_error("bad_message", "a message is a JSON object with a 'type'")
        kind = message.get("type")
        handler = {"speech": self.act, "feedback": self.act, "sync": self.sync, "ping": self.pong}.get(kind) \
            if isinstance(kind, str) else None
        if handler is None:
            return await self.send_error("unknown_type", "type must be speech, feedback, sync or ping",
                                         message.get("client_id"))
        await handler(message)

    async def act(self, message):
        client_id = message.get("client_id") or ""
        try:
            fields = _action_fields(message)
            turn, events = await database_sync_to_async(services.submit_action)(
                self.debate_id, self.user, kind=message["type"], client_id=client_id, **fields)
        except Refused as refused:
            return await self.send_error(refused.code, refused.message, client_id)
        await self.send_json({"type": "ack", "client_id": client_id, "turn_id": turn.pk})
        await live.apublish(self.debate_id, events)

    async def sync(self, message):
        after = message.get("after")
        if not isinstance(after, int) or after < 0 or after > self.sent_seq:
            return await self.send_state()
        self.sent_seq = after
        await self.send_events()

    async def pong(self, message):
        await self.send_json({"type": "pong"})

    async def send_error(self, code, text, client_id=None):
        await self.send_json({"type": "error", "code": code, "message": text, "client_id": client_id})

    async def send_json(self, content, close=False):
        """Every frame carries a sequence number: events their own, other frames the last one sent
        on this connection, so a client can always tell whether it has missed something."""
        if "seq" not in content and hasattr(self, "sent_seq"):
            content = dict(content, seq=self.sent_seq)
        await super().send_json(content, close)

    async def send_state(self):
        state = await database_sync_to_async(self._state)()
        self.sent_seq = state["seq"]
        await self.send_json(state)

    async def send_events(self):
        frames = await database_sync_to_async(self._events_after)(self.sent_seq)
        for frame in frames:
            await self.send_json(frame)
        if frames:
            self.sent_seq = frames[-1]["seq"]

    # Group messages.
    async def debate_changed(self, message):
        if message["seq"] > self.sent_seq:
            await self.send_events()

    async def debate_ephemeral(self, message):
        frame = snapshots.ephemeral_for(message["message"], self.viewer)
        if frame is not None:
            await self.send_json(frame)

    # Database work, run in a thread.
    def _find_viewer(self):
        debate = Debate.objects.filter(pk=self.debate_id).first()
        return snapshots.viewer_for(debate, self.user) if debate else None

    def _state(self):
        debate = Debate.objects.select_related("question").get(pk=self.debate_id)
        return snapshots.state_for(debate, self.viewer)

    def _events_after(self, seq):
        return snapshots.events_after(Debate.objects.get(pk=self.debate_id), self.viewer, seq)

    async def _change_presence(self, delta):
        if self.viewer.participant is None:
            return
        seats = await database_sync_to_async(self._update_presence)(delta)
        await self.channel_layer.group_send(self.group, {"type": "debate.ephemeral",
                                                         "message": {"type": "presence", "seats": seats}})

    def _update_presence(self, delta):
        Participant.objects.filter(pk=self.viewer.participant.pk).update(online_connections=F("online_connections") + delta)
        return list(Participant.objects.filter(debate_id=self.debate_id, online_connections__gt=0)
                    .exclude(seat=Participant.OBSERVER).values_list("seat", flat=True))


def _action_fields(message: dict) -> dict:
    """The fields a client may send with an action, type-checked."""
    text = message.get("text", message.get("comment", ""))
    if not isinstance(text, str):
        raise Refused("bad_message", "text must be a string")
    note = message.get("private_note", "")
    if not isinstance(note, str):
        raise Refused("bad_message", "private_note must be a string")
    client_id = message.get("client_id", "")
    if not isinstance(client_id, str):
        raise Refused("bad_message", "client_id must be a string")
    seat = message.get("seat")
    if seat is not None and not isinstance(seat, str):
        raise Refused("bad_message", "seat must be a string")
    reveal = message.get("reveal")
    if reveal is not None and (isinstance(reveal, bool) or not isinstance(reveal, int)):
        raise Refused("bad_message", "reveal must be a pixel number (row * 28 + column)")
    fields = {"text": text, "private_note": note, "seat": seat, "reveal": reveal,
              "rectangles": message.get("rectangles")}
    if message["type"] == "feedback":
        fields["probabilities"] = message.get("probabilities")
        fields["end_debate"] = message.get("end_debate") is True
    return fields
