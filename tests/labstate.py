"""Helpers of the tests that bring a lab up: the ``nines`` command as a subprocess, and a
state directory kept between test runs (initdb once) that is always brought down."""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lab.runtime.local import LocalRuntime
from lab.state import find_state


def nines(*args: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def emergency_down(state_dir: Path) -> None:
    state = find_state(state_dir)
    if state is not None:
        LocalRuntime(stop_grace=3).down(state, lambda _m: None)


@contextlib.contextmanager
def reusable_state_dir(name: str):
    """A state dir kept between test runs, so its PostgreSQL data is initialised once (this
    machine's disk makes initdb and removing data slow); a fresh one when another session
    holds it."""
    base = Path(tempfile.gettempdir()) / f"nineslab-test-{name}"
    base.mkdir(exist_ok=True)
    base.chmod(0o755)
    with open(base / ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            state_dir, fresh = base / "state", None
            shutil.rmtree(state_dir / "logs", ignore_errors=True)
        except BlockingIOError:
            fresh = Path(tempfile.mkdtemp(prefix=f"nineslab-test-{name}-"))
            state_dir = fresh / "state"
        try:
            yield state_dir
        finally:
            emergency_down(state_dir)
            if fresh is not None:
                shutil.rmtree(fresh, ignore_errors=True)
