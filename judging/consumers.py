"""The experiment dashboard's websocket (/ws/experiments/<id>/): the owner (or a superuser) gets the
summary on connect and a fresh one whenever a debate of the experiment changes or an offline
verdict comes in (debates.live.notify_experiment)."""

import json
import time

from channels.db import database_sync_to_async

from debates import live
from debates.consumers import LeavingIsNoError
from debates.models import Experiment

from . import dashboard


class ExperimentConsumer(LeavingIsNoError):
    async def connect(self):
        self.experiment_id = int(self.scope["url_route"]["kwargs"]["experiment_id"])
        self.summary_started = 0.0
        if not await database_sync_to_async(self._allowed)():
            await self.accept()  # then close with a code the page can read (see DebateConsumer)
            await self.close(code=4403)
            return
        self.group = live.experiment_group_name(self.experiment_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_summary()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """A frame that is not JSON text (binary, broken, nested too deep) is ignored rather than
        closing the socket with 1011."""
        if text_data is None:
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "refresh":
            await self.send_summary()

    async def experiment_changed(self, message):
        # Notices queue up while a summary is being built; one built after a notice was sent
        # already includes its news, so only newer notices need another.
        if message.get("at", float("inf")) >= self.summary_started:
            await self.send_summary()

    async def send_summary(self):
        self.summary_started = time.time()
        await self.send_json(await database_sync_to_async(self._summary)())

    def _allowed(self) -> bool:
        return Experiment.visible_to(self.scope["user"]).filter(pk=self.experiment_id).exists()

    def _summary(self) -> dict:
        return dashboard.summary(Experiment.objects.get(pk=self.experiment_id))
