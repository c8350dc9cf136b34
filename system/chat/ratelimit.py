"""A token bucket per connection (pure; the clock is passed in).

``rate`` tokens a second up to ``burst``; ``take(now)`` is True when a message may go.
``strikes`` counts refusals since the bucket was last full, so the server can close a flood
that keeps ignoring ``rate_limited`` errors (a client that backs off until the bucket refills
starts with a clean record).
"""
from __future__ import annotations


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "last", "strikes")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.last, self.strikes = rate, burst, burst, now, 0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= self.burst:
            self.strikes = 0
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.strikes += 1
        return False
