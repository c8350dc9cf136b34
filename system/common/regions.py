"""Home regions and conversation ids: pure functions of user ids, shared by servers, routers,
the load generator and tests.

A user id is 1-64 characters of ``[A-Za-z0-9_.@-]``. ``name@region`` names its home region
explicitly; any other id is placed by a stable hash (CRC-32 of the id, modulo the number of
regions, in the configured order), so every process agrees without asking anyone.
A conversation is the unordered pair of its two users: ``conversation_id("b", "a") == "a~b"``.
"""
from __future__ import annotations

import re
import zlib

from lab.errors import UsageError

USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
CONV_SEPARATOR = "~"


class UnknownUser(UsageError):
    """A user id that is malformed or names a region the lab does not have."""


def check_user(user: object) -> str:
    if not isinstance(user, str) or not USER_RE.match(user):
        raise UnknownUser(f"invalid user id {str(user)[:80]!r}: use 1-64 characters of A-Z a-z 0-9 _ . @ -")
    return user


def home_region(user: str, regions: list[str] | tuple[str, ...]) -> str:
    """The region a user lives in; ``UnknownUser`` for a bad id or an unknown explicit region."""
    check_user(user)
    if not regions:
        raise UnknownUser("no regions configured")
    if "@" in user:
        region = user.rsplit("@", 1)[1]
        if region in regions:
            return region
        raise UnknownUser(f"unknown region {region!r} in user id {user!r}: regions are {', '.join(regions)}")
    return regions[zlib.crc32(user.encode()) % len(regions)]


def failover_order(home: str, regions: list[str] | tuple[str, ...]) -> list[str]:
    """The home region first, then the others in ring order after it."""
    i = list(regions).index(home)
    return list(regions[i:]) + list(regions[:i])


def conversation_id(a: str, b: str) -> str:
    x, y = sorted((a, b))
    return f"{x}{CONV_SEPARATOR}{y}"


def conversation_members(conv: str) -> tuple[str, str]:
    a, sep, b = conv.partition(CONV_SEPARATOR)
    if not sep or not USER_RE.match(a) or not USER_RE.match(b):
        raise UnknownUser(f"invalid conversation id {conv[:140]!r}: expected 'userA~userB'")
    return a, b
