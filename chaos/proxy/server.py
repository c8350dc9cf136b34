"""The fault proxy server process: parse → build → serve → shut down.

:class:`ServerConfig` is the typed configuration (from ``nines proxy serve`` or
``python -m chaos.proxy``). :func:`serve` binds the API (refusing clearly if the port is
taken), builds one seeded ``random.Random`` that every toxic draws from, populates
proxies from ``--config``, serves the API with uvicorn and, on SIGTERM/SIGINT, stops
every proxy (listeners and open connections) before returning.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from chaos.proxy import address
from chaos.proxy.api import VERSION, ToxiproxyApi
from chaos.proxy.collection import PopulateError, ProxyCollection
from chaos.proxy.metrics import Metrics
from lab.errors import DependencyError, UsageError

log = logging.getLogger("chaos.proxy")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8474
    config_file: Path | None = None
    seed: int | None = None
    proxy_metrics: bool = False
    runtime_metrics: bool = False


def default_seed() -> int:
    """Upstream's default: the current time in nanoseconds."""
    return time.time_ns()


def bind_api(host: str, port: int) -> socket.socket:
    try:
        sock, _ = address.bind_listener(address.format_address(host, port))
    except address.AddressError as exc:
        raise DependencyError(f"cannot serve the proxy API on {host}:{port} ({exc}); "
                              "choose another --port or stop whatever uses it") from exc
    return sock


class _Uvicorn:
    """uvicorn's server without its signal handling: this module owns the signals."""

    def __init__(self, app, sock: socket.socket) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                yield

        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                                server_header=False, date_header=False, ws="none",
                                http="httptools", timeout_keep_alive=60)
        self.server = Server(config)
        self.sock = sock

    async def serve(self) -> None:
        await self.server.serve(sockets=[self.sock])

    def stop(self) -> None:
        self.server.should_exit = True


async def serve(config: ServerConfig, *, stop: asyncio.Event | None = None) -> None:
    """Run the server until ``stop`` is set or SIGTERM/SIGINT arrives."""
    seed = config.seed if config.seed is not None else default_seed()
    rng = random.Random(seed)
    metrics = Metrics(proxy_metrics=config.proxy_metrics, runtime_metrics=config.runtime_metrics)
    collection = ProxyCollection(rng=rng, metrics=metrics)
    sock = bind_api(config.host, config.port)
    bound = address.format_address(*sock.getsockname()[:2])
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    if config.config_file is not None:
        await populate_from_file(collection, config.config_file)
    http = _Uvicorn(ToxiproxyApi(collection, metrics), sock)
    log.info("Starting Toxiproxy-compatible HTTP server version=%s seed=%d address=%s", VERSION, seed, bound)
    # The line tests and launchers wait for; keep its form.
    log.info("API listening on http://%s", bound)
    server_task = asyncio.ensure_future(http.serve())
    stop_task = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({server_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        log.info("Shutting down")
        http.stop()
        await collection.close()
        await asyncio.wait({server_task}, timeout=5)
        stop_task.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
    failure = server_task.exception() if server_task.done() and not server_task.cancelled() else None
    if failure is not None:
        raise DependencyError(f"the proxy API server failed: {failure}") from failure


async def populate_from_file(collection: ProxyCollection, path: Path) -> None:
    """``-config FILE``: populate at startup; a bad file is logged, as upstream does."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.error("Error reading config file %s: %s", path, exc.strerror or exc)
        return
    try:
        proxies = await collection.populate_json(data)
    except PopulateError as exc:
        log.error("Failed to populate proxies from file %s: %s", path, exc.error.message)
        return
    log.info("Populated %d proxies from file %s", len(proxies), path)


def configure_logging(level: str = "info") -> None:
    """Log to stderr at ``level`` (trace, debug, info, warn, error as upstream's LOG_LEVEL)."""
    level = {"trace": "debug", "warn": "warning", "fatal": "critical", "panic": "critical"}.get(
        level.lower(), level.lower())
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def raise_open_file_limit() -> None:
    """Lift the soft limit on open files to the hard one, as the Go runtime does at start:
    every proxied connection holds two sockets and, on the fast path, two splice pipes."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError) as exc:
        log.warning("could not raise the open file limit: %s", exc)


def run(config: ServerConfig) -> None:
    """Serve on uvloop when available; returns after a clean shutdown."""
    raise_open_file_limit()
    if config.config_file is not None and not config.config_file.is_file():
        raise UsageError(f"proxy config file {config.config_file} does not exist; "
                         "pass a JSON file with a list of proxies")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
