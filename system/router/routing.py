"""The router's pure decisions: which server a user goes to, and which regions are failed over.

A user goes to their home region (``system.common.regions.home_region``) when it has a
healthy server, else to the next region in ring order that has one (``failover_order``).
Within a region the server is picked by a stable hash of the user id among the healthy ones,
so a user sticks to one replica while the pool does not change.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from system.common.regions import failover_order, home_region


@dataclass(frozen=True)
class Choice:
    user: str
    home: str
    region: str
    server: str

    @property
    def failed_over(self) -> bool:
        return self.region != self.home


def choose(user: str, regions: list[str], healthy: dict[str, list[str]]) -> Choice | None:
    """The route for ``user``; None when no region has a healthy server. Raises UnknownUser."""
    home = home_region(user, regions)
    for region in failover_order(home, regions):
        servers = sorted(healthy.get(region, ()))
        if servers:
            return Choice(user, home, region, servers[zlib.crc32(user.encode()) % len(servers)])
    return None


def region_down(regions: list[str], healthy: dict[str, list[str]]) -> dict[str, bool]:
    """For each region: True when it has no healthy server (its users are failed over)."""
    return {r: not healthy.get(r) for r in regions}


def failover_changes(before: dict[str, bool], after: dict[str, bool]) -> list[tuple[str, str]]:
    """(region, "failed_over" | "restored") for every region whose state changed."""
    out = []
    for region, down in after.items():
        if down != before.get(region, False):
            out.append((region, "failed_over" if down else "restored"))
    return out
