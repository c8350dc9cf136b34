"""``load.spike``: a window of the experiment in which the load generator's arrival rate is
``attributes.factor`` (default 5) times the base. The engine hands the window to the load
generator as its ``--shape spike:at=...,for=...,factor=...`` (``shape_args``), so the schedule
is written once. Nothing is broken and nothing needs undoing; the fault marks the window, so
the engine measures what reacted to it — the autoscaler adding a replica
(``autoscale``/``routed`` events) — as it measures detection of a real fault, and records
``scale_out_delay_seconds``.

Targets are regions (``region:us-east``) or ``*``: where a new replica is expected.
"""
from __future__ import annotations

from typing import Any

from chaos.faults.base import AppliedFault, new_uid


def shape_args(faults: list[Any]) -> list[str]:
    """The load generator's arrival shape for the experiment's first ``load.spike`` fault."""
    for fault in faults:
        if fault.kind == "load.spike":
            factor = fault.attributes.get("factor", 5.0)
            return ["--shape", f"spike:at={fault.at:g},for={fault.duration:g},factor={factor:g}"]
    return []


class LoadDriver:
    prefix = "load"

    def plan(self, fault: Any, *, experiment: str = "", path: str | None = None,
             line: int | None = None) -> AppliedFault:
        return AppliedFault(uid=new_uid(), kind=fault.kind, targets=list(fault.targets), fault_id=fault.id or "",
                            experiment=experiment)

    def apply(self, applied: AppliedFault) -> None:
        """The load generator spikes on its own schedule; nothing to do here."""

    def rollback(self, applied: AppliedFault) -> None:
        """Nothing was changed."""
