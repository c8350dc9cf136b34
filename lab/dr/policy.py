"""The backup policy (the topology's ``backups:`` section) and the retention rule.

Both are pure: the policy is a validated value, ``expired`` decides from manifests' start
times and a clock reading which backups a prune removes::

    policy = BackupPolicy(interval_seconds=300, keep_last=6, max_age_hours=24)
    expired(backups, policy, now=time.time())     # newest first in, the ones to delete out
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class BackupPolicy(BaseModel):
    """Where backups go, how often the lab takes them and how many it keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: str = "backups"                 # relative: under the state dir, outside every data dir
    schedule: bool = True                # the local runtime starts the scheduler with the lab
    interval_seconds: float = Field(default=300.0, gt=0)
    keep_last: int = Field(default=6, ge=1)
    max_age_hours: float = Field(default=24.0, gt=0)

    def root(self, state_dir: Path | str) -> Path:
        """The backup location: ``dir`` itself when absolute, else under the state dir."""
        path = Path(self.dir)
        return path if path.is_absolute() else Path(state_dir) / path


class _Dated(Protocol):
    started_at: float


D = TypeVar("D", bound=_Dated)


def expired(backups: Sequence[D], policy: BackupPolicy, *, now: float) -> list[D]:
    """The backups a prune deletes: beyond the newest ``keep_last``, or older than ``max_age_hours``.

    The newest backup is never expired, however old: an old backup plus the JetStream replay
    still beats no backup at all.
    """
    ordered = sorted(backups, key=lambda b: b.started_at, reverse=True)
    max_age = policy.max_age_hours * 3600.0
    return [b for i, b in enumerate(ordered)
            if i > 0 and (i >= policy.keep_last or now - b.started_at > max_age)]
