"""The JetStream streams every service makes the same way, on real NATS clusters."""
from __future__ import annotations

import asyncio
import time

import nats
import nats.js.errors
import pytest

from lab.errors import DependencyError
from system.chat.streams import PUBLISH_RETRYABLE
from system.chat.streams import ensure_streams as retrying_ensure_streams
from system.common.streams import (CHAT_RETENTION_SECONDS, EVENTS_RETENTION_SECONDS, ensure_stream,
                                   ensure_streams)

pytestmark = pytest.mark.infra


def test_both_streams_are_r3_with_their_own_ages_and_are_left_alone_once_made(servers):
    nodes = servers.nats_cluster(3)

    async def scenario():
        nc = await nats.connect(nodes[0].url)
        try:
            js = nc.jetstream(timeout=5)
            made = await retrying_ensure_streams(js)       # the chat servers': retried while it elects
            configs = {name: (await js.stream_info(name)).config for name in made}
            return made, configs, await ensure_streams(js)
        finally:
            await nc.close()

    made, configs, again = asyncio.run(scenario())
    assert made == again == {"CHAT": 3, "EVENTS": 3}
    assert configs["CHAT"].max_age == CHAT_RETENTION_SECONDS and configs["CHAT"].subjects == ["chat.*"]
    assert configs["EVENTS"].max_age == EVENTS_RETENTION_SECONDS and configs["EVENTS"].subjects == ["events.>"]
    assert configs["CHAT"].duplicate_window == configs["EVENTS"].duplicate_window == 120


def test_a_cluster_that_cannot_place_three_replicas_gets_no_weaker_stream(servers):
    """R1 is for a lone node only: two clustered nodes make the caller wait, not an R1 stream
    that would stay R1 (and lose data with one node) once the third node came."""
    nodes = servers.nats_cluster(2)

    async def scenario():
        nc = await nats.connect(nodes[0].url)
        try:
            js = nc.jetstream(timeout=5)
            end = time.monotonic() + 30
            while True:
                try:
                    await ensure_stream(js, "EVENTS")
                    raise AssertionError("a stream was made on a cluster of two")
                except DependencyError as exc:
                    if "placement" in str(exc) or time.monotonic() > end:
                        refused = str(exc)
                        break
                except PUBLISH_RETRYABLE:          # what a new cluster answers while it elects
                    if time.monotonic() > end:
                        raise
                await asyncio.sleep(0.2)       # the meta leader is still being elected
            with pytest.raises(nats.js.errors.NotFoundError):
                await js.stream_info("EVENTS")
            return refused
        finally:
            await nc.close()

    refused = asyncio.run(scenario())
    assert refused.startswith("cannot create JetStream stream EVENTS (R3): ") and "placement" in refused
