"""``python -m system.migration --config FILE``: parse, build, serve until SIGTERM."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from system.common.serve import run_asgi
    from system.migration.api import create_app
    from system.migration.config import load_config
    return run_asgi("migration", argv, load_config, create_app)


if __name__ == "__main__":
    sys.exit(main())
