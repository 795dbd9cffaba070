"""Who is connected to a debate, kept where it cannot leak.

Each open websocket of a seated person is an entry (debate, seat, connection) with an expiry. The
web process that holds the connection refreshes its entries while the connection lives and
removes them when it closes; a process that dies stops refreshing, and its entries lapse within
DEBATELAB_PRESENCE_SECONDS. A seat is online while it has an entry that has not lapsed. When a
connection closes, the time is kept as the seat's last departure (a judge moving from the room to
the verdict page is gone for a moment, not for good: judging.crowd's judge timeout counts from it).

Production keeps the entries in Redis (one sorted set per debate, scored by expiry), so every web
process sees every connection; the embedded default keeps them in this process, which is the only
one.
"""

import threading
import time

from django.conf import settings

SEPARATOR = "\x1f"  # between a seat and a connection name in a member (neither may contain it)
DEPARTURES_KEPT_SECONDS = 7 * 24 * 3600  # a debate's last departures outlive any judge timeout


def lifetime() -> float:
    return float(settings.DEBATELAB_PRESENCE_SECONDS)


def _member(seat: str, connection: str) -> str:
    return f"{seat}{SEPARATOR}{connection}"


def _seats(members) -> list[str]:
    seats = {(m.decode() if isinstance(m, bytes) else m).split(SEPARATOR, 1)[0] for m in members}
    return sorted(seats)


class LocalPresence:
    """The embedded default: one process, so a dictionary is the whole truth."""

    def __init__(self):
        self._entries: dict[int, dict[str, float]] = {}
        self._departures: dict[int, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _online(self, debate_id: int, now: float) -> list[str]:
        entries = self._entries.get(debate_id, {})
        for member in [m for m, expiry in entries.items() if expiry <= now]:
            del entries[member]
        return _seats(entries)

    async def join(self, debate_id: int, seat: str, connection: str) -> list[str]:
        with self._lock:
            self._entries.setdefault(debate_id, {})[_member(seat, connection)] = time.time() + lifetime()
            return self._online(debate_id, time.time())

    async def leave(self, debate_id: int, seat: str, connection: str) -> list[str]:
        with self._lock:
            self._entries.get(debate_id, {}).pop(_member(seat, connection), None)
            self._departures.setdefault(debate_id, {})[seat] = time.time()
            return self._online(debate_id, time.time())

    async def refresh(self, entries) -> None:
        with self._lock:
            expiry = time.time() + lifetime()
            for debate_id, seat, connection in entries:
                self._entries.setdefault(debate_id, {})[_member(seat, connection)] = expiry

    async def online_many(self, debate_ids) -> dict[int, list[str]]:
        with self._lock:
            now = time.time()
            return {debate_id: self._online(debate_id, now) for debate_id in debate_ids}

    def online(self, debate_id: int) -> list[str]:
        with self._lock:
            return self._online(debate_id, time.time())

    def last_departure(self, debate_id: int, seat: str) -> float | None:
        with self._lock:
            return self._departures.get(debate_id, {}).get(seat)


class RedisPresence:
    """Production: a sorted set per debate in Redis, members scored by their expiry time."""

    def __init__(self, url: str, prefix: str):
        self.url = url
        self.prefix = prefix
        self._async_client = None
        self._sync_client = None

    def _key(self, debate_id: int) -> str:
        return f"{self.prefix}:presence:{debate_id}"

    def _departures_key(self, debate_id: int) -> str:
        return f"{self.prefix}:presence-left:{debate_id}"

    def _client(self):
        if self._async_client is None:
            import redis.asyncio

            self._async_client = redis.asyncio.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        return self._async_client

    async def _write(self, debate_id: int, add: dict | None = None, remove: str | None = None) -> list[str]:
        key, now = self._key(debate_id), time.time()
        pipe = self._client().pipeline(transaction=True)
        if add:
            pipe.zadd(key, add)
        if remove:
            pipe.zrem(key, remove)
            departures = self._departures_key(debate_id)
            pipe.hset(departures, remove.split(SEPARATOR, 1)[0], now)
            pipe.expire(departures, DEPARTURES_KEPT_SECONDS)
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zrange(key, 0, -1)
        pipe.expire(key, int(lifetime() * 2) + 1)
        results = await pipe.execute()
        return _seats(results[-2])

    async def join(self, debate_id: int, seat: str, connection: str) -> list[str]:
        return await self._write(debate_id, add={_member(seat, connection): time.time() + lifetime()})

    async def leave(self, debate_id: int, seat: str, connection: str) -> list[str]:
        return await self._write(debate_id, remove=_member(seat, connection))

    async def refresh(self, entries) -> None:
        entries = list(entries)
        if not entries:
            return
        expiry = time.time() + lifetime()
        pipe = self._client().pipeline(transaction=False)
        for debate_id, seat, connection in entries:
            pipe.zadd(self._key(debate_id), {_member(seat, connection): expiry})
            pipe.expire(self._key(debate_id), int(lifetime() * 2) + 1)
        await pipe.execute()

    async def online_many(self, debate_ids) -> dict[int, list[str]]:
        debate_ids = list(debate_ids)
        pipe = self._client().pipeline(transaction=False)
        now = time.time()
        for debate_id in debate_ids:
            pipe.zrangebyscore(self._key(debate_id), now, "+inf")
        return {debate_id: _seats(members) for debate_id, members in zip(debate_ids, await pipe.execute())}

    def _sync(self):
        if self._sync_client is None:
            import redis

            self._sync_client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        return self._sync_client

    def online(self, debate_id: int) -> list[str]:
        return _seats(self._sync().zrangebyscore(self._key(debate_id), time.time(), "+inf"))

    def last_departure(self, debate_id: int, seat: str) -> float | None:
        left = self._sync().hget(self._departures_key(debate_id), seat)
        return float(left) if left is not None else None


_presence = None


def store():
    """The presence store of this process (Redis when REDIS_URL is set)."""
    global _presence
    if _presence is None:
        if settings.REDIS_URL:
            _presence = RedisPresence(settings.REDIS_URL, settings.DEBATELAB_LIVE_PREFIX)
        else:
            _presence = LocalPresence()
    return _presence


def last_departure(debate_id: int, seat: str) -> float | None:
    """When a connection of `seat` last closed (a Unix time), or None: never, or unknown while the
    store cannot be reached."""
    try:
        return store().last_departure(debate_id, seat)
    except Exception:  # noqa: BLE001 - as in online_seats
        return None


def online_seats(debate_id: int) -> list[str]:
    """The seats with a live connection now; empty when the store cannot be reached (a page
    must still render while Redis is down)."""
    try:
        return store().online(debate_id)
    except Exception:  # noqa: BLE001 - presence is a hint, never a reason to fail a page
        return []
