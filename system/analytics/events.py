"""The mechanism events file (contracts §5): one JSON line per state change, one ``write``
each on a file opened for appending; kept in memory too (``recent``)."""
from __future__ import annotations

import collections
import json
import logging
import os
import time
from typing import Callable

log = logging.getLogger("nineslab.events")


class EventLog:
    def __init__(self, source: str, path: str | None, clock: Callable[[], float] = time.time) -> None:
        self.source, self.path, self.clock = source, path, clock
        self.recent: collections.deque[dict] = collections.deque(maxlen=200)
        self._fd = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, kind: str, subject: str, state: str, detail: str = "") -> dict:
        event = {"ts": self.clock(), "source": self.source, "kind": kind, "subject": subject,
                 "state": state, "detail": detail}
        self.recent.append(event)
        log.warning("%s %s -> %s %s", kind, subject, state, detail)
        if self._fd is not None:
            os.write(self._fd, (json.dumps(event) + "\n").encode())
        return event

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
