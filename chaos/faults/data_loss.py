"""``process.data_loss``: a regional chat store's PostgreSQL is killed and its data directory
destroyed; the undo restores it with ``lab.dr`` (the last backup, then the JetStream replay)
and reports how long that took, which the journal keeps as the fault's measurement.

Destroying is refused for a process that is not a regional store, and when the region has no
backup yet one is taken first: a fault whose undo cannot work is never applied.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from lab.errors import ConfigError

KIND = "process.data_loss"


def check_targets(state: Any, names: list[str], *, path: str | None = None, line: int | None = None) -> None:
    runtime = getattr(state, "runtime", "local")
    if runtime != "local":      # lab.dr restores stores of local processes only
        raise ConfigError(f"{KIND} needs the local runtime; this lab runs on {runtime}", path=path, line=line,
                          key="kind")
    for name in names:
        proc = state.processes.get(name)
        role = getattr(proc, "role", None) if proc is not None else None
        if role != "postgres" or not getattr(proc, "region", None):
            raise ConfigError(f"{KIND} destroys a regional chat store (pg-<region>), not {name!r}",
                              path=path, line=line, key="target")


def destroy(state_dir: str, name: str, kill) -> float:
    """Make sure a backup exists, then kill the store (``kill(name)``) and remove its data
    directory; the time of the kill (when the store was lost)."""
    from lab.dr.backup import backup_and_prune, store_of
    from lab.dr.catalog import latest
    from lab.dr.scheduler import policy_of
    from lab.state import load_state

    state = load_state(state_dir)
    store = store_of(state, state.process(name).region)
    policy = policy_of(state_dir)
    if latest(policy.root(state_dir), store.region) is None:
        backup_and_prune(store, policy, state_dir)
    kill(name)
    lost_at = time.time()
    shutil.rmtree(Path(store.record.data_dir), ignore_errors=True)
    return lost_at


def restore(state_dir: str, name: str, *, lost_at: float | None) -> dict:
    """Restore the store; the measurement of the recovery (``recovery_seconds`` = the restore's RTO)."""
    from lab.dr.restore import restore_region
    from lab.dr.scheduler import policy_of
    from lab.state import load_state

    region = load_state(state_dir).process(name).region
    result = restore_region(Path(state_dir), region, policy_of(state_dir).root(state_dir), force=True)
    return {"recovery_seconds": round(result.total_seconds, 3),
            "loss_to_restored_seconds": round(result.restored_at - lost_at, 3) if lost_at else None,
            "restore_seconds": round(result.restore_seconds, 3), "replay_seconds": round(result.replay.seconds, 3),
            "replayed": result.replay.inserted, "replay_scanned": result.replay.scanned,
            "replay_complete": result.replay.complete, "backup_age_seconds": result.to_json()["backup"]["age_seconds"]}
