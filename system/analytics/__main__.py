"""``python -m system.analytics --config FILE``: parse, build, serve until SIGTERM."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from system.common.serve import run_asgi
    from system.analytics.api import create_app
    from system.analytics.config import load_config
    return run_asgi("analytics", argv, load_config, create_app)


if __name__ == "__main__":
    sys.exit(main())
