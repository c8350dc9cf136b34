"""``python -m system.router --config FILE``: one router (contracts §5)."""
from __future__ import annotations

import sys

from system.common.serve import run
from system.router.server import RouterService, build_app


def make(config, path):
    service = RouterService(config, config_path=path)
    return service, build_app(service)


if __name__ == "__main__":
    sys.exit(run("router", None, make))
