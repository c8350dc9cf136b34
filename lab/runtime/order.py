"""Dependency order: which processes can start together, and the reverse for stopping.

Pure: works on a ``name -> depends_on`` mapping; names a process depends on that are not
in the mapping (not started, an external proxy) are ignored.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from lab.errors import LabError


def levels(depends_on: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Groups in start order: each group depends only on earlier groups."""
    deps = {name: {d for d in ds if d in depends_on and d != name} for name, ds in depends_on.items()}
    placed: set[str] = set()
    out: list[list[str]] = []
    while len(placed) < len(deps):
        ready = [n for n in deps if n not in placed and deps[n] <= placed]
        if not ready:
            cycle = sorted(n for n in deps if n not in placed)
            raise LabError(f"the processes {', '.join(cycle)} depend on each other in a cycle")
        out.append(ready)
        placed.update(ready)
    return out


def stop_levels(depends_on: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Groups in stop order: dependents before what they depend on."""
    return list(reversed(levels(depends_on)))
