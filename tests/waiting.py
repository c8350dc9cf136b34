"""Polling for the tests: wait for a condition with a deadline instead of sleeping."""
from __future__ import annotations

import time


def wait_for(check, what: str, timeout: float = 30.0, interval: float = 0.05):
    """``check()``'s first truthy value; AssertionError naming ``what`` after ``timeout`` seconds.

    An exception from ``check`` counts as "not yet" (a service still starting refuses
    connections); the last one is quoted in the failure.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - polling
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what}: not true after {timeout} s (last error: {last!r})")
