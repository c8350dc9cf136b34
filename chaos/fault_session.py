"""The faults an engine has applied, and the promise that every one of them is undone.

``FaultSession`` is a context manager: ``apply(fault)`` records the fault on disk, applies it,
and remembers it; ``rollback(fault_id)`` undoes one; leaving the block — normally, by an
exception, by Ctrl-C or SIGTERM (turned into ``KeyboardInterrupt``), or at interpreter exit
(atexit) — undoes every fault still active, newest first. A SIGKILL of the engine leaves
the records on disk for ``chaos.recovery.heal_leftovers``.
"""
from __future__ import annotations

import atexit
import logging
import signal
import threading
import time
from typing import Any, Callable

from chaos import recovery
from chaos.faults.base import AppliedFault, FaultDriver
from lab.errors import LabError

log = logging.getLogger("nineslab.chaos")


class FaultSession:
    def __init__(self, state_dir: str, drivers: dict[str, FaultDriver], *, experiment: str = "",
                 clock: Callable[[], float] = time.time, handle_signals: bool = True) -> None:
        self.state_dir = state_dir
        self.drivers = drivers
        self.experiment = experiment
        self.clock = clock
        self.handle_signals = handle_signals
        self.active: dict[str, AppliedFault] = {}        # fault id -> applied
        self.done: list[AppliedFault] = []
        self.errors: list[str] = []
        self._old_handlers: dict[int, Any] = {}
        self._lock = threading.Lock()

    # -- context ---------------------------------------------------------------

    def __enter__(self) -> "FaultSession":
        atexit.register(self.rollback_all)
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[sig] = signal.getsignal(sig)
                signal.signal(sig, _interrupt)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.rollback_all()
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            atexit.unregister(self.rollback_all)

    # -- faults ----------------------------------------------------------------

    def driver_for(self, kind: str) -> FaultDriver:
        prefix = kind.split(".", 1)[0]
        driver = self.drivers.get(prefix)
        if driver is None:
            raise LabError(f"no {prefix} fault driver in this lab (is the fault proxy running?)")
        return driver

    def plan(self, fault: Any, *, path: str | None = None, line: int | None = None) -> AppliedFault:
        applied = self.driver_for(fault.kind).plan(fault, experiment=self.experiment, path=path, line=line)
        applied.state_dir = str(self.state_dir)
        return applied

    def apply(self, applied: AppliedFault) -> AppliedFault:
        driver = self.driver_for(applied.kind)
        with self._lock:
            recovery.record(self.state_dir, applied)          # durable before it can hurt
            self.active[applied.fault_id or applied.uid] = applied
        try:
            driver.apply(applied)
        except BaseException:
            self.rollback(applied.fault_id or applied.uid)     # half applied: undo what was done
            raise
        applied.applied_at = self.clock()
        return applied

    def rollback(self, key: str) -> AppliedFault | None:
        with self._lock:
            applied = self.active.pop(key, None)
        if applied is None:
            return None
        applied.rollback_started_at = self.clock()
        try:
            self.driver_for(applied.kind).rollback(applied)
        except Exception as exc:  # noqa: BLE001 - keep the record so the next run heals it
            self.errors.append(f"rollback of {recovery.describe(applied)} failed: {exc}")
            log.error("rollback of %s failed: %s", recovery.describe(applied), exc)
            return applied
        applied.rolled_back_at = self.clock()
        recovery.forget(self.state_dir, applied)
        self.done.append(applied)
        return applied

    def rollback_all(self) -> list[AppliedFault]:
        # a second Ctrl-C during rollback must not leave faults behind
        blocked = _block_interrupts()
        try:
            out = []
            for key in reversed(list(self.active)):
                rolled = self.rollback(key)
                if rolled is not None:
                    out.append(rolled)
            return out
        finally:
            _restore_interrupts(blocked)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _block_interrupts() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.getsignal(sig)
        signal.signal(sig, signal.SIG_IGN)
    return old


def _restore_interrupts(old: dict[int, Any]) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)
