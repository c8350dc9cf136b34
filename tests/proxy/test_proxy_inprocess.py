"""The proxy core in the test's own event loop, on real loopback sockets: connections
and links are released when clients go, and stopping a proxy frees its port at once."""
from __future__ import annotations

import asyncio
import random

from chaos.proxy.collection import ProxyCollection


async def echo_server() -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def wait_until(predicate, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_connections_and_links_are_released():
    upstream = await echo_server()
    port = upstream.sockets[0].getsockname()[1]
    collection = ProxyCollection(rng=random.Random(1))
    proxy = await collection.create_json(
        b'{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:%d"}' % port)
    await proxy.toxics.add_json(b'{"type":"latency","stream":"upstream","attributes":{"latency":1}}')
    host, lport = proxy.listen.rsplit(":", 1)
    try:
        for _ in range(3):
            streams = [await asyncio.open_connection(host, int(lport)) for _ in range(20)]
            for reader, writer in streams:
                writer.write(b"ping")
                assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
            assert len(proxy.connections) == 20
            for _, writer in streams:
                writer.close()
            await wait_until(lambda: not proxy.connections and not proxy.toxics.links)
    finally:
        await collection.close()
        upstream.close()


async def test_stopping_frees_the_port_immediately():
    collection = ProxyCollection(rng=random.Random(1))
    proxy = await collection.create_json(b'{"name":"p","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}')
    listen = proxy.listen
    for _ in range(5):
        await proxy.stop()
        await proxy.start()
        assert proxy.listen == listen
    await collection.close()
