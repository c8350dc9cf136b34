"""``python -m chaos.proxy [serve] [flags]``: the same command as ``nines proxy serve``.

``serve`` may be left out, so the module stands in where ``toxiproxy-server`` is
expected: ``python -m chaos.proxy -host=0.0.0.0 -port=8474``.
"""
from __future__ import annotations

import sys

from lab.cli import main


def run(argv: list[str]) -> None:
    if not argv or argv[0] != "serve":
        argv = ["serve", *argv]
    main(["proxy", *argv])


if __name__ == "__main__":
    run(sys.argv[1:])
