"""The pipelined JetStream publisher (system/chat/publisher.py) on a real one-node NATS:
sequences in the order of the publishes, deduplication of a retried id, timeouts and retries,
and a subject no stream holds."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest

from lab.servers.group import ServerGroup
from system.chat.publisher import JetStreamPublisher
from system.chat.streams import ensure_streams


@pytest.fixture(scope="module")
def nats_url():
    root = Path(tempfile.mkdtemp(prefix="nineslab-chat-pub-"))
    try:
        with ServerGroup(root) as group:
            yield group.nats_cluster(1, prefix="nats-pub")[0].url
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(nats_url: str, scenario, timeout: float = 1.0):
    async def main():
        nc = await nats.connect(nats_url)
        await ensure_streams(nc.jetstream(), None)
        publisher = JetStreamPublisher(nc, timeout=timeout)
        await publisher.start()
        try:
            return await scenario(nc, publisher)
        finally:
            await publisher.stop()
            await nc.close()
    return asyncio.run(main())


def test_many_in_flight_get_sequences_in_publish_order_and_a_retried_id_is_stored_once(nats_url):
    async def scenario(nc, publisher):
        ids = [f"pub-order-{i}" for i in range(300)]
        seqs = await asyncio.gather(*(publisher.publish("chat.us-east", mid, b"{}", deadline=5) for mid in ids))
        again = await publisher.publish("chat.us-east", ids[7], b"{}", deadline=5)
        return seqs, again, len(publisher.waiting)
    seqs, again, waiting = run(nats_url, scenario)
    assert seqs == sorted(seqs) and len(set(seqs)) == 300
    assert again == seqs[7]              # the duplicate window answers with the original sequence
    assert waiting == 0


def test_an_unanswered_attempt_is_retried_and_a_late_answer_ignored(nats_url):
    async def scenario(nc, publisher):
        calls = []

        async def slow_first(msg):           # answers the first attempt only after it timed out
            calls.append(msg.reply)
            if len(calls) == 1:
                await asyncio.sleep(0.3)
                await nc.publish(msg.reply, b'{"stream":"X","seq":1}')
            else:
                await nc.publish(msg.reply, b'{"stream":"X","seq":2}')
        await nc.subscribe("slow.one", cb=slow_first)
        seq = await publisher.publish("slow.one", "slow-1", b"{}", deadline=3)
        await asyncio.sleep(0.4)             # the late answer to the first attempt arrives
        return seq, calls, len(publisher.waiting)
    seq, calls, waiting = run(nats_url, scenario, timeout=0.1)
    assert seq == 2 and len(calls) >= 2 and calls[0] != calls[1]
    assert waiting == 0


def test_silence_fails_after_the_deadline_and_no_stream_is_an_error(nats_url):
    async def scenario(nc, publisher):
        async def mute(msg):
            pass
        await nc.subscribe("mute.one", cb=mute)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(nats.errors.TimeoutError):
            await publisher.publish("mute.one", "mute-1", b"{}", deadline=0.5)
        took = loop.time() - started
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await publisher.publish("nostream.one", "none-1", b"{}", deadline=0.2)
        return took, len(publisher.waiting)
    took, waiting = run(nats_url, scenario, timeout=0.1)
    assert 0.3 < took < 2.0
    assert waiting == 0
