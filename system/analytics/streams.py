"""The JetStream streams analytics reads (contracts §6) and its durable push consumers.

``ensure_streams`` creates CHAT (``chat.*``) and EVENTS (``events.>``) when they do not exist
yet — with the chat servers' config: file storage, R3, or R1 when the cluster has one node —
so analytics never races the chat servers at start-up. An existing stream is left alone.
"""
from __future__ import annotations

import logging

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

log = logging.getLogger("nineslab.analytics")

STREAMS = {"CHAT": ["chat.*"], "EVENTS": ["events.>"]}
DURABLES = {"CHAT": ("analytics-chat", "chat.*"), "EVENTS": ("analytics-events", "events.>")}


async def ensure_streams(js, replicas: int | None = None) -> dict[str, int]:
    """Make sure both streams exist; returns the replicas of each."""
    result = {}
    for name, subjects in STREAMS.items():
        try:
            info = await js.stream_info(name)
            result[name] = info.config.num_replicas or 1
            continue
        except NotFoundError:
            pass
        for r in ([replicas] if replicas else [3, 1]):
            try:
                await js.add_stream(StreamConfig(name=name, subjects=subjects, num_replicas=r,
                                                 storage=StorageType.FILE))
                result[name] = r
                log.info("created stream %s (R%d)", name, r)
                break
            except APIError as exc:
                text = str(exc.description or exc).lower()
                if "already in use" in text:
                    info = await js.stream_info(name)   # created meanwhile by a chat server
                    result[name] = info.config.num_replicas or 1
                    break
                # R1 only on a lone node; a cluster short of nodes must not get a weaker stream:
                # raise, and the caller retries until the cluster can hold R3
                if r == 3 and not replicas and "non-clustered" in text:
                    log.info("stream %s: a lone node (%s); using R1", name, exc.description)
                    continue
                raise
    return result


def consumer_config(durable: str, subject: str, ack_wait: float, max_ack_pending: int) -> ConsumerConfig:
    return ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                          ack_wait=ack_wait, max_ack_pending=max_ack_pending, filter_subject=subject)


async def subscribe_consumers(js, ack_wait: float, max_ack_pending: int, callbacks: dict) -> dict[str, object]:
    """Push subscriptions on the durable consumers (created if missing, else bound).

    Push, not pull: the client library's pull ``fetch`` waits message by message and tops
    out near 2,000 messages a second; pushed messages land in ``callbacks[stream]`` at
    once, and ``max_ack_pending`` bounds what is in flight (flow control on top).
    """
    subs = {}
    for stream, (durable, subject) in DURABLES.items():
        config = consumer_config(durable, subject, ack_wait, max_ack_pending)
        subs[stream] = await js.subscribe(subject, durable=durable, stream=stream, cb=callbacks[stream],
                                          manual_ack=True, config=config, flow_control=True,
                                          idle_heartbeat=5.0)
    return subs
