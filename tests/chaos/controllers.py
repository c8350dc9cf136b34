"""Process controllers for tests: the process driver acting on ServerGroup processes or bare pids."""
from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import psutil


class GroupController:
    """kill/pause/resume/stop/start/restart of ``ManagedProcess`` objects by name."""

    def __init__(self, processes: dict) -> None:
        self.processes = processes
        self.calls: list[tuple[str, str]] = []

    def _p(self, name):
        return self.processes[name]

    def kill(self, name):
        self.calls.append(("kill", name))
        p = self._p(name)
        os.kill(p.pid, signal.SIGKILL)
        p.popen.wait(timeout=10)

    def pause(self, name):
        self.calls.append(("pause", name))
        os.kill(self._p(name).pid, signal.SIGSTOP)

    def resume(self, name):
        self.calls.append(("resume", name))
        os.kill(self._p(name).pid, signal.SIGCONT)

    def stop(self, name):
        self.calls.append(("stop", name))
        self._p(name).stop(grace=5)

    def start(self, name):
        self.calls.append(("start", name))
        p = self._p(name)
        if not p.alive():
            p.start()

    def restart(self, name):
        self.calls.append(("restart", name))
        p = self._p(name)
        p.stop(grace=5)
        p.start()


class PidController:
    """pause/resume/kill of processes known only by pid (for the engine-in-a-subprocess tests)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def pause(self, name):
        os.kill(self.pids[name], signal.SIGSTOP)

    def resume(self, name):
        os.kill(self.pids[name], signal.SIGCONT)

    def kill(self, name):
        os.kill(self.pids[name], signal.SIGKILL)

    def start(self, name):
        pass

    def stop(self, name):
        os.kill(self.pids[name], signal.SIGTERM)

    def restart(self, name):
        pass


def fake_state(processes: dict[str, str | None], state_dir: str = "", links: dict | None = None):
    """A minimal LabState look-alike: process name -> region."""
    procs = {n: SimpleNamespace(name=n, region=r, kind="service") for n, r in processes.items()}
    return SimpleNamespace(processes=procs, links=links or {}, state_dir=state_dir, runtime="local", proxy=None)


def is_stopped(pid: int) -> bool:
    return psutil.Process(pid).status() == psutil.STATUS_STOPPED
