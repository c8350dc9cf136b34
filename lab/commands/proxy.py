"""``nines proxy``: the Toxiproxy-compatible fault proxy server.

``nines proxy serve`` takes both our flags (``--host``) and the real server's
single-dash ones (``-host``, ``-port``, ``-config``, ``-seed``, ``-proxy-metrics``,
``-runtime-metrics``, ``-version``), so it can stand in wherever ``toxiproxy-server`` is
expected. The API binds 127.0.0.1 by default because it has no authentication.
"""
from __future__ import annotations

from pathlib import Path

import click


@click.group()
def proxy() -> None:
    """The Toxiproxy-compatible fault proxy."""


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from chaos.proxy.api import VERSION

        click.echo(f"toxiproxy-server version {VERSION} (nineslab)")
        ctx.exit(0)


@proxy.command()
@click.option("--host", "-host", default="127.0.0.1", show_default=True,
              help="Address the API listens on (it has no authentication; keep it local).")
@click.option("--port", "-port", type=click.IntRange(0, 65535), default=8474, show_default=True,
              help="Port of the API (0 picks a free one; the log line says which).")
@click.option("--config", "-config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="JSON file of proxies to populate at startup.")
@click.option("--seed", "-seed", type=int, default=None,
              help="Seed of the random generator every toxic draws from (default: the clock).")
@click.option("--proxy-metrics", "-proxy-metrics", is_flag=True, help="Serve proxy byte counters at /metrics.")
@click.option("--runtime-metrics", "-runtime-metrics", is_flag=True, help="Serve process metrics at /metrics.")
@click.option("--log-level", "-log-level", envvar="LOG_LEVEL", default="info", show_default=True,
              help="Log verbosity on stderr: trace, debug, info, warn or error (env LOG_LEVEL); "
                   "an unknown level means info, as upstream.")
@click.option("--version", "-version", is_flag=True, expose_value=False, is_eager=True,
              callback=_show_version, help="Print the API version and exit.")
def serve(host: str, port: int, config_file: Path | None, seed: int | None,
          proxy_metrics: bool, runtime_metrics: bool, log_level: str) -> None:
    """Serve the Toxiproxy 2.12 HTTP API and its proxies until SIGTERM or Ctrl-C."""
    from chaos.proxy.server import ServerConfig, configure_logging, run

    configure_logging(log_level)
    run(ServerConfig(host=host, port=port, config_file=config_file, seed=seed,
                     proxy_metrics=proxy_metrics, runtime_metrics=runtime_metrics))
