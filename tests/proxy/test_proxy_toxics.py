"""Toxic behaviour and timing on real sockets, with the reference's tolerances
(upstream's toxics/*_test.go, link_test.go and proxy_test.go)."""
from __future__ import annotations

import queue
import random
import socket
import threading
import time

import pytest

from proxy_helpers import connect, create_proxy, recv_all, recv_exactly, sink, start_ours

pytestmark = pytest.mark.timeout(60)


def round_trip(client: socket.socket, payload: bytes = b"hello") -> float:
    start = time.perf_counter()
    client.sendall(payload)
    assert recv_exactly(client, len(payload)) == payload
    return time.perf_counter() - start


def within(measure, expected: float, tolerance: float, attempts: int = 3) -> list[float]:
    """Timing on a shared machine: no run may beat ``expected - tolerance`` (a toxic never
    makes things faster), and at least one of ``attempts`` runs must land within
    ``expected ± tolerance`` (scheduler noise only ever adds time)."""
    results = []
    for _ in range(attempts):
        elapsed = measure()
        results.append(elapsed)
        assert elapsed >= expected - tolerance, (elapsed, expected, tolerance)
        if elapsed <= expected + tolerance:
            return results
    raise AssertionError(f"every run took longer than {expected + tolerance:.3f} s: {results}")


def add_toxic(api, proxy: str, body: dict) -> dict:
    reply = api.post(f"/proxies/{proxy}/toxics", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def assert_closed(sock: socket.socket, deadline: float = 2.0) -> None:
    sock.settimeout(deadline)
    try:
        assert sock.recv(1024) == b""
    except ConnectionResetError:
        pass


# -- latency -------------------------------------------------------------------------

@pytest.mark.parametrize("streams, latency, jitter", [
    (["upstream"], 100, 0), (["downstream"], 100, 0), (["upstream", "downstream"], 50, 0),
    (["downstream"], 100, 20), (["downstream"], 0, 0)])
def test_latency_within_jitter_plus_10ms(api, echo_upstream, streams, latency, jitter):
    client = connect(create_proxy(api, "p", echo_upstream.address))
    round_trip(client)
    for stream in streams:
        add_toxic(api, "p", {"type": "latency", "stream": stream,
                             "attributes": {"latency": latency, "jitter": jitter}})
    expected = latency * len(streams) / 1000
    tolerance = (jitter * len(streams) + 10) / 1000
    for _ in range(3):
        within(lambda: round_trip(client), expected, tolerance, attempts=5)
    client.close()


def test_stacked_latency_toxics_add_up(api, echo_upstream):
    client = connect(create_proxy(api, "p", echo_upstream.address))
    for name in ("a", "b"):
        add_toxic(api, "p", {"name": name, "type": "latency", "stream": "upstream",
                             "attributes": {"latency": 250}})
    within(lambda: round_trip(client), 0.5, 0.010)
    client.close()


def test_latency_applies_to_a_new_connection_and_goes_when_removed(api, echo_upstream):
    address = create_proxy(api, "p", echo_upstream.address)
    add_toxic(api, "p", {"type": "latency", "attributes": {"latency": 80}})
    client = connect(address)
    within(lambda: round_trip(client), 0.08, 0.010)
    api.delete("/proxies/p/toxics/latency_downstream")
    assert round_trip(client) < 0.05
    client.close()


def test_latency_does_not_cap_throughput(api, upstream_factory):
    payload = random.Random(1).randbytes(8 * 1024 * 1024)

    def sender(conn):
        conn.sendall(payload)

    upstream = upstream_factory(sender)
    address = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", {"type": "latency", "attributes": {"latency": 50}})

    def rate(target: tuple[str, int], delay: float) -> float:
        client = connect(target, timeout=20)
        start = time.perf_counter()
        received = recv_all(client)
        elapsed = time.perf_counter() - start - delay  # every chunk waits 50 ms, in parallel
        client.close()
        assert received == payload
        return len(payload) / max(elapsed, 1e-3)

    # upstream's bar is 100 MB/s through a latency toxic; on a machine too loaded for even
    # direct loopback to manage that, a quarter of direct shows the toxic is not the cap
    host, port = upstream.address.rsplit(":", 1)
    results = []
    for _ in range(5):
        through = rate(address, 0.050)
        results.append(through)
        if through >= 100e6 or through >= rate((host, int(port)), 0.0) / 4:
            return
    raise AssertionError(f"latency toxic capped throughput: {[f'{r / 1e6:.0f} MB/s' for r in results]}")


# -- bandwidth -----------------------------------------------------------------------

def test_bandwidth_480kb_at_1000_takes_480ms(api, upstream_factory):
    done: queue.Queue[float] = queue.Queue()
    size = 480_000

    def reader(conn):
        recv_exactly(conn, size)
        done.put(time.perf_counter())

    address = create_proxy(api, "p", upstream_factory(reader).address)
    add_toxic(api, "p", {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 1000}})

    def transfer() -> float:
        client = connect(address)
        start = time.perf_counter()
        client.sendall(b"hello world " * 40_000)
        elapsed = done.get(timeout=5) - start
        client.close()
        return elapsed

    within(transfer, 0.480, 0.010, attempts=5)


