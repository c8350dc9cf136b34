"""Process faults for the chaos engine: kill, pause, resume, stop, start and restart one named
process of the running lab, keeping the state file true.

Each call reads the state file, acts through the runtime that started the lab, then writes
back that one process's record (under the state dir's lock, so concurrent calls on
different processes do not lose each other's changes)::

    from lab import process_control as pc
    pc.kill(state_dir, "chat-us-east-1")        # SIGKILL, status "killed"
    pc.restart(state_dir, "chat-us-east-1")     # same argv, ports and data; returns when ready
    pc.pause(state_dir, "pg-eu-west"); pc.resume(state_dir, "pg-eu-west")
    [p.name for p in pc.region_processes(load_state(state_dir), "eu-west")]
"""
from __future__ import annotations

from pathlib import Path

from lab.runtime import get_runtime
from lab.state import LabState, ProcessRecord, load_state, region_processes, update_process

__all__ = ["kill", "pause", "resume", "stop", "start", "restart", "region_processes"]


def _act(state_dir: Path | str, name: str, action: str) -> ProcessRecord:
    state: LabState = load_state(state_dir)
    record = state.process(name)
    getattr(get_runtime(state.runtime), action)(state, name)
    update_process(state_dir, record)
    return record


def kill(state_dir: Path | str, name: str) -> ProcessRecord:
    """SIGKILL the process (and its children), as a crash would."""
    return _act(state_dir, name, "kill")


def pause(state_dir: Path | str, name: str) -> ProcessRecord:
    """SIGSTOP the process: it keeps its sockets and answers nothing."""
    return _act(state_dir, name, "pause")


def resume(state_dir: Path | str, name: str) -> ProcessRecord:
    """SIGCONT a paused process."""
    return _act(state_dir, name, "resume")


def stop(state_dir: Path | str, name: str) -> ProcessRecord:
    """Stop the process cleanly (its stop signal, SIGKILL after the grace period)."""
    return _act(state_dir, name, "stop")


def start(state_dir: Path | str, name: str) -> ProcessRecord:
    """Start a stopped or killed process with the same argv, ports and data; wait until ready."""
    return _act(state_dir, name, "start")


def restart(state_dir: Path | str, name: str) -> ProcessRecord:
    """Stop (if running) and start again; returns when the process answers its readiness check."""
    return _act(state_dir, name, "restart")
