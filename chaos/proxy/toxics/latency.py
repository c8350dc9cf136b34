"""latency: every chunk leaves at its receive time + ``latency`` ± ``jitter`` milliseconds.

The jitter is a uniform integer in [-jitter, +jitter) drawn per chunk (as upstream's
``rand.Int63n(2*jitter) - jitter``). A chunk already past due goes at once; order is
kept because the stage handles one chunk at a time, and its 1024-chunk input buffer
means the delay does not cap throughput. Stacked latency toxics add up.
"""
from __future__ import annotations

import random

from chaos.proxy.channel import EOF
from chaos.proxy.toxics.base import Stub, Toxic, register, sleep


@register
class LatencyToxic(Toxic):
    TYPE = "latency"
    ATTRIBUTES = ("latency", "jitter")
    BUFFER_SIZE = 1024

    latency: int
    jitter: int

    def delay_ms(self, rng: random.Random) -> int:
        delay = self.latency
        if self.jitter > 0:
            delay += rng.randrange(self.jitter * 2) - self.jitter
        return delay

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.read()
            if chunk is EOF:
                stub.close()
                return
            due = chunk.ts + self.delay_ms(stub.rng) / 1000.0
            now = stub.now()
            if due > now:
                await sleep(due - now)
                chunk.ts = due
            else:
                chunk.ts = now
            await stub.write(chunk)
