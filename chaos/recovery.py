"""The durable record of active faults, and healing what a crashed engine left behind.

Before a fault is applied its ``AppliedFault`` is written to ``<state_dir>/faults/<uid>.json``;
after it is rolled back the file is removed. A file that outlives its engine is a fault
nobody will undo — so ``nines up``, ``nines down`` and ``nines chaos run`` call
``heal_leftovers(state_dir)`` first, which rolls back every fault whose owner is gone::

    healed = heal_leftovers(state_dir)     # ['process.pause chat-us-east-1 (f1 of chat-server-crash)']
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import psutil

from chaos.faults.base import AppliedFault

log = logging.getLogger("nineslab.chaos.recovery")
FAULTS_DIR = "faults"


def faults_dir(state_dir: str | Path) -> Path:
    return Path(state_dir) / FAULTS_DIR


def record(state_dir: str | Path, applied: AppliedFault) -> Path:
    """Write (atomically) the record of a fault about to be applied, or update it."""
    directory = faults_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    data = applied.to_json()
    data["owner_create_time"] = _create_time(applied.owner_pid)
    path = directory / f"{applied.uid}.json"
    fd, tmp = tempfile.mkstemp(prefix=".fault-", suffix=".json", dir=directory)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def forget(state_dir: str | Path, applied: AppliedFault) -> None:
    """Remove the record of a fault that was rolled back."""
    try:
        (faults_dir(state_dir) / f"{applied.uid}.json").unlink()
    except FileNotFoundError:
        pass


def leftovers(state_dir: str | Path, *, include_live_owners: bool = False) -> list[tuple[Path, dict]]:
    """Records on disk; by default only those whose engine process is gone."""
    out = []
    for path in sorted(faults_dir(state_dir).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("unreadable fault record %s, removed", path)
            path.unlink(missing_ok=True)
            continue
        owner = data.get("owner_pid")
        if not include_live_owners and owner != os.getpid() and _alive(owner, data.get("owner_create_time")):
            continue
        out.append((path, data))
    return out


def describe(applied: AppliedFault) -> str:
    where = f" ({applied.fault_id} of {applied.experiment})" if applied.experiment else ""
    return f"{applied.kind} {', '.join(applied.targets)}{where}"


def heal_leftovers(state_dir: str | Path, *, drivers: dict[str, Any] | None = None,
                   include_live_owners: bool = False) -> list[str]:
    """Roll back every fault left by an engine that is gone; returns what was healed.

    A record that cannot be rolled back (its target is gone with the lab) is removed too,
    and said so: there is nothing left to heal.
    """
    found = leftovers(state_dir, include_live_owners=include_live_owners)
    if not found:
        return []
    if drivers is None:
        drivers = _drivers(state_dir)
    healed = []
    for path, data in found:
        applied = AppliedFault.from_json(data)
        driver = drivers.get(applied.driver) if drivers else None
        text = describe(applied)
        if driver is None:
            healed.append(f"{text}: no {applied.driver} driver (lab gone), record dropped")
        else:
            try:
                driver.rollback(applied)
                healed.append(text)
            except Exception as exc:  # noqa: BLE001 - report, keep healing the rest
                healed.append(f"{text}: rollback failed ({exc}), record dropped")
        path.unlink(missing_ok=True)
    return healed


def _drivers(state_dir: str | Path) -> dict[str, Any]:
    from chaos.faults.base import drivers_for_state
    try:
        from lab.state import find_state
        state = find_state(state_dir)
    except Exception:  # noqa: BLE001 - a broken state still lets us drop the records
        return {}
    return drivers_for_state(state) if state is not None else {}


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _alive(pid: Any, create_time: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - float(create_time)) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


Rollback = Callable[[], None]
