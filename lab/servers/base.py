"""A server process the lab owns: how it is started, how it is stopped, and how we wait for it.

A ``ServerSpec`` says what to run (argv, user, log file, stop signal); ``ManagedProcess``
runs it in its own session (so a Ctrl-C in the terminal reaches the lab, which then stops
children in order, rather than every child at once) with output appended to its log file.
``stop_pid`` stops a process known only by pid and start time, as ``nines down`` does
from the state file; the start time guards against a recycled pid.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil

from lab.errors import DependencyError


@dataclass
class ServerSpec:
    """What to run for one server."""

    name: str
    role: str
    argv: list[str]
    log_file: Path
    ports: dict[str, int] = field(default_factory=dict)
    data_dir: Path | None = None
    user: str | None = None          # run as this system user (PostgreSQL refuses root)
    env: dict[str, str] | None = None
    stop_signal: int = signal.SIGTERM
    cwd: Path | None = None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], *, timeout: float, what: str,
               interval: float = 0.05, alive: Callable[[], bool] | None = None) -> None:
    """Poll ``check`` until it returns true; fail with ``what`` in the message after ``timeout``.

    ``alive`` lets a caller stop waiting at once when the process it waits for has died.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - a readiness probe failing is the normal case while starting
            pass
        if alive is not None and not alive():
            raise DependencyError(f"{what}: the process exited while starting")
        if time.monotonic() > deadline:
            raise DependencyError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(interval)


def process_matches(pid: int, create_time: float | None) -> psutil.Process | None:
    """The live process with this pid, if it is the one we started (same start time)."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def stop_pid(pid: int, create_time: float | None, *, stop_signal: int = signal.SIGTERM,
             grace: float = 10.0) -> bool:
    """Stop a process and its children: ``stop_signal``, then SIGKILL after ``grace`` seconds.

    Returns True when something was running. Resumes a paused process first, or it would
    never act on the signal.
    """
    proc = process_matches(pid, create_time)
    if proc is None:
        return False
    try:
        family = [proc] + proc.children(recursive=True)
    except psutil.Error:
        family = [proc]
    for p in family:
        try:
            p.send_signal(signal.SIGCONT)
        except psutil.Error:
            pass
    try:
        proc.send_signal(stop_signal)
    except psutil.Error:
        return False
    _, still = psutil.wait_procs([proc], timeout=grace)
    for p in still + family[1:]:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(family, timeout=5)
    return True


class ManagedProcess:
    """One running server started from a ``ServerSpec``."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.popen: subprocess.Popen | None = None
        self.create_time: float | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> int:
        spec = self.spec
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(spec.log_file, "ab", buffering=0)
        env = dict(os.environ)
        if spec.env:
            env.update(spec.env)
        try:
            self.popen = subprocess.Popen(
                spec.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=spec.cwd, user=spec.user, start_new_session=True)
        except OSError as exc:
            raise DependencyError(f"{spec.name}: could not start {spec.argv[0]}: {exc}") from exc
        finally:
            log.close()
        try:
            self.create_time = psutil.Process(self.popen.pid).create_time()
        except psutil.Error:
            self.create_time = None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            stop_pid(self.popen.pid, self.create_time, stop_signal=self.spec.stop_signal, grace=grace)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.spec.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
