"""The ``nines`` command line: a thin shell that parses, calls the core and maps errors to exit codes.

Subcommands live in ``lab/commands/<name>.py`` and are imported only when used, so that
``nines status`` never pays for matplotlib and the CLI process never imports Locust
(which monkey-patches gevent into whatever imports it).
"""
from __future__ import annotations

import importlib
import sys

import click

from lab.errors import ExitCode, NinesError

# name -> "module:attribute" of a click command or group
SUBCOMMANDS: dict[str, str] = {
    "up": "lab.commands.infra:up",
    "status": "lab.commands.infra:status",
    "down": "lab.commands.infra:down",
    "proxy": "lab.commands.proxy:proxy",
    "load": "lab.commands.load:load",
    "chaos": "lab.commands.chaos:chaos",
    "sim": "lab.commands.sim:sim",
    "report": "lab.commands.report:report",
    "gate": "lab.commands.gate:gate",
    "run": "lab.commands.run:run",
    "migrate": "lab.commands.migrate:migrate",
    "dr": "lab.commands.dr:dr",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # not built yet
                return None
            raise
        return getattr(module, attr, None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nineslab", prog_name="nines")
def cli() -> None:
    """nineslab: chaos-tested simulation and load lab for a 99.99 % design."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nines`` console script; returns (and exits with) the exit code."""
    try:
        rv = cli.main(args=argv, prog_name="nines", standalone_mode=False)
        code = int(rv) if isinstance(rv, int) else ExitCode.OK
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = ExitCode.USAGE
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        code = ExitCode.INTERRUPTED
    except NinesError as exc:
        click.secho(f"error: {exc}", err=True, fg="red")
        code = exc.exit_code
    sys.exit(int(code))


if __name__ == "__main__":
    main()
