"""Click arguments and options shared by several subcommands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def input_file(name: str) -> Callable[[Any], Any]:
    """The command's input file (a path, not a folder)."""
    return click.argument(name, type=click.Path(dir_okay=False, path_type=Path))


def out_dir(help: str) -> Callable[[Any], Any]:
    """``--out DIR`` as ``out_dir`` (``None``: the command's default folder)."""
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=help,
    )
