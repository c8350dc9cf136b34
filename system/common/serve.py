"""The thin process shell shared by ``python -m system.chat`` and ``python -m system.router``:
parse ``--config``, load it, start the service, serve HTTP/WebSocket with uvicorn, stop on
SIGTERM/SIGINT and exit 0. A bad config or a dependency that never came up is one sentence
on stderr and exit code 2 or 20, never a traceback.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Callable

from lab.errors import NinesError
from system.common.config import ServiceConfig, load_config


def run(role: str, argv: list[str] | None, make: Callable[[ServiceConfig, str], tuple[object, object]],
        ws_max_size: Callable[[object], int] | None = None,
        ws_protocol: Callable[[object], type] | None = None) -> int:
    """``make(config, path)`` returns ``(service, app)``; the service has async ``start``/``stop``.
    ``ws_protocol(service)``, when given, is the protocol class uvicorn hands WebSocket upgrades
    to (its ``ws`` setting; the chat server's is picows), instead of the ASGI ``websockets-sansio``."""
    parser = argparse.ArgumentParser(prog=f"python -m system.{role}",
                                     description=f"Run one nineslab {role} service.")
    parser.add_argument("--config", required=True, help="service config JSON (contracts §5)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
        if config.role != role:
            from lab.errors import ConfigError
            raise ConfigError(f"role is {config.role!r} but this is the {role} service", path=args.config,
                              key="role")
        service, app = make(config, args.config)
    except NinesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    import uvicorn
    import uvloop
    kwargs = {"ws_max_size": ws_max_size(service)} if ws_max_size else {}
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, lifespan="off",
                                           loop="none", http="httptools",
                                           ws=ws_protocol(service) if ws_protocol else "websockets-sansio",
                                           log_level="warning", access_log=False, ws_ping_interval=None,
                                           ws_per_message_deflate=False,
                                           timeout_graceful_shutdown=3, **kwargs))
    async def main() -> int:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        def stop_starting() -> None:
            me.cancel()
            # a client library may hold on to the cancellation (nats-py's reconnect loop can):
            # nothing is running yet, so leaving without more cleanup is safe
            loop.call_later(5.0, os._exit, 0)

        for sig in (signal.SIGTERM, signal.SIGINT):          # stopped while starting: stop cleanly
            loop.add_signal_handler(sig, stop_starting)
        try:
            await service.start()
        except asyncio.CancelledError:
            await service.stop()
            return 0
        except NinesError as exc:
            print(f"error: {config.name}: {exc}", file=sys.stderr)
            await service.stop()
            return int(exc.exit_code)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        # uvicorn re-raises the signal it caught after shutting down; a no-op handler makes that exit 0
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, lambda *_: None)
        try:
            await server.serve()
        finally:
            await service.stop()
        return 0

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def run_asgi(role: str, argv: list[str] | None, load: Callable[[str], object],
             create_app: Callable[[object], object]) -> int:
    """The shell of a service whose ASGI app starts and stops itself (analytics, migration):
    parse ``--config``, load it (one sentence and exit 2 when it is bad), serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog=f"python -m system.{role}",
                                     description=f"Run the nineslab {role} service.")
    parser.add_argument("--config", required=True, help="service config JSON (contracts §5)")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except NinesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    logging.basicConfig(filename=config.log_file, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import uvicorn
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=5)
    return 0
