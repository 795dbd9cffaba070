"""The channel layer of the embedded default (no Redis).

Channels' in-memory layer keeps asyncio queues that belong to the server's event loop. Turn timers
and AI turns run in plain threads in the embedded default, and a send from such a thread would
touch those queues from a foreign loop: the waiting websocket may not wake up. This layer hands
every send made from another loop over to the server's loop.
"""

import asyncio

from channels.layers import InMemoryChannelLayer


class EmbeddedChannelLayer(InMemoryChannelLayer):
    _server_loop = None

    async def receive(self, channel):
        self._server_loop = asyncio.get_running_loop()
        return await super().receive(channel)

    async def send(self, channel, message):
        await self._on_server_loop(super().send, channel, message)

    async def group_send(self, group, message):
        await self._on_server_loop(super().group_send, group, message)

    async def _on_server_loop(self, method, *args):
        loop = self._server_loop
        if loop is None or loop.is_closed() or loop is asyncio.get_running_loop():
            return await method(*args)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(method(*args), loop))
