"""``python -m system.chat --config FILE``: one chat server (contracts §5)."""
from __future__ import annotations

import sys

from system.chat.server import ChatService, build_app
from system.chat.websocket import upgrade_protocol
from system.common.serve import run


def make(config, path):
    service = ChatService(config, config_path=path)
    return service, build_app(service, lifespan=False)


if __name__ == "__main__":
    sys.exit(run("chat", None, make, ws_protocol=upgrade_protocol))
