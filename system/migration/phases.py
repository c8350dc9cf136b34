"""The five migration phases and the rule that says which phase change is allowed.

Pure: no I/O. ``plan_change(current, target, mismatches)`` returns the change to make or
raises ``PhaseChangeRefused`` with a sentence the API returns as a 409.

::

    dual_write      old is the source of truth; new is best effort (failures queued for repair)
    dual_read       as dual_write, and every read compares old with new (mismatches counted)
    read_new        reads from new (old on a miss); new is the source of truth, old best effort
    write_new_only  reads and writes go to new only
    decommission    old is no longer touched

Forward is one step at a time and needs a clean verifier for the steps that compare old
with new; back one phase is always allowed.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Phase(str, enum.Enum):
    DUAL_WRITE = "dual_write"
    DUAL_READ = "dual_read"
    READ_NEW = "read_new"
    WRITE_NEW_ONLY = "write_new_only"
    DECOMMISSION = "decommission"

    @property
    def index(self) -> int:
        return ORDER.index(self)

    @property
    def old_is_source(self) -> bool:
        """Writes are decided (and versioned) by the old store."""
        return self in (Phase.DUAL_WRITE, Phase.DUAL_READ)

    @property
    def writes_old(self) -> bool:
        return self in (Phase.DUAL_WRITE, Phase.DUAL_READ, Phase.READ_NEW)

    @property
    def uses_old(self) -> bool:
        return self is not Phase.DECOMMISSION and self is not Phase.WRITE_NEW_ONLY


ORDER: list[Phase] = list(Phase)
# a step forward into these phases needs old and new to agree row for row
GUARDED_TARGETS = {Phase.DUAL_READ, Phase.READ_NEW, Phase.WRITE_NEW_ONLY}


class PhaseChangeRefused(Exception):
    """The requested phase change is not allowed now (HTTP 409)."""


def parse_phase(value: str) -> Phase:
    try:
        return Phase(value.strip().lower().replace("-", "_"))
    except ValueError:
        names = ", ".join(p.value for p in ORDER)
        raise PhaseChangeRefused(f"unknown phase {value!r}: use one of {names}") from None


@dataclass(frozen=True)
class PhaseChange:
    current: Phase
    target: Phase

    @property
    def forward(self) -> bool:
        return self.target.index > self.current.index

    @property
    def needs_verification(self) -> bool:
        return self.forward and self.target in GUARDED_TARGETS


def plan_change(current: Phase, target: Phase) -> PhaseChange:
    """Check the shape of a change (one step forward or back); verification is separate."""
    step = target.index - current.index
    if step == 0:
        raise PhaseChangeRefused(f"the migration is already in phase {current.value}")
    if step > 1:
        nxt = ORDER[current.index + 1].value
        raise PhaseChangeRefused(f"cannot jump from {current.value} to {target.value}: "
                                 f"go forward one phase at a time (next is {nxt})")
    if step < -1:
        prev = ORDER[current.index - 1].value
        raise PhaseChangeRefused(f"cannot go back from {current.value} to {target.value}: "
                                 f"go back one phase at a time (previous is {prev})")
    return PhaseChange(current, target)


def previous(current: Phase) -> Phase:
    if current.index == 0:
        raise PhaseChangeRefused(f"{current.value} is the first phase: there is no phase to go back to")
    return ORDER[current.index - 1]


def check_verified(change: PhaseChange, mismatches: int, examples: list[str]) -> None:
    if change.needs_verification and mismatches:
        shown = ", ".join(examples[:5])
        raise PhaseChangeRefused(
            f"cannot advance to {change.target.value}: the verifier reports {mismatches} mismatching "
            f"row(s) between pg-old and pg-new (e.g. {shown}); run `nines migrate sync` first")
