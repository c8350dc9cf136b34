"""Recent history in the region's Redis: the fallback while PostgreSQL is down.

``recent:<user>`` is a list of the user's last ``size`` messages (JSON, newest first), sent or
received, written on every store. ``history`` answers the same query as the store, from it.
"""
from __future__ import annotations

import orjson

from system.chat.presence import RedisDeps


def recent_key(user: str) -> str:
    return f"recent:{user}"


class HistoryCache:
    def __init__(self, deps: RedisDeps, size: int = 200) -> None:
        self.deps, self.size = deps, size

    async def add(self, entries: list[tuple[str, bytes]]) -> None:
        """Append (user, message JSON) pairs in one round trip: one LPUSH and one LTRIM a user."""
        if not entries:
            return
        by_user: dict[str, list[str]] = {}
        for user, msg_json in entries:
            by_user.setdefault(user, []).append(msg_json)

        async def op():
            pipe = self.deps.client.pipeline(transaction=False)
            for user, items in by_user.items():
                key = recent_key(user)
                pipe.lpush(key, *items)
                pipe.ltrim(key, 0, self.size - 1)
            await pipe.execute()
        await self.deps.run(op)

    async def history(self, user: str, since: int = 0, conv: str | None = None, limit: int = 500) -> list[dict]:
        raw = await self.deps.run(lambda: self.deps.client.lrange(recent_key(user), 0, self.size - 1))
        seen, out = set(), []
        for item in raw:
            msg = orjson.loads(item)
            if msg["id"] in seen or msg["seq"] <= since or (conv and msg["conv"] != conv):
                continue
            seen.add(msg["id"])
            out.append(msg)
        out.sort(key=lambda m: m["seq"])
        return out[:limit]
