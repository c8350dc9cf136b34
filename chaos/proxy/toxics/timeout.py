"""timeout: drops all data; with ``timeout > 0`` closes the connection that many
milliseconds after the stage starts or after the last chunk (each chunk restarts the
timer). ``0`` never closes. Removing this toxic closes the connection (upstream's
``Cleanup``), so a client stuck behind it sees EOF instead of hanging forever.
"""
from __future__ import annotations

import asyncio

from chaos.proxy.channel import EOF
from chaos.proxy.toxics.base import MAX_SLEEP_SECONDS, Stub, Toxic, register


@register
class TimeoutToxic(Toxic):
    TYPE = "timeout"
    ATTRIBUTES = ("timeout",)
    CLOSES_ON_REMOVE = True

    timeout: int

    async def pipe(self, stub: Stub) -> None:
        wait = min(self.timeout / 1000.0, MAX_SLEEP_SECONDS) if self.timeout > 0 else None
        while True:
            try:
                chunk = await asyncio.wait_for(stub.read(), wait)
            except asyncio.TimeoutError:
                stub.close()
                return
            stub.drop()
            if chunk is EOF:
                stub.close()
                return
