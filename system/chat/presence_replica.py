"""Cross-region presence: one region's replica of every chat server's connected users.

The model is Phoenix.Tracker's: each chat server (an *origin*) owns the presence of the
users connected to it and is the only one that changes it. It broadcasts its changes as
numbered deltas plus a heartbeat carrying its latest number; every server of every region
keeps a replica of every origin. A replica applies an origin's deltas strictly in order
(``seq`` = last applied + 1): a duplicate or older delta is ignored, a gap (deltas lost
while a route was cut) or an unknown origin or incarnation (``epoch``) asks for a full
snapshot of that origin, which replaces what the replica holds. So changes are idempotent
and ordered per user, and a later change is never overwritten by an older one.

A user is online when some origin holds them. The answer says how much to trust it:
``stale`` when the region the answer depends on has not been heard within ``stale_after``
(a partition, or a region down): online needs the region of the connection to be fresh;
offline is a statement about every region, so it needs all of them fresh. An origin that
falls silent while its region is still heard (through its other servers) is a dead server:
its users go offline after ``down_after``. A silent region keeps its last known state,
reported stale, until it is heard again and resynchronised, or for ``forget_after`` at most
(Phoenix's permdown): then its servers' users are offline, still stale while it is silent.
Where an offline user was last seen is remembered for the ``max_offline_records`` users who
went offline last; older ones answer as never seen (offline, ``as_of`` None), so a server's
memory stays bounded however many users ever connected.

Pure: no I/O, no clock. ``now`` is the caller's monotonic time; ``ts`` values are the
origins' wall clocks (the answer's ``as_of``). ``presence_sync.py`` is the NATS shell.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class Origin:
    """One chat server as seen by the replica."""

    server: str
    region: str
    epoch: str
    seq: int = 0                    # last delta applied; deltas apply only as seq + 1
    synced: bool = False            # a snapshot (or the very first delta) set the base
    heard: float = 0.0              # replica's monotonic time of the last message
    last_ts: float | None = None    # origin's wall clock in its last message
    users: dict[str, float] = field(default_factory=dict)   # user -> online since (origin wall clock)


@dataclass(frozen=True)
class Answer:
    state: str                      # online | offline | unknown
    region: str | None              # where the user is (online) or was last seen (offline)
    as_of: float | None             # origin's wall clock when that state was set; None if never seen
    stale: bool

    def as_dict(self) -> dict:
        return {"state": self.state, "region": self.region, "as_of": self.as_of, "stale": self.stale}


class PresenceReplica:
    def __init__(self, regions: list[str], *, stale_after: float, down_after: float,
                 forget_after: float = 600.0, max_offline_records: int = 100_000) -> None:
        self.regions = list(regions)
        self.stale_after, self.down_after, self.forget_after = stale_after, down_after, forget_after
        self.max_offline_records = max_offline_records
        self.origins: dict[str, Origin] = {}
        self.region_heard: dict[str, float] = {}
        # user -> (region, origin wall clock), the user who went offline last at the end
        self.last_offline: OrderedDict[str, tuple[str, float]] = OrderedDict()

    # ---- messages from origins; each returns True when the origin must be resynchronised ----
    def heartbeat(self, server: str, region: str, epoch: str, seq: int, ts: float, now: float) -> bool:
        origin = self._heard(server, region, epoch, ts, now)
        return not origin.synced or seq > origin.seq

    def delta(self, server: str, region: str, epoch: str, seq: int, ts: float,
              changes: list[tuple[str, str, float]], now: float) -> bool:
        """Apply ``changes`` ([user, "online"|"offline", ts], ...) numbered ``seq`` by their origin."""
        origin = self._heard(server, region, epoch, ts, now)
        if seq <= origin.seq and origin.synced:
            return False                                 # a duplicate: already applied
        if seq != origin.seq + 1 or not origin.synced:
            return True                                  # a gap: only a snapshot can close it
        for user, state, when in changes:
            self._set(origin, user, state, when)
        origin.seq = seq
        return False

    def snapshot(self, server: str, region: str, epoch: str, seq: int, ts: float,
                 users: dict[str, float], now: float) -> None:
        """Replace what is held for an origin by its full state as of delta ``seq``."""
        origin = self._heard(server, region, epoch, ts, now)
        if origin.synced and seq < origin.seq:
            return                                       # older than deltas already applied
        for user in set(origin.users) - set(users):
            self._set(origin, user, "offline", ts)
        for user, since in users.items():
            if user not in origin.users:
                self._set(origin, user, "online", since)
        origin.seq, origin.synced = seq, True

    def leave(self, server: str, epoch: str, ts: float) -> None:
        """An origin stopped cleanly: its users are offline now."""
        origin = self.origins.get(server)
        if origin is not None and origin.epoch == epoch:
            self._drop(origin, ts)

    def expire(self, now: float) -> list[str]:
        """Drop origins silent for ``down_after`` while their region is heard through another
        origin, or silent for ``forget_after`` in any case; returns their names."""
        dead = [o for o in self.origins.values() if now - o.heard > self.forget_after
                or (now - o.heard > self.down_after and self.fresh(o.region, now)
                    and self.region_heard[o.region] > o.heard)]
        for origin in dead:
            self._drop(origin, origin.last_ts)
        return [o.server for o in dead]

    # ---- answers ----------------------------------------------------------------------
    def fresh(self, region: str, now: float) -> bool:
        heard = self.region_heard.get(region)
        return heard is not None and now - heard <= self.stale_after

    def query(self, user: str, home: str, now: float) -> Answer:
        best: tuple[bool, float, Origin] | None = None
        for origin in self.origins.values():
            since = origin.users.get(user)
            if since is not None:
                key = (self.fresh(origin.region, now), since, origin)
                if best is None or key[:2] > best[:2]:
                    best = key
        if best is not None:
            fresh, since, origin = best
            return Answer("online", origin.region, since, not fresh)
        region, as_of = self.last_offline.get(user, (home, None))
        return Answer("offline", region, as_of, not all(self.fresh(r, now) for r in self.regions))

    # ---- internals --------------------------------------------------------------------
    def _heard(self, server: str, region: str, epoch: str, ts: float, now: float) -> Origin:
        origin = self.origins.get(server)
        if origin is None or origin.epoch != epoch:
            if origin is not None:                       # restarted: its old connections are gone
                self._drop(origin, ts)
            origin = self.origins[server] = Origin(server, region, epoch)
        origin.heard, origin.last_ts = now, ts
        self.region_heard[region] = max(now, self.region_heard.get(region, now))
        return origin

    def _set(self, origin: Origin, user: str, state: str, when: float | None) -> None:
        if state == "online":
            origin.users[user] = when
        elif origin.users.pop(user, None) is not None or user not in self.last_offline:
            previous = self.last_offline.get(user)
            if when is not None and (previous is None or previous[1] <= when):
                self.last_offline[user] = (origin.region, when)
                self.last_offline.move_to_end(user)
                if len(self.last_offline) > self.max_offline_records:
                    self.last_offline.popitem(last=False)

    def _drop(self, origin: Origin, ts: float | None) -> None:
        for user in list(origin.users):
            self._set(origin, user, "offline", ts)
        if self.origins.get(origin.server) is origin:
            del self.origins[origin.server]
