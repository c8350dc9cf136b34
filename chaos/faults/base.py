"""What every fault driver does: resolve targets, apply a fault, and undo it from a record alone.

A driver's ``plan`` turns an experiment's fault into an ``AppliedFault`` — the full recipe
for applying *and* undoing it (resolved targets, the toxic name we will use). The engine
writes that record to disk (chaos.recovery) *before* ``apply``, so a crashed engine's
successor can undo the fault from the record without the experiment. ``rollback`` must be
idempotent and must tolerate a fault that was only half applied.

A driver is chosen by the fault kind's prefix: ``proxy.*``, ``process.*``, ``docker.*``.
"""
from __future__ import annotations

import fnmatch
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lab.errors import ConfigError


@dataclass
class AppliedFault:
    """One fault as applied: enough to undo it in another process."""

    uid: str
    kind: str
    targets: list[str]                   # resolved link or process names
    params: dict[str, Any] = field(default_factory=dict)
    fault_id: str = ""
    experiment: str = ""
    state_dir: str = ""
    owner_pid: int = field(default_factory=os.getpid)
    planned_at: float = field(default_factory=time.time)
    applied_at: float | None = None
    rollback_started_at: float | None = None   # the fault's end: undoing it begins
    rolled_back_at: float | None = None        # the undo finished (a restart may take seconds)

    @property
    def driver(self) -> str:
        return self.kind.split(".", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AppliedFault":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def new_uid() -> str:
    return uuid.uuid4().hex[:12]


class FaultDriver(Protocol):
    """The interface every runtime's fault driver implements (proxy, process, docker)."""

    prefix: str

    def plan(self, fault: Any, *, experiment: str = "", path: str | None = None,
             line: int | None = None) -> AppliedFault: ...

    def apply(self, applied: AppliedFault) -> None: ...

    def rollback(self, applied: AppliedFault) -> None: ...


def match_names(patterns: list[str], names: list[str], *, what: str, path: str | None = None,
                line: int | None = None, key: str = "target") -> list[str]:
    """Names matching any glob in ``patterns``; a pattern that matches nothing is a ConfigError."""
    out: list[str] = []
    for pattern in patterns:
        hits = sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))
        if not hits:
            import difflib
            close = difflib.get_close_matches(pattern, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"no {what} matches {pattern!r}{hint}", path=path, line=line, key=key)
        out.extend(h for h in hits if h not in out)
    return out


def drivers_for_state(state: Any, *, controller: Any = None, proxy: Any = None) -> dict[str, FaultDriver]:
    """The drivers for a lab state (``lab.state.LabState``): prefix -> driver."""
    from chaos.faults.docker import DockerDriver
    from chaos.faults.load import LoadDriver
    from chaos.faults.process import ProcessDriver, StateProcessController
    from chaos.faults.proxy import ProxyDriver

    drivers: dict[str, FaultDriver] = {
        "process": ProcessDriver(state, controller or StateProcessController(state.state_dir)),
        "docker": DockerDriver(state),
        "load": LoadDriver(),
    }
    if state.proxy is not None:
        drivers["proxy"] = ProxyDriver(state, proxy)
    return drivers
