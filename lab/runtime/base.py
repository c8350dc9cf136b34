"""The runtime: what turns a topology plan into running processes and a state file.

``local`` (processes on 127.0.0.1, :mod:`lab.runtime.local`) is the default; ``docker``
(compose) will implement the same interface. Every runtime writes the same state file, so
load, chaos and reports never ask which one ran. Process control (kill, pause, resume,
stop, start, restart) is part of the interface because "kill a chat server" means a
signal to a pid here and a container kill there.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab.state import LabState

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LabConfig:
    """Everything ``nines up`` needs, resolved once by the command line (flags, environment)."""

    state_dir: Path
    profile: str = "quick"
    runtime: str = "local"
    topology_file: Path | None = None          # None: the packaged lab/topology.yaml
    proxy_url: str | None = None               # a fault proxy to use instead of starting one
    startup_timeout: float = 60.0              # per process, from start to ready
    stop_grace: float = 10.0                   # SIGTERM -> SIGKILL
    keep_streams: bool = False                 # keep JetStream data from the last up (slower start)


@dataclass
class UpResult:
    state: LabState
    started: bool                              # False: a lab was already running; nothing changed
    skipped: list[str]                         # services not started (their package is not built yet)
    seconds: float


class Runtime(abc.ABC):
    """Starts, stops, checks and controls the processes of one lab."""

    name: str

    @abc.abstractmethod
    def up(self, config: LabConfig, progress: Progress) -> UpResult: ...

    @abc.abstractmethod
    def down(self, state: LabState, progress: Progress) -> list[str]:
        """Stop every process, in reverse dependency order; the names that were running."""

    @abc.abstractmethod
    def health(self, state: LabState) -> dict[str, bool]: ...

    # process control: each updates the record in ``state`` (the caller saves it)
    @abc.abstractmethod
    def kill(self, state: LabState, name: str) -> None: ...

    @abc.abstractmethod
    def pause(self, state: LabState, name: str) -> None: ...

    @abc.abstractmethod
    def resume(self, state: LabState, name: str) -> None: ...

    @abc.abstractmethod
    def stop(self, state: LabState, name: str) -> None: ...

    @abc.abstractmethod
    def start(self, state: LabState, name: str) -> None:
        """Start a stopped or killed process again: same argv, same ports, same data; wait until ready."""

    def restart(self, state: LabState, name: str) -> None:
        self.stop(state, name)
        self.start(state, name)
