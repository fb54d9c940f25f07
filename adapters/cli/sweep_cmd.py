"""`ems sweep SWEEP.yaml`: many design studies (axes, sensitivity, Monte Carlo) on Dask."""

from __future__ import annotations

from pathlib import Path

import click

from adapters.cli._options import input_file, out_dir


@click.command("sweep")
@input_file("sweep_file")
@out_dir("Output folder (default: out/sweep_<sweep name>); its cache/ makes a re-run resume.")
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:8786",
    help="A running Dask scheduler (default: an embedded LocalCluster).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="LocalCluster worker processes (default: one per core, at most one per variant).",
)
@click.option(
    "--solver-threads",
    type=click.IntRange(min=1),
    default=None,
    help="HiGHS threads per variant (default: a host's cores // its workers' task slots).",
)
@click.option("--serial", is_flag=True, help="Run the variants one by one in this process.")
@click.option("--no-cache", is_flag=True, help="Ignore cached variant results (still writes them).")
@click.option("--dry-run", is_flag=True, help="List the variants and exit.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(
    sweep_file: Path,
    out_dir: Path | None,
    scheduler: str | None,
    workers: int | None,
    solver_threads: int | None,
    serial: bool,
    no_cache: bool,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Expand SWEEP_FILE into design variants, run them, and write results.parquet/.csv and the
    Pareto, tornado and Monte Carlo plots."""
    from design.sweep import load_sweep, run_sweep

    if scheduler is not None and serial:
        raise click.UsageError("--serial and --scheduler exclude each other")
    sw = load_sweep(sweep_file)
    n_unique = len({v.hash for v in sw.variants})
    click.echo(
        f"sweep {sw.name}: {len(sw.variants)} variants ({n_unique} distinct) on {sw.base_path.name}"
    )
    if dry_run:
        for v in sw.variants:
            click.echo(f"  {v.index:>4}  {v.group:<12} {v.hash}  {v.label}")
        return
    out = out_dir or Path("out") / f"sweep_{sw.name}"
    run = run_sweep(
        sw,
        out,
        scheduler=scheduler,
        workers=workers,
        solver_threads=solver_threads,
        serial=serial,
        use_cache=not no_cache,
        progress=not quiet,
    )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
    click.echo(f"{run.mode}: {run.wall_s:.1f} s; {counts}")
    bad = run.table[run.table["status"] != "ok"].drop_duplicates("hash")
    for _i, r in bad.iterrows():
        click.echo(f"  {r['status']}: {r['label']}: {r['reason']}")
    click.echo(f"wrote {', '.join(str(p) for p in run.written)}")


COMMANDS = [sweep]
