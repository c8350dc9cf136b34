"""reset_peer: at the first chunk (or end of stream) drops it, waits ``timeout`` ms, then
resets the connection: both sockets close with SO_LINGER 0, so the peers get an RST
(the client's read fails with ECONNRESET). Like upstream the wait cannot be interrupted.
"""
from __future__ import annotations

import asyncio

from chaos.proxy.toxics.base import MAX_SLEEP_SECONDS, Stub, Toxic, register


@register
class ResetPeerToxic(Toxic):
    TYPE = "reset_peer"
    ATTRIBUTES = ("timeout",)

    timeout: int

    async def pipe(self, stub: Stub) -> None:
        await stub.read()
        stub.drop()
        deadline = stub.now() + min(max(self.timeout, 0) / 1000.0, MAX_SLEEP_SECONDS)
        task = asyncio.current_task()
        while True:
            try:
                remaining = deadline - stub.now()
                if remaining > 0:
                    await asyncio.sleep(remaining)
                break
            except asyncio.CancelledError:
                if task is not None:
                    task.uncancel()  # the interrupt waits for the reset, as in upstream
        if stub.on_reset is not None:
            stub.on_reset()
        stub.close()
