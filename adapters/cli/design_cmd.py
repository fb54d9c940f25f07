"""`ems design SCENARIO.yaml [--out DIR]`: size a community's plants."""

from __future__ import annotations

from pathlib import Path

import click

from adapters.cli._options import input_file, out_dir


@click.command("design")
@input_file("scenario")
@out_dir("Output folder (default: out/<scenario name>).")
@click.option(
    "--time-limit",
    type=click.FloatRange(min=1),
    default=None,
    help="Wall-clock safety net, s (overrides the scenario); the output says when it is hit.",
)
@click.option(
    "--gap",
    type=click.FloatRange(min=0, max=1),
    default=None,
    help="Relative MIP gap (overrides the scenario).",
)
@click.option(
    "--quiet",
    is_flag=True,
    help="Do not stream the solver log; keep one progress line per pass on stderr.",
)
def design(
    scenario: Path, out_dir: Path | None, time_limit: float | None, gap: float | None, quiet: bool
) -> None:
    """Size the plants of every hub of SCENARIO and compare with the AS-IS case."""
    from design.report import console_report, write_outputs
    from design.study import run_study

    def log(msg: str) -> None:
        # progress lines (scenario, each pass as it starts and ends) go to stderr in both modes;
        # --quiet only silences HiGHS's own log
        click.echo(msg, err=True)

    result = run_study(scenario, tee=not quiet, log=log, time_limit_s=time_limit, mip_rel_gap=gap)
    click.echo(console_report(result))
    out = out_dir or Path("out") / result.scenario.name
    written = write_outputs(result, out)
    click.echo(
        f"\nwrote {len(written)} files to {out}/ (report.html, results.json, sizes.yaml, "
        "cashflow.csv, dispatch/*.csv, *.png)"
    )


COMMANDS = [design]
