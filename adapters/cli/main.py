"""The `ems` console script.

Subcommands live in their own modules (``design_cmd``, ``accounting_cmd``, ...) and register on
:data:`cli`. Every user-fixable error becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from ems.errors import EmsError

SUBCOMMAND_MODULES = ("design_cmd", "accounting_cmd", "run_cmd", "ingest_cmd", "sweep_cmd")


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """cer-ems: design, operate and account for a renewable energy community."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register_subcommands() -> None:
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"adapters.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"adapters.cli.{name}":
                continue  # subcommand not shipped yet
            raise
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register_subcommands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map :class:`EmsError` to a one-line message and exit code 2."""
    try:
        cli.main(args=argv, prog_name="ems", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except EmsError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
