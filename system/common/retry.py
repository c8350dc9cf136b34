"""Retries with exponential backoff and full jitter, for idempotent operations only.

``backoff_delays`` is pure (the delays a policy gives, from an injected ``random.Random``);
``retry_async`` runs an operation until it succeeds, a non-retryable error comes, or the
deadline passes, sleeping through an injectable ``sleep``.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    base: float = 0.05
    factor: float = 2.0
    cap: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * factor**attempt)]."""
        return rng.uniform(0.0, min(self.cap, self.base * self.factor ** attempt))


def backoff_delays(policy: Backoff, rng: random.Random, attempts: int) -> Iterator[float]:
    for attempt in range(attempts):
        yield policy.delay(attempt, rng)


async def retry_async(op: Callable[[], Awaitable[T]], *, retry_on: tuple[type[BaseException], ...],
                      deadline: float, policy: Backoff = Backoff(), rng: random.Random | None = None,
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
    """Run ``op`` until it succeeds; re-raise its last error once ``deadline`` (clock time) passed."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await op()
        except retry_on:
            pause = policy.delay(attempt, rng)
            if clock() + pause > deadline:
                raise
            attempt += 1
            await sleep(pause)
