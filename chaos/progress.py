"""The live progress view of ``nines chaos run``: one line per tick with the running experiment,
its clock, the faults now active and the availability of the last five complete seconds
(rich, redrawn in place on a terminal; plain lines every few seconds otherwise, e.g. in CI logs).
"""
from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


def render(update: dict) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    a = update.get("availability")
    table.add_row("experiment", f"{update['experiment']}  t={update['t']:5.1f}/{update['duration']:g} s")
    table.add_row("faults", ", ".join(update["active"]) or f"none active ({update['faults_done']}/"
                                                             f"{update['faults']} done)")
    colour = "green" if a is None or a >= 0.99 else ("yellow" if a >= 0.9 else "red")
    table.add_row("availability (5 s)", f"[{colour}]{'-' if a is None else f'{a:.3f}'}[/{colour}]  "
                                  f"requests {update['requests']}  downtime {update['downtime_seconds']} s")
    return table


class ProgressView:
    """A context manager whose ``update(dict)`` is the engine's ``on_update``."""

    def __init__(self, console: Console | None = None, *, plain_every: float = 5.0) -> None:
        self.console = console or Console(file=sys.stderr)
        self.live: Live | None = None
        self.plain_every = plain_every
        self._last_plain = 0.0

    def __enter__(self) -> "ProgressView":
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, update: dict) -> None:
        if self.live is not None:
            self.live.update(render(update))
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_every:
            self._last_plain = now
            a = update.get("availability")
            self.console.print(f"chaos: {update['experiment']} t={update['t']:.0f}/{update['duration']:g}s "
                               f"active=[{'; '.join(update['active'])}] availability(5s)="
                               f"{'-' if a is None else f'{a:.3f}'} downtime={update['downtime_seconds']}s",
                               highlight=False, markup=False)
