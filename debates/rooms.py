"""The debates this web process serves, and the work it does for all their sockets together.

Every DEBATELAB_LIVE_POLL_SECONDS the process reads the latest event number of each debate it
has sockets for (one query for all of them) and lets a socket that is still behind a number seen
at the previous poll catch up from the database: an announcement lost while Redis was down, or
dropped, costs one poll, never a stalled debate. The same loop keeps this process's presence
entries alive (debates.presence) and tells its sockets when the debate's online seats change
because another process's connections lapsed.

Database work of the sockets runs here too, on a pool of threads (run_db), instead of the one
thread Channels gives synchronous code by default: many sockets read and write at once.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from channels.auth import AuthMiddleware, CookieMiddleware, SessionMiddleware
from channels.auth import get_user as channels_get_user
from channels.db import DatabaseSyncToAsync
from django.conf import settings

from . import live, presence

log = logging.getLogger(__name__)

_executor = None


def run_db(function, *args, **kwargs):
    """Runs `function` on one of the database threads (each holds its own connection, returned to
    the pool after the call) and returns an awaitable of its result."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.DEBATELAB_DB_THREADS, thread_name_prefix="db")
    loop = asyncio.get_running_loop()

    def on_this_thread():
        live.serve_hints_on(loop)
        try:
            return function(*args, **kwargs)
        finally:
            live.serve_hints_on(None)

    return DatabaseSyncToAsync(on_this_thread, thread_sensitive=False, executor=_executor)()


class PooledAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, with the session and user read on the database threads instead
    of the single thread that every socket of the process would queue on."""

    async def resolve_scope(self, scope):
        scope["user"]._wrapped = await run_db(channels_get_user.func, scope)


def PooledAuthMiddlewareStack(inner):  # noqa: N802 - named like Channels' AuthMiddlewareStack
    return CookieMiddleware(SessionMiddleware(PooledAuthMiddleware(inner)))


class Rooms:
    def __init__(self):
        self.sockets: dict[int, set] = {}  # debate id -> its open sockets (DebateConsumer) in this process
        self.latest: dict[int, int] = {}  # debate id -> the highest event number known here
        self.polled: dict[int, int] = {}  # debate id -> the number read at the previous poll
        self.online: dict[int, list[str]] = {}  # debate id -> online seats as last told to the sockets
        self._loop_task = None
        self._last_refresh = 0.0

    def join(self, socket) -> None:
        self.sockets.setdefault(socket.debate_id, set()).add(socket)
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._run())

    def leave(self, socket) -> None:
        members = self.sockets.get(socket.debate_id)
        if members is not None:
            members.discard(socket)
            if not members:
                for table in (self.sockets, self.latest, self.polled, self.online):
                    table.pop(socket.debate_id, None)

    def heard(self, debate_id: int, seq: int) -> None:
        if seq > self.latest.get(debate_id, 0):
            self.latest[debate_id] = seq

    def latest_seq(self, debate_id: int) -> int:
        return self.latest.get(debate_id, 0)

    async def _run(self):
        while self.sockets:
            await asyncio.sleep(settings.DEBATELAB_LIVE_POLL_SECONDS)
            try:
                await self.poll()
            except Exception:  # noqa: BLE001 - a failed round (database or Redis down) is retried next time
                log.warning("live poll failed; retrying", exc_info=True)

    async def poll(self) -> None:
        await self._catch_up_lagging()
        if time.monotonic() - self._last_refresh >= presence.lifetime() / 3:
            self._last_refresh = time.monotonic()
            await self._refresh_presence()

    async def _catch_up_lagging(self) -> None:
        debate_ids = list(self.sockets)
        if not debate_ids:
            return
        numbers = await run_db(_latest_numbers, debate_ids)
        for debate_id, latest in numbers.items():
            self.heard(debate_id, latest)
            behind_since_last_poll = self.polled.get(debate_id, 0)
            self.polled[debate_id] = latest
            for socket in list(self.sockets.get(debate_id, ())):
                if socket.sent_seq < behind_since_last_poll:
                    asyncio.get_running_loop().create_task(socket.catch_up())

    async def _refresh_presence(self) -> None:
        store = presence.store()
        await store.refresh(
            entry
            for members in self.sockets.values()
            for socket in members
            if (entry := socket.presence_entry()) is not None
        )
        for debate_id, seats in (await store.online_many(list(self.sockets))).items():
            if seats != self.online.get(debate_id):
                self.tell_presence(debate_id, seats)

    def tell_presence(self, debate_id: int, seats: list[str]) -> None:
        """Sends the online seats to this process's sockets of the debate, once per change."""
        self.online[debate_id] = seats
        for socket in list(self.sockets.get(debate_id, ())):
            asyncio.get_running_loop().create_task(socket.send_presence(seats))


def _latest_numbers(debate_ids) -> dict[int, int]:
    from .models import Debate

    return dict(Debate.objects.filter(pk__in=debate_ids).values_list("pk", "last_seq"))


rooms = Rooms()
