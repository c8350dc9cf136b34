"""Process faults: kill (SIGKILL), pause (SIGSTOP), stop, restart — one process, a glob of
them, or a whole region (``region:us-east``).

The driver decides *what* to do and *how to undo it*; a controller does it. The default
controller is the runtime's process control (``lab.process_control``), which keeps the
state file true; tests plug in a controller over ``ServerGroup`` processes.

=================  ====================  ====================
kind               apply                 rollback
=================  ====================  ====================
process.kill       kill                  start (if not running)
process.pause      pause                 resume
process.stop       stop (graceful)       start (if not running)
process.restart    restart               nothing
process.data_loss  kill, data dir gone   restore: backup + JetStream replay (chaos/faults/data_loss.py)
=================  ====================  ====================
"""
from __future__ import annotations

from typing import Any, Protocol

from chaos.faults import data_loss
from chaos.faults.base import AppliedFault, match_names, new_uid
from lab.errors import ConfigError, LabError, UsageError

APPLY = {"process.kill": "kill", "process.pause": "pause", "process.stop": "stop", "process.restart": "restart"}
UNDO = {"process.kill": "start", "process.pause": "resume", "process.stop": "start", "process.restart": None}


class ProcessController(Protocol):
    def kill(self, name: str) -> None: ...
    def pause(self, name: str) -> None: ...
    def resume(self, name: str) -> None: ...
    def stop(self, name: str) -> None: ...
    def start(self, name: str) -> None: ...
    def restart(self, name: str) -> None: ...


class StateProcessController:
    """The runtime's ``lab.process_control`` functions, bound to one state directory."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir

    def _call(self, op: str, name: str) -> None:
        try:
            import lab.process_control as pc
        except ModuleNotFoundError as exc:
            raise LabError("process faults need lab.process_control (the local runtime), "
                           "which is not installed") from exc
        try:
            getattr(pc, op)(self.state_dir, name)
        except UsageError as exc:
            # undo steps are idempotent: starting what runs, or resuming what is gone, is done
            text = str(exc)
            if op == "start" and "already running" in text:
                return
            if op == "resume" and "not running" in text:
                return
            raise

    def kill(self, name: str) -> None: self._call("kill", name)
    def pause(self, name: str) -> None: self._call("pause", name)
    def resume(self, name: str) -> None: self._call("resume", name)
    def stop(self, name: str) -> None: self._call("stop", name)
    def start(self, name: str) -> None: self._call("start", name)
    def restart(self, name: str) -> None: self._call("restart", name)


class ProcessDriver:
    prefix = "process"

    def __init__(self, state: Any, controller: ProcessController) -> None:
        self.state = state
        self.controller = controller

    def _names(self) -> dict[str, str | None]:
        """process name -> region, only processes chaos may target (not the fault proxy)."""
        out = {}
        for name, proc in self.state.processes.items():
            kind = proc.get("kind") if isinstance(proc, dict) else getattr(proc, "kind", "service")
            region = proc.get("region") if isinstance(proc, dict) else getattr(proc, "region", None)
            if kind != "proxy":
                out[name] = region
        return out

    def plan(self, fault: Any, *, experiment: str = "", path: str | None = None,
             line: int | None = None) -> AppliedFault:
        names = self._names()
        targets: list[str] = []
        for target in fault.targets:
            if target.startswith("region:"):
                region = target.removeprefix("region:")
                hits = sorted(n for n, r in names.items() if r == region)
                if not hits:
                    raise ConfigError(f"no process runs in region {region!r}", path=path, line=line, key="target")
            else:
                hits = match_names([target], sorted(names), what="process", path=path, line=line)
            targets.extend(h for h in hits if h not in targets)
        if fault.kind == data_loss.KIND:
            data_loss.check_targets(self.state, targets, path=path, line=line)
        return AppliedFault(uid=new_uid(), kind=fault.kind, targets=targets, fault_id=fault.id or "",
                            experiment=experiment)

    def apply(self, applied: AppliedFault) -> None:
        if applied.kind == data_loss.KIND:
            for name in applied.targets:
                applied.params["lost_at"] = data_loss.destroy(applied.state_dir or self.state.state_dir, name,
                                                              self.controller.kill)
            return
        op = APPLY.get(applied.kind)
        if op is None:
            raise UsageError(f"the process driver cannot apply {applied.kind}")
        for name in applied.targets:
            getattr(self.controller, op)(name)

    def rollback(self, applied: AppliedFault) -> None:
        if applied.kind == data_loss.KIND:     # the measured restore becomes the fault's measurement
            applied.params["measured"] = {}
            for name in applied.targets:
                applied.params["measured"] = data_loss.restore(applied.state_dir or self.state.state_dir, name,
                                                               lost_at=applied.params.get("lost_at"))
            return
        op = UNDO.get(applied.kind)
        if op is None:
            return
        errors = []
        # a region comes back in dependency order: infrastructure first, as listed in the state
        for name in _start_order(self.state, applied.targets):
            try:
                getattr(self.controller, op)(name)
            except Exception as exc:  # noqa: BLE001 - undo every process, report after
                errors.append(exc)
        if errors:
            raise errors[0]


def _start_order(state: Any, names: list[str]) -> list[str]:
    rank = {"infra": 0, "proxy": 1, "service": 2}

    def key(name: str) -> tuple[int, str]:
        proc = state.processes.get(name)
        kind = (proc.get("kind") if isinstance(proc, dict) else getattr(proc, "kind", "service")) if proc else "service"
        return rank.get(kind, 2), name
    return sorted(names, key=key)
