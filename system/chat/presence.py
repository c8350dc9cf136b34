"""The session directory and presence, in the region's Redis, behind a circuit breaker.

``session:<user>`` holds the name of the chat server that holds the user's connection, with a
TTL the server refreshes while the user stays connected: present = online, absent = offline.
When Redis is unreachable (breaker open) presence is ``unknown`` and delivery falls back to
the user's own NATS subject (see delivery.py).

Presence of users homed in other regions comes from the cross-region replica
(presence_sync.py); ``local_answer`` merges the two for users homed here.
"""
from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from lab.errors import DependencyError
from system.chat.presence_replica import Answer
from system.common.breaker import BreakerOpen, CircuitBreaker

REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError, ConnectionError)


def session_key(user: str) -> str:
    return f"session:{user}"


class RedisDeps:
    """One Redis client and its breaker, shared by the directory and the history cache."""

    def __init__(self, url: str, breaker: CircuitBreaker, timeout: float = 1.0) -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                              max_connections=32)
        self.breaker = breaker

    async def run(self, fn):
        try:
            return await self.breaker.call(fn, failures=REDIS_ERRORS)
        except REDIS_ERRORS as exc:
            raise DependencyError(f"redis: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except REDIS_ERRORS:
            pass


class SessionDirectory:
    def __init__(self, deps: RedisDeps, server: str, ttl: int = 60) -> None:
        self.deps, self.server, self.ttl = deps, server, ttl

    async def register(self, users: list[str]) -> None:
        if not users:
            return

        async def op():
            pipe = self.deps.client.pipeline(transaction=False)
            for u in users:
                pipe.set(session_key(u), self.server, ex=self.ttl)
            await pipe.execute()
        await self.deps.run(op)

    async def unregister(self, user: str) -> None:
        # delete only our own entry: the user may already be connected elsewhere
        script = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
        await self.deps.run(lambda: self.deps.client.eval(script, 1, session_key(user), self.server))

    async def lookup(self, users: list[str]) -> list[str | None]:
        """The server holding each user, or None; raises DependencyError/BreakerOpen when Redis is out."""
        if not users:
            return []
        values = await self.deps.run(lambda: self.deps.client.mget([session_key(u) for u in users]))
        return [v.decode() if v else None for v in values]

    async def presence(self, user: str) -> str:
        try:
            (server,) = await self.lookup([user])
        except (DependencyError, BreakerOpen):
            return "unknown"
        return "online" if server else "offline"


def local_answer(directory: str, tracked: Answer, region: str) -> Answer:
    """Presence of a user homed in ``region``: the session directory decides online/offline
    (it also holds the sessions of failed-over users, registered over NATS) and the replica
    adds where and since when. Redis out: ``unknown``. The replica wins only where the
    directory cannot know yet: the user is online in another region and that region's
    registration has not arrived (in flight, or the regions are partitioned)."""
    if directory == "unknown":
        return Answer("unknown", None, None, True)
    if directory == tracked.state:
        return tracked
    if tracked.state == "online" and tracked.region != region:
        return tracked
    if directory == "online":            # a change the replica has not applied yet
        return Answer("online", None, None, False)
    return Answer("offline", region, None, tracked.stale)
