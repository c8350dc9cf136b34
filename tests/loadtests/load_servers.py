"""A stall-able HTTP server on 127.0.0.1 in its own process, for the load generator tests.

A module of its own (not conftest.py): test modules import it by name, and tests/chaos has a
conftest.py too, so ``from conftest import ...`` broke when both directories ran together.
"""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def trivial_server(stall_after: int = 0, stall_seconds: float = 0.0) -> Iterator[tuple[str, subprocess.Popen]]:
    proc = subprocess.Popen([sys.executable, "-m", "loadtests.trivial_server", "--port", "0",
                             "--stall-after", str(stall_after), "--stall-seconds", str(stall_seconds)],
                            stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("port=") or proc.poll() is not None:
                break
        if not line.startswith("port="):
            raise RuntimeError(f"trivial server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split('=')[1])}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