# -- limit_data ----------------------------------------------------------------------

@pytest.mark.parametrize("writes", [[50], [100], [150], [25, 25, 25, 25], [90, 20]])
def test_limit_data_truncates_then_closes(api, echo_upstream, writes):
    client = connect(create_proxy(api, "p", echo_upstream.address))
    add_toxic(api, "p", {"type": "limit_data", "stream": "downstream", "attributes": {"bytes": 100}})
    sent = received = b""
    for i, size in enumerate(writes):
        part = bytes([65 + i]) * size
        client.sendall(part)
        sent += part
        received += recv_exactly(client, min(len(sent), 100) - len(received))
    assert received == sent[:100]
    if len(sent) >= 100:
        assert_closed(client)  # the limit reached closes the connection
    else:
        client.sendall(b"!")
        assert recv_exactly(client, 1) == b"!"  # under the limit it stays open
    client.close()


def test_limit_data_zero_sends_nothing(api, echo_upstream):
    client = connect(create_proxy(api, "p", echo_upstream.address))
    add_toxic(api, "p", {"type": "limit_data", "stream": "downstream", "attributes": {"bytes": 0}})
    client.sendall(b"anything")
    assert recv_all(client) == b""
    client.close()


def test_limit_data_count_survives_an_update(api, echo_upstream):
    client = connect(create_proxy(api, "p", echo_upstream.address))
    add_toxic(api, "p", {"type": "limit_data", "stream": "downstream", "attributes": {"bytes": 100}})
    client.sendall(b"a" * 60)
    assert recv_exactly(client, 60) == b"a" * 60
    api.patch("/proxies/p/toxics/limit_data_downstream", json={"attributes": {"bytes": 80}})
    client.sendall(b"b" * 60)
    assert recv_all(client) == b"b" * 20
    client.close()


# -- reset_peer, timeout, slow_close, slicer --------------------------------------------

@pytest.mark.parametrize("opened", ["before", "after"])
@pytest.mark.parametrize("stream", ["upstream", "downstream"])
@pytest.mark.parametrize("timeout_ms", [0, 100])
def test_reset_peer_gives_econnreset(api, server, echo_upstream, stream, timeout_ms, opened):
    if opened == "before" and server.kind != "nineslab":
        pytest.skip("upstream closes connections opened before the toxic with a FIN (issue #603)")
    address = create_proxy(api, "p", echo_upstream.address)
    if opened == "before":
        client = connect(address)
        round_trip(client)
    add_toxic(api, "p", {"type": "reset_peer", "stream": stream, "attributes": {"timeout": timeout_ms}})
    if opened == "after":
        client = connect(address)
    start = time.perf_counter()
    client.sendall(b"trigger")
    with pytest.raises(ConnectionResetError):
        client.recv(1024)
    assert abs(time.perf_counter() - start - timeout_ms / 1000) <= 0.110
    assert client.recv(1024) == b""
    client.close()


