"""The router's side of file-based discovery (``lab.runtime.discovery`` writes the file): which
chat servers to health-check, re-read whenever the file changes.

``DiscoveryFile.poll()`` answers the member list when the file changed since the last poll
(``None`` when it did not, or cannot be read: the router then keeps what it has, so a
missing or half-deployed file never empties the pool). ``diff`` is the pure part: which
servers joined and which left.
"""
from __future__ import annotations

import json
import os

from system.common.config import Peer


class DiscoveryFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None     # (mtime_ns, size) of the last read

    def poll(self) -> dict[str, Peer] | None:
        try:
            st = os.stat(self.path)
            if (st.st_mtime_ns, st.st_size) == self._seen:
                return None
            with open(self.path) as fh:
                groups = json.load(fh)
            members = {g["labels"]["name"]: Peer(url=g["labels"]["url"], region=g["labels"]["region"])
                       for g in groups}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self._seen = (st.st_mtime_ns, st.st_size)
        return members


def diff(current: dict[str, Peer], members: dict[str, Peer]) -> tuple[list[str], list[str]]:
    """(joined, left): names in ``members`` but not ``current``, and the other way round."""
    return sorted(set(members) - set(current)), sorted(set(current) - set(members))
