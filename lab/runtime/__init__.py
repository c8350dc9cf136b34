"""Runtimes that start the lab's topology: ``local`` processes (default) and ``docker`` compose."""
from __future__ import annotations

from lab.errors import UsageError
from lab.runtime.base import LabConfig, Runtime, UpResult

RUNTIMES = ("local", "docker")


def get_runtime(name: str) -> Runtime:
    """The runtime called ``name``; an unknown or unavailable one is a usage error."""
    if name == "local":
        from lab.runtime.local import LocalRuntime
        return LocalRuntime()
    if name == "docker":
        try:
            from lab.runtime.docker import DockerRuntime
        except ModuleNotFoundError as exc:
            if exc.name != "lab.runtime.docker":
                raise
            raise UsageError("the docker runtime is not available yet; use --runtime local") from exc
        return DockerRuntime()
    raise UsageError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")


__all__ = ["LabConfig", "Runtime", "UpResult", "get_runtime", "RUNTIMES"]
