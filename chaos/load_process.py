"""The load generator as the engine runs it: ``nines load run`` in a child process, its live
counters (``parts/progress-*.json``), and a stop that lets it flush its samples and ledger.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from lab.errors import DependencyError
from loadtests.runner import read_progress


def load_argv(*, scenario: str, rate: float, duration: float, out: Path, seed: int, state_dir: str,
              extra: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "lab.cli", "load", "run", "--scenario", scenario, "--rate", f"{rate:g}",
            "--duration", f"{duration:g}", "--out", str(out), "--seed", str(seed),
            "--state-dir", str(state_dir), *(extra or [])]


class LoadProcess:
    def __init__(self, argv: list[str], out: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.argv = argv
        self.out = out
        self.clock = clock
        self.popen: subprocess.Popen | None = None
        self.started_at: float | None = None
        self.log_path = out / "load.log"

    def start(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            # its own session: a Ctrl-C reaches the engine, which stops the load in order
            self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except OSError as exc:
            raise DependencyError(f"could not start the load generator: {exc}") from exc
        finally:
            log.close()
        self.started_at = self.clock()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def counters(self) -> dict[str, int]:
        """Cumulative ok/error/dropped so far, from the workers' progress files."""
        tot = read_progress(self.out)
        return {k: tot[k] for k in ("ok", "error", "dropped")}

    def wait_generating(self, timeout: float, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until the generator reports its first arrival; returns that time (t0)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(self.counters().values()) > 0:
                return self.clock()
            if not self.alive():
                raise DependencyError(f"the load generator exited (code {self.returncode}) before it "
                                      f"generated load; see {self.log_path}: {self.log_tail()}")
            sleep(0.05)
        raise DependencyError(f"the load generator produced nothing in {timeout:g} s; see {self.log_path}")

    def wait(self, timeout: float) -> bool:
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout=max(0.0, timeout))
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, grace: float = 30.0) -> None:
        """SIGINT (the generator flushes and merges), then SIGTERM, then SIGKILL."""
        if not self.alive():
            return
        for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                return
            if self.wait(wait):
                return

    def log_tail(self, lines: int = 3) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def load_json(self) -> dict | None:
        try:
            return json.loads((self.out / "load.json").read_text())
        except (OSError, ValueError):
            return None