def test_timeout_drops_data_and_removal_closes_both_sides(api, upstream_factory):
    upstream_eof = threading.Event()

    def handler(conn):
        while conn.recv(1024):
            pass
        upstream_eof.set()

    client = connect(create_proxy(api, "p", upstream_factory(handler).address))
    add_toxic(api, "p", {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}})
    client.sendall(b"lost")
    client.settimeout(0.2)
    with pytest.raises(socket.timeout):
        client.recv(10)
    api.delete("/proxies/p/toxics/timeout_upstream")
    assert_closed(client)
    assert upstream_eof.wait(2)
    client.close()


def test_timeout_closes_after_its_timeout(api, echo_upstream):
    address = create_proxy(api, "p", echo_upstream.address)
    add_toxic(api, "p", {"type": "timeout", "attributes": {"timeout": 100}})

    def until_closed() -> float:
        start = time.perf_counter()
        client = connect(address)
        assert_closed(client)
        client.close()
        return time.perf_counter() - start

    within(until_closed, 0.100, 0.050)


def test_timeout_behind_latency_does_not_block_removing_the_latency(api, echo_upstream):
    client = connect(create_proxy(api, "p", echo_upstream.address))
    add_toxic(api, "p", {"type": "latency", "stream": "upstream", "attributes": {"latency": 1000}})
    add_toxic(api, "p", {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}})
    client.sendall(b"x" * 100)
    start = time.perf_counter()
    assert api.delete("/proxies/p/toxics/latency_upstream").status_code == 204
    assert time.perf_counter() - start < 1.0
    client.close()


def test_toxicity_zero_passes_and_update_to_one_applies_at_once(api, echo_upstream):
    address = create_proxy(api, "p", echo_upstream.address)

    def update_then_eof() -> float:
        api.post("/reset")
        add_toxic(api, "p", {"type": "timeout", "toxicity": 0, "attributes": {"timeout": 100}})
        client = connect(address)
        assert round_trip(client) < 0.05
        start = time.perf_counter()
        api.patch("/proxies/p/toxics/timeout_downstream", json={"toxicity": 1})
        assert_closed(client)
        client.close()
        return time.perf_counter() - start

    within(update_then_eof, 0.100, 0.050)


def test_slow_close_delays_the_close(api, upstream_factory):
    def greeter(conn):
        conn.sendall(b"bye")

    address = create_proxy(api, "p", upstream_factory(greeter).address)
    add_toxic(api, "p", {"type": "slow_close", "attributes": {"delay": 200}})

    def until_closed() -> float:
        start = time.perf_counter()
        client = connect(address)
        assert recv_all(client) == b"bye"
        client.close()
        return time.perf_counter() - start

    within(until_closed, 0.2, 0.05)


def test_slicer_delivers_every_byte_in_pieces(api, upstream_factory):
    payload = random.Random(2).randbytes(24_000)

    def sender(conn):
        conn.sendall(payload)

    address = create_proxy(api, "p", upstream_factory(sender).address)
    # 24 pieces of about 1000 B, 20,000 µs (20 ms) apart: about 0.46 s in all
    add_toxic(api, "p", {"type": "slicer", "attributes": {"average_size": 1000, "size_variation": 100,
                                                          "delay": 20_000}})
    client = connect(address)
    start = time.perf_counter()
    reads = []
    while True:
        data = client.recv(65536)
        if not data:
            break
        reads.append(data)
    elapsed = time.perf_counter() - start
    assert b"".join(reads) == payload
    assert len(reads) >= 5  # pieces 20 ms apart reach the client as separate reads
    assert 0.3 <= elapsed < 5  # the delay is in microseconds, not milliseconds
    client.close()


# -- churn: no byte lost -----------------------------------------------------------------

