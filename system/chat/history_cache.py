"""Recent history in the region's Redis: the fallback while PostgreSQL is down.

``recent:<user>`` is a list of the user's last ``size`` messages (JSON, newest first), sent or
received, written on every store. ``history`` answers the same query as the store, from it.
"""
from __future__ import annotations

import orjson

from system.chat.presence import RedisDeps


def recent_key(user: str) -> str:
    return f"recent:{user}"


# LPUSH and LTRIM of every user of a batch in one command (one reply to parse, not two a user):
# ARGV = size, then for each key its item count and items
PUSH_SCRIPT = """
local size, i = tonumber(ARGV[1]), 2
for k = 1, #KEYS do
  local n = tonumber(ARGV[i])
  redis.call('LPUSH', KEYS[k], unpack(ARGV, i + 1, i + n))
  redis.call('LTRIM', KEYS[k], 0, size - 1)
  i = i + n + 1
end
return #KEYS
"""


class HistoryCache:
    def __init__(self, deps: RedisDeps, size: int = 200) -> None:
        self.deps, self.size = deps, size
        self.push_script = None

    async def add(self, entries: list[tuple[str, bytes]]) -> None:
        """Append (user, message JSON) pairs in one round trip: one script running LPUSH and LTRIM a user."""
        if not entries:
            return
        by_user: dict[str, list[bytes]] = {}
        for user, msg_json in entries:
            by_user.setdefault(user, []).append(msg_json)
        keys, args = [], [self.size]
        for user, items in by_user.items():
            keys.append(recent_key(user))
            args.append(len(items))
            args.extend(items)
        if self.push_script is None:
            self.push_script = self.deps.client.register_script(PUSH_SCRIPT)
        await self.deps.run(lambda: self.push_script(keys=keys, args=args))

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
