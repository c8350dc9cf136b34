"""The durable push consumers analytics reads the streams of contracts §6 with.

The streams themselves are made by :mod:`system.common.streams` (whichever service starts
first makes them, so analytics never races the chat servers at start-up).
"""
from __future__ import annotations

import logging

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from system.common.streams import STREAMS

log = logging.getLogger("nineslab.analytics")

DURABLES = {"CHAT": "analytics-chat", "EVENTS": "analytics-events"}    # stream -> durable consumer


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
    for stream, durable in DURABLES.items():
        subject = STREAMS[stream][0][0]
        config = consumer_config(durable, subject, ack_wait, max_ack_pending)
        subs[stream] = await js.subscribe(subject, durable=durable, stream=stream, cb=callbacks[stream],
                                          manual_ack=True, config=config, flow_control=True,
                                          idle_heartbeat=5.0)
    return subs
