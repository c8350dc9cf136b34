"""Pure tests: toxic schedules, Go-compatible JSON and addresses, and the link pipeline
driven without sockets (fake endpoints), including byte-exactness under toxic churn."""
from __future__ import annotations

import asyncio
import random

import pytest

from chaos.proxy import address, gojson
from chaos.proxy.channel import Channel, Chunk
from chaos.proxy.link import Link
from chaos.proxy.toxic_collection import ToxicWrapper
from chaos.proxy.toxics import REGISTRY
from chaos.proxy.toxics.bandwidth import BandwidthToxic
from chaos.proxy.toxics.latency import LatencyToxic
from chaos.proxy.toxics.slicer import SlicerToxic


# -- toxic schedules -------------------------------------------------------------------

def test_slicer_pieces_cover_the_chunk():
    slicer = SlicerToxic(average_size=1024, size_variation=512)
    pieces = slicer.offsets(480_000, random.Random(1))
    assert 240 <= len(pieces) <= 720
    assert pieces[0][0] == 0 and pieces[-1][1] == 480_000
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    assert all(end > start for start, end in pieces)


def test_slicer_single_bytes():
    assert len(SlicerToxic(average_size=1, size_variation=0).offsets(24, random.Random(1))) == 24


def test_latency_jitter_is_a_uniform_integer_in_range():
    toxic = LatencyToxic(latency=100, jitter=10)
    draws = [toxic.delay_ms(random.Random(seed)) for seed in range(500)]
    assert min(draws) == 90 and max(draws) == 109
    assert LatencyToxic(latency=100, jitter=0).delay_ms(random.Random(1)) == 100
    assert [toxic.delay_ms(random.Random(5)) for _ in range(3)] == [toxic.delay_ms(random.Random(5))] * 3


def test_bandwidth_uses_1000_byte_kilobytes():
    assert BandwidthToxic(rate=1000).transfer_seconds(480_000) == pytest.approx(0.48)
    assert BandwidthToxic(rate=0).transfer_seconds(480_000) == 0


def test_every_toxic_type_is_registered():
    assert set(REGISTRY) == {"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                             "limit_data", "noop"}


# -- Go JSON -------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    (b"", "EOF"), (b"   \n", "EOF"), (b'{"a":', "unexpected EOF"),
    (b"{x", "invalid character 'x' looking for beginning of object key string"),
    (b"[1 2]", "invalid character '2' after array element"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b"@", "invalid character '@' looking for beginning of value"),
])
def test_go_syntax_errors(body, message):
    with pytest.raises(gojson.GoJsonError) as info:
        gojson.decode(body)
    assert str(info.value) == message


def test_go_decoding_rules():
    assert gojson.decode(b'{"a":1} trailing') == {"a": "1"}
    fields = {"latency": "int64", "jitter": "int64"}
    assert gojson.decode_struct(gojson.decode(b'{"LATENCY": 5, "jitter": null, "x": "y"}'), fields,
                                "LatencyToxic", "toxics.LatencyToxic") == {"latency": 5}
    with pytest.raises(gojson.GoJsonError, match=r"^json: cannot unmarshal number 1e3 into Go struct field "
                                                  r"LatencyToxic.attributes.latency of type int64$"):
        gojson.decode_struct(gojson.decode(b'{"latency": 1e3}'), fields, "LatencyToxic", "x", prefix="attributes.")
    with pytest.raises(gojson.GoJsonError, match="number 9223372036854775808"):
        gojson.decode_struct(gojson.decode(b'{"latency": 9223372036854775808}'), fields, "L", "x")
    with pytest.raises(gojson.GoJsonError, match="cannot unmarshal array into Go value of type toxiproxy.Proxy"):
        gojson.decode_struct([], {"name": "string"}, "Proxy", "toxiproxy.Proxy")


def test_go_encoding():
    assert gojson.encode({"b": 1, "a": [True, None, gojson.Float32(0.2)], "s": "<&>"}) == \
        b'{"b":1,"a":[true,null,0.2],"s":"\\u003c\\u0026\\u003e"}'
    assert gojson.format_float32(1.0) == "1"
    assert gojson.format_float32(0.1) == "0.1"
    assert gojson.format_float32(1e-7) == "1e-7"


# -- addresses -------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:80", ("127.0.0.1", "80")), ("[::1]:80", ("::1", "80")), (":80", ("", "80")),
    ("localhost:", ("localhost", ""))])
def test_split_host_port(text, expected):
    assert address.split_host_port(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("local373", "missing port in address"), ("a:b:c", "too many colons in address"),
    ("[::1", "missing ']' in address")])
def test_split_host_port_errors(text, reason):
    with pytest.raises(address.AddressError, match=reason):
        address.split_host_port(text)


def test_canonical_listen_addresses():
    assert address.canonical("localhost:7070") == "127.0.0.1:7070"
    assert address.canonical("127.0.0.1:7070") == "127.0.0.1:7070"
    assert address.canonical("bogus") == "bogus"


# -- channel -----------------------------------------------------------------------------

