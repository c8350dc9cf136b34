"""slow_close: on end of stream, waits ``delay`` milliseconds before closing the destination."""
from __future__ import annotations

from chaos.proxy.channel import EOF
from chaos.proxy.toxics.base import Stub, Toxic, register, sleep


@register
class SlowCloseToxic(Toxic):
    TYPE = "slow_close"
    ATTRIBUTES = ("delay",)

    delay: int

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.read()
            if chunk is EOF:
                stub.drop()
                await sleep(self.delay / 1000.0)
                stub.close()
                return
            await stub.write(chunk)
