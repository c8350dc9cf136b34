"""noop: passes data through unchanged. The API accepts it; useful to test plumbing."""
from __future__ import annotations

from chaos.proxy.toxics.base import Toxic, register


@register
class NoopToxic(Toxic):
    TYPE = "noop"
