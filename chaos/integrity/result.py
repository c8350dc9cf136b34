"""The shape every invariant result has in a journal (contracts §3)."""
from __future__ import annotations

from typing import Any


def invariant(name: str, counts: dict[str, int], examples: list[dict], *, violations: list[str],
              info: dict[str, Any] | None = None, max_examples: int = 5) -> dict:
    """``ok`` when every count named in ``violations`` is zero."""
    ok = all(counts.get(k, 0) == 0 for k in violations)
    return {"name": name, "ok": ok, "counts": counts, "examples": examples[:max_examples * len(counts) or 5],
            "info": info or {}}


def skipped(name: str, reason: str) -> dict:
    """An invariant that could not be checked is not a pass: ``ok`` is None."""
    return {"name": name, "ok": None, "counts": {}, "examples": [], "info": {"skipped": reason}}
