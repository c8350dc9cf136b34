"""The two JetStream streams of contracts §6, made the same way by every service that needs them.

``CHAT`` (``chat.*``) holds the chat messages, ``EVENTS`` (``events.>``) the analytics events
(deliveries, failed sends, presence). Whichever service starts first creates them, so their
configuration lives here once: file storage, a 120 s duplicate window (the publishers' retries
under one message id), R3 — R1 only on a lone node, never because a cluster is short of
nodes at start-up (the caller retries until it can hold R3) — and a maximum age:

- ``CHAT`` 24 h: a regional store restored from its last backup replays from the stream
  what came after (lab/dr), so this must exceed the backup interval (300 s) by far;
- ``EVENTS`` 24 h too: analytics keeps raw events twice that (``raw_retention_seconds``,
  48 h), so whatever either stream can still redeliver is checked against its key and never
  counted twice. Before, ``EVENTS`` had no limit and only grew.

An existing stream is left as it is.
"""
from __future__ import annotations

import logging

import nats.js.errors
from nats.js.api import StorageType, StreamConfig

from lab.errors import DependencyError

log = logging.getLogger("nineslab.streams")

CHAT_STREAM, EVENTS_STREAM = "CHAT", "EVENTS"
CHAT_RETENTION_SECONDS = 24 * 3600.0
EVENTS_RETENTION_SECONDS = 24 * 3600.0
DUPLICATE_WINDOW_SECONDS = 120.0
STREAMS: dict[str, tuple[list[str], float]] = {
    CHAT_STREAM: (["chat.*"], CHAT_RETENTION_SECONDS),
    EVENTS_STREAM: (["events.>"], EVENTS_RETENTION_SECONDS),
}


def stream_config(name: str, replicas: int) -> StreamConfig:
    subjects, max_age = STREAMS[name]
    return StreamConfig(name=name, subjects=subjects, num_replicas=replicas, storage=StorageType.FILE,
                        duplicate_window=DUPLICATE_WINDOW_SECONDS, max_age=max_age)


async def ensure_stream(js, name: str, replicas: int | None = None) -> int:
    """Create ``name`` if it does not exist; the replica count it has.

    ``replicas`` forces a count; without it R3, or R1 when the server says it is not
    clustered. Raises :class:`DependencyError` when the stream cannot be made now (a cluster
    short of nodes, no JetStream yet): the caller retries.
    """
    try:
        return (await js.stream_info(name)).config.num_replicas or 1
    except nats.js.errors.NotFoundError:
        pass
    for r in ([replicas] if replicas else [3, 1]):
        try:
            await js.add_stream(stream_config(name, r))
            log.info("created stream %s (R%d)", name, r)
            return r
        except nats.js.errors.APIError as exc:
            text = str(exc.description or exc).lower()
            if "already in use" in text or "already exists" in text:    # made meanwhile by another service
                return (await js.stream_info(name)).config.num_replicas or 1
            if r == 3 and not replicas and "non-clustered" in text:
                continue                                                # a lone node: R1
            raise DependencyError(f"cannot create JetStream stream {name} (R{r}): "
                                  f"{exc.description or exc}") from exc
    raise AssertionError("unreachable: the last replica count either returns or raises")


async def ensure_streams(js, replicas: int | None = None) -> dict[str, int]:
    """Both streams (see :func:`ensure_stream`); the replica count of each."""
    return {name: await ensure_stream(js, name, replicas) for name in STREAMS}
