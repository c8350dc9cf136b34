"""limit_data: forwards at most ``bytes`` per connection and direction, truncating the
chunk that crosses the limit, then closes the connection. The count lives in the
stage's per-connection state, so it survives updates of the toxic.
"""
from __future__ import annotations

from chaos.proxy.channel import EOF, Chunk
from chaos.proxy.toxics.base import Stub, Toxic, register


class LimitState:
    __slots__ = ("transmitted",)

    def __init__(self) -> None:
        self.transmitted = 0


@register
class LimitDataToxic(Toxic):
    TYPE = "limit_data"
    ATTRIBUTES = ("bytes",)

    bytes: int

    def validate(self) -> str | None:
        if self.bytes < 0:
            return f"limit_data bytes must be 0 or more, got {self.bytes}"
        return None

    def new_state(self) -> LimitState:
        return LimitState()

    async def pipe(self, stub: Stub) -> None:
        state: LimitState = stub.state
        while True:
            chunk = await stub.read()
            if chunk is EOF:
                stub.close()
                return
            remaining = max(self.bytes - state.transmitted, 0)
            if remaining < len(chunk.data):
                chunk = Chunk(chunk.data[:remaining], chunk.ts)
            if chunk.data:
                await stub.write(chunk)
                state.transmitted += len(chunk.data)
            else:
                stub.drop()
            if self.bytes - state.transmitted <= 0:
                stub.close()
                return
