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


def test_sync_writes_take_the_fast_path_and_stay_in_order_behind_slow_ones(nats_url):
    from system.chat.nats_writes import NatsWriter

    async def scenario(nc, publisher):
        got = []

        async def collect(msg):
            got.append((int(msg.data), msg.headers.get("Nats-Msg-Id") if msg.headers else None))
        await nc.subscribe("order.x", cb=collect)
        await nc.flush()
        writer = NatsWriter(nc)
        assert writer.direct                     # the installed nats-py has the buffer we write into
        writer.publish("order.x", b"0", msg_id="id-0")
        writer.direct = False                    # as if not connected: these go through Client.publish
        for i in range(1, 11):
            writer.publish("order.x", str(i).encode())
        writer.direct = True                     # while slow ones wait, new ones queue behind them
        for i in range(11, 21):
            writer.publish("order.x", str(i).encode())
        fast_before_drain = writer.direct_writes
        while writer.slow_task is not None:
            await asyncio.sleep(0.01)
        writer.publish("order.x", b"21")
        await nc.flush()
        await asyncio.sleep(0.2)
        return got, fast_before_drain, writer.direct_writes
    got, fast_before_drain, fast = run(nats_url, scenario)
    assert [n for n, _ in got] == list(range(22))
    assert got[0] == (0, "id-0") and got[1][1] is None
    assert fast_before_drain == 1 and fast == 2


def test_submit_answers_by_callback_after_returning_and_a_failing_callback_harms_no_other(nats_url):
    async def scenario(nc, publisher):
        answers, returned = [], []

        def done(name):
            def cb(seq, exc):
                answers.append((name, seq, exc, name in returned))
                if name == "bad":
                    raise RuntimeError("a bug in the caller")
            return cb
        for name in ("a", "bad", "b"):
            publisher.submit("chat.us-east", f"cb-{name}", b"{}", deadline=5, done=done(name))
            returned.append(name)
        publisher.submit("nostream.x", "cb-none", b"{}", deadline=0.2, done=done("none"))
        returned.append("none")
        for _ in range(200):
            if len(answers) == 4:
                break
            await asyncio.sleep(0.02)
        return answers, len(publisher.waiting)
    answers, waiting = run(nats_url, scenario)
    by_name = {a[0]: a for a in answers}
    assert set(by_name) == {"a", "bad", "b", "none"} and all(a[3] for a in answers)   # never called inline
    assert by_name["a"][1] < by_name["bad"][1] < by_name["b"][1] and by_name["b"][2] is None
    assert by_name["none"][1] is None and isinstance(by_name["none"][2], nats.js.errors.NoStreamResponseError)
    assert waiting == 0


def test_a_delayed_flush_gathers_publishes_and_an_ack_written_so_acks_the_message(nats_url):
    from nats.js.api import AckPolicy, ConsumerConfig

    from system.chat.nats_writes import NatsWriter

    async def scenario(nc, publisher):
        js = nc.jetstream()
        await js.publish("chat.ap-south", b"{}", headers={"Nats-Msg-Id": "flush-ack-1"})
        sub = await js.pull_subscribe("chat.ap-south", durable="flush-ack", stream="CHAT",
                                      config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=30))
        [msg] = await sub.fetch(1, timeout=5)
        writer = NatsWriter(nc, flush_delay=0.2)
        got = []

        async def collect(m):
            got.append(m.data)
        await nc.subscribe("gather.x", cb=collect)
        await nc.flush()
        writer.publish("gather.x", b"1")
        writer.publish(msg.reply, b"")                 # what Msg.ack sends
        writer.publish("gather.x", b"2")
        await asyncio.sleep(0.1)
        waited = list(got), len(nc._pending)           # still in the buffer within the delay
        await asyncio.sleep(0.3)
        info = await js.consumer_info("CHAT", "flush-ack")
        return waited, got, info.num_ack_pending
    (early, pending), got, ack_pending = run(nats_url, scenario)
    assert early == [] and pending >= 3
    assert got == [b"1", b"2"] and ack_pending == 0