def test_no_byte_lost_while_toxics_churn(api, echo_upstream):
    client = connect(create_proxy(api, "p", echo_upstream.address), timeout=20)
    messages = [f"{i:08d}|".encode() for i in range(20_000)]
    expected = b"".join(messages)
    received = bytearray()

    def read():
        while len(received) < len(expected):
            data = client.recv(65536)
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    stop = threading.Event()

    def churn():
        rng = random.Random(3)
        kinds = [("noop", {}), ("latency", {"latency": 1, "jitter": 1}), ("bandwidth", {"rate": 100_000}),
                 ("slicer", {"average_size": 64, "size_variation": 32, "delay": 10})]
        while not stop.is_set():
            kind, attributes = rng.choice(kinds)
            stream = rng.choice(["upstream", "downstream"])
            name = f"{kind}_{stream}"
            api.post("/proxies/p/toxics", json={"type": kind, "stream": stream, "attributes": attributes})
            if rng.random() < 0.3:
                api.patch(f"/proxies/p/toxics/{name}", json={"attributes": attributes})
            api.delete(f"/proxies/p/toxics/{name}")

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        for i in range(0, len(messages), 50):
            client.sendall(b"".join(messages[i:i + 50]))
        reader.join(20)
    finally:
        stop.set()
        churner.join(10)
    assert bytes(received) == expected
    client.close()


def test_bulk_stream_survives_switching_paths_midway(api, upstream_factory):
    """A bulk stream takes the splice path; toxics added and removed mid-stream move it to
    the pipeline and back without losing or reordering a byte."""
    payload = random.Random(5).randbytes(24 * 1024 * 1024)

    def sender(conn):
        conn.sendall(payload)

    address = create_proxy(api, "p", upstream_factory(sender).address)
    client = connect(address, timeout=20)
    received = bytearray()
    marks = [2, 8, 14, 20]
    while True:
        data = client.recv(1 << 20)
        if not data:
            break
        received += data
        if marks and len(received) >= marks[0] * 1024 * 1024:
            step = len(marks)
            marks.pop(0)
            if step % 2 == 0:
                add_toxic(api, "p", {"type": "slicer", "attributes": {"average_size": 65536,
                                                                      "size_variation": 1024}})
            else:
                api.delete("/proxies/p/toxics/slicer_downstream")
    assert len(received) == len(payload)
    assert bytes(received) == payload
    client.close()


# -- reproducibility ----------------------------------------------------------------

def _toxicity_pattern(tmp_path, seed: int, upstream: str) -> list[bool]:
    import httpx

    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = start_ours(tmp_path, "--seed", str(seed))  # the later --seed wins over the helper's
    try:
        api = httpx.Client(base_url=proc.url, timeout=10)
        address = create_proxy(api, "p", upstream)
        add_toxic(api, "p", {"type": "limit_data", "toxicity": 0.5, "attributes": {"bytes": 0}})
        pattern = []
        for _ in range(16):
            client = connect(address)
            client.sendall(b"x")
            pattern.append(client.recv(10) == b"")  # b"" when limit_data 0 was drawn
            client.close()
        api.close()
        return pattern
    finally:
        proc.stop()


def test_seed_reproduces_toxicity_draws(server, tmp_path, echo_upstream):
    if server.kind != "nineslab":
        pytest.skip("upstream's -seed seeds a generator the toxics do not use")
    first = _toxicity_pattern(tmp_path / "a", 42, echo_upstream.address)
    again = _toxicity_pattern(tmp_path / "b", 42, echo_upstream.address)
    assert first == again
    assert any(first) and not all(first)  # 16 draws at toxicity 0.5: both outcomes occur


def test_many_concurrent_connections(api, echo_upstream):
    address = create_proxy(api, "p", echo_upstream.address)
    clients = [connect(address) for _ in range(200)]
    for i, client in enumerate(clients):
        client.sendall(f"{i:04d}".encode())
    for i, client in enumerate(clients):
        assert recv_exactly(client, 4) == f"{i:04d}".encode()
        client.close()


def test_sink_upstream_sees_eof_when_client_closes(api, upstream_factory):
    address = create_proxy(api, "p", upstream_factory(sink).address)
    client = connect(address)
    client.sendall(b"data")
    client.close()