async def test_channel_get_and_put_are_cancellation_safe():
    channel = Channel(1)
    getter = asyncio.ensure_future(channel.get())
    await asyncio.sleep(0)
    getter.cancel()
    await asyncio.wait({getter})
    channel.put_nowait(Chunk(b"a", 0))
    putter = asyncio.ensure_future(channel.put(Chunk(b"b", 0)))
    await asyncio.sleep(0)
    putter.cancel()
    await asyncio.wait({putter})
    assert [c.data for c in channel.take_all()] == [b"a"]


# -- the link pipeline without sockets ----------------------------------------------------

class FakeSide:
    """Stands in for connection.Side: records writes, pauses and the close."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.lost = False
        self.closed = asyncio.Event()
        self.paused: set[str] = set()
        self.resets = 0

    def write(self, data) -> None:
        self.data += bytes(data)

    def set_paused(self, reason: str, paused: bool) -> None:
        (self.paused.add if paused else self.paused.discard)(reason)

    def close(self) -> None:
        self.closed.set()


def wrapper(toxic_type: str, name: str | None = None, toxicity: float = 1.0, **attributes) -> ToxicWrapper:
    toxic = REGISTRY[toxic_type](**attributes)
    return ToxicWrapper(name or toxic_type, toxic_type, "downstream", toxicity, toxic, "downstream")


def make_link(seed: int = 1) -> tuple[Link, FakeSide, FakeSide]:
    source, dest = FakeSide(), FakeSide()
    link = Link("downstream", source, dest, rng=random.Random(seed), on_finished=lambda link: None,
                on_reset=lambda: None)
    return link, source, dest


async def test_fast_path_and_eof():
    link, _, dest = make_link()
    link.start([])
    link.feed(b"abc")
    assert bytes(dest.data) == b"abc" and link.fast
    link.feed_eof()
    await asyncio.wait_for(dest.closed.wait(), 1)


async def test_no_byte_lost_while_toxics_churn_on_a_link():
    link, _, dest = make_link()
    link.start([])
    rng = random.Random(4)
    expected = bytearray()
    kinds = [("noop", {}), ("latency", {"latency": 1}), ("slicer", {"average_size": 7, "size_variation": 3}),
             ("bandwidth", {"rate": 10_000}), ("limit_data", {"bytes": 10 ** 12})]
    active: list[ToxicWrapper] = []
    for step in range(400):
        payload = rng.randbytes(rng.randint(1, 3000))
        link.feed(payload)
        expected += payload
        action = rng.random()
        if action < 0.3 and len(active) < 4:
            kind, attributes = rng.choice(kinds)
            w = wrapper(kind, name=f"t{step}", **attributes)
            active.append(w)
            await link.add_toxic(w)
        elif action < 0.55 and active:
            w = active.pop(rng.randrange(len(active)))
            await link.remove_toxic(w)
        elif action < 0.65 and active:
            w = rng.choice(active)
            await link.update_toxic(w)
        await asyncio.sleep(0)
    for w in list(active):
        await link.remove_toxic(w)
    link.feed_eof()
    await asyncio.wait_for(dest.closed.wait(), 10)
    assert bytes(dest.data) == bytes(expected)


async def test_removing_latency_flushes_the_held_chunk_at_once():
    link, _, dest = make_link()
    slow = wrapper("latency", latency=10_000)
    link.start([slow])
    link.feed(b"held")
    await asyncio.sleep(0.01)
    assert dest.data == b""
    await link.remove_toxic(slow)
    for _ in range(10):
        await asyncio.sleep(0)
    assert bytes(dest.data) == b"held"
    assert not link.stages


async def test_removing_timeout_ends_the_link():
    link, _, dest = make_link()
    timeout = wrapper("timeout", timeout=0)
    link.start([timeout])
    link.feed(b"dropped")
    await link.remove_toxic(timeout)
    await asyncio.wait_for(dest.closed.wait(), 1)
    assert dest.data == b""


async def test_toxicity_zero_passes_and_update_redraws():
    link, _, dest = make_link()
    cut = wrapper("limit_data", toxicity=0.0, bytes=0)
    link.start([cut])
    link.feed(b"passes")
    await asyncio.sleep(0.01)
    assert bytes(dest.data) == b"passes"
    cut.toxicity = 1.0
    await link.update_toxic(cut)
    link.feed(b"stops")
    await asyncio.wait_for(dest.closed.wait(), 1)
    assert bytes(dest.data) == b"passes"


async def test_limit_data_truncates_the_crossing_chunk():
    link, _, dest = make_link()
    link.start([wrapper("limit_data", bytes=100)])
    link.feed(b"a" * 90)
    link.feed(b"b" * 20)
    await asyncio.wait_for(dest.closed.wait(), 1)
    assert bytes(dest.data) == b"a" * 90 + b"b" * 10


async def test_head_pauses_the_source_when_the_pipeline_backs_up():
    link, source, _ = make_link()
    link.start([wrapper("timeout", timeout=0)])
    await asyncio.sleep(0)
    for _ in range(20):
        link.feed(b"x" * 1000)
    assert "head" in source.paused
