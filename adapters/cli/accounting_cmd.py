"""`ems accounting …`: ingest meter / price CSV files into the GSE shared-energy ledger and write
monthly or annual statements (see docs/accounting.md)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import click

from adapters.accounting_io import load_config, read_input, write_report
from adapters.ledger_sqlite import SqliteLedgerStore
from ems.accounting import service
from ems.accounting.readings import normalise_issued
from ems.errors import DataError, EmsError

DEFAULT_CONFIG = "accounting.yaml"
DEFAULT_DB = "ledger.sqlite"
MAX_ERRORS_SHOWN = 20


class ArgumentError(EmsError):
    """A bad command-line argument (one line, exit 2)."""


class _Command(click.Command):
    """Usage errors become one-line EmsErrors instead of click's multi-line usage text."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise ArgumentError(f"ems accounting {self.name}: {exc.format_message()}") from None


class _Group(click.Group):
    command_class = _Command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise ArgumentError(f"ems accounting: {exc.format_message()}") from None

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[no-untyped-def]
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise ArgumentError(f"ems accounting: {exc.format_message()}") from None


def _common(f):  # type: ignore[no-untyped-def]
    f = click.option(
        "--db",
        "db_path",
        envvar="EMS_LEDGER_DB",
        default=DEFAULT_DB,
        show_default=True,
        help="SQLite ledger file (created if missing). Env: EMS_LEDGER_DB.",
    )(f)
    f = click.option(
        "--config",
        "config_path",
        envvar="EMS_ACCOUNTING_CONFIG",
        default=DEFAULT_CONFIG,
        show_default=True,
        help="Accounting YAML (plants, members, statute). Env: EMS_ACCOUNTING_CONFIG.",
    )(f)
    return f


def _period(month: str | None, year: str | None) -> tuple[date, date, str, bool]:
    if (month is None) == (year is None):
        raise ArgumentError("give exactly one of --month YYYY-MM or --year YYYY")
    if month is not None:
        m = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
        if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 2000:
            raise ArgumentError(f"--month {month!r}: expected YYYY-MM, e.g. 2024-06")
        return service.period_days(month=month.strip())
    assert year is not None
    if not re.fullmatch(r"\d{4}", year.strip()) or int(year) < 2000:
        raise ArgumentError(f"--year {year!r}: expected YYYY, e.g. 2024")
    return service.period_days(year=int(year))


@click.group("accounting", cls=_Group)
def accounting_group() -> None:
    """GSE incentive accounting: shared energy, TIP, valorisation, statements."""


def _issued(value: str | None) -> str:
    """--issued: the files' issue date, normalised (sortable ISO); '' if absent."""
    if not value:
        return ""
    try:
        return normalise_issued(value)
    except ValueError as exc:
        raise ArgumentError(f"--issued {value!r}: {exc}") from None


def _ingest_report(summary: service.IngestSummary, allow_unknown_pods: bool) -> None:
    """Echo the ingest outcome; raise the one-line error that ends a failed ingest."""
    for file, kind, good, bad in summary.files:
        click.echo(
            f"{file}: {kind} file, {good} rows accepted" + (f", {bad} rejected" if bad else "")
        )
    for file, name, when in summary.skipped:
        click.echo(f"{file}: already ingested ({name}, {when}): skipped")
    click.echo(
        f"readings/prices: {summary.new} new, {summary.corrected} corrected, "
        f"{summary.unchanged} unchanged"
        + (f", {summary.older} older than the stored issue (ignored)" if summary.older else "")
        + f"; ledger: {summary.ledger_versions} new hour versions"
    )
    for e in summary.errors[:MAX_ERRORS_SHOWN]:
        click.echo(f"rejected: {e}", err=True)
    problems = []
    if summary.errors:
        good = sum(g for _, _, g, _ in summary.files)
        problems.append(
            f"{len(summary.errors)} bad row(s), first {summary.errors[0]}; "
            f"the {good} good row(s) were stored"
        )
    if summary.unknown_pods:
        pods = ", ".join(sorted(summary.unknown_pods))
        if allow_unknown_pods:
            click.echo(f"warning: PODs not in the configuration (stored, not accounted): {pods}")
        else:
            problems.append(
                f"PODs not in the configuration: {pods} (stored, not accounted: a mistyped member "
                "or plant POD drops its hours from the totals; fix the configuration and run "
                "`ems accounting recompute`, or pass --allow-unknown-pods)"
            )
    if problems:
        raise DataError("; ".join(problems))


@accounting_group.command("ingest")
@_common
@click.option(
    "--issued",
    help="Issue date (YYYY-MM-DD[THH:MM]) of the files, e.g. of a distributor's rettifica: an "
    "older issue never overwrites a newer one.",
)
@click.option(
    "--allow-unknown-pods",
    is_flag=True,
    help="Accept readings of PODs not in the configuration (stored, not accounted).",
)
@click.argument("files", nargs=-1)
def ingest_cmd(
    config_path: str,
    db_path: str,
    issued: str | None,
    allow_unknown_pods: bool,
    files: tuple[str, ...],
) -> None:
    """Ingest meter and zonal-price CSV FILES into the ledger (a file already ingested is skipped;
    corrections are versioned by issue date)."""
    if not files:
        raise ArgumentError("ems accounting ingest: give at least one CSV file")
    issued_iso = _issued(issued)
    cfg = load_config(config_path)
    roles = service.pod_roles(cfg)
    parsed = [read_input(f, roles, issued_iso) for f in files]
    store = SqliteLedgerStore(db_path)
    try:
        summary = service.ingest(store, cfg, parsed)
    finally:
        store.close()
    _ingest_report(summary, allow_unknown_pods)


@accounting_group.command("recompute")
@_common
@click.option("--month", help="YYYY-MM")
@click.option("--year", help="YYYY")
def recompute_cmd(config_path: str, db_path: str, month: str | None, year: str | None) -> None:
    """Recompute the ledger of a period from stored raw data (after a configuration change)."""
    start, end, label, _ = _period(month, year)
    cfg = load_config(config_path)
    store = SqliteLedgerStore(db_path)
    try:
        n = service.recompute(store, cfg, start, end, f"recompute {label}")
    finally:
        store.close()
    click.echo(f"{label}: {n} new hour versions")


@accounting_group.command("report")
@_common
@click.option("--month", help="YYYY-MM")
@click.option("--year", help="YYYY")
@click.option("--out", "out_dir", default="reports", show_default=True, help="Output directory.")
def report_cmd(
    config_path: str, db_path: str, month: str | None, year: str | None, out_dir: str
) -> None:
    """Write the statement of a month or a year: Markdown + PNG chart + CSV per configuration,
    plant and member."""
    start, end, label, annual = _period(month, year)
    cfg = load_config(config_path)
    if not Path(db_path).exists():
        raise DataError(f"{db_path}: no ledger yet; run `ems accounting ingest FILE…` first")
    store = SqliteLedgerStore(db_path)
    try:
        sts = service.statements(store, cfg, start, end, label, annual)
    finally:
        store.close()
    empty = [s.config_id for s in sts if s.hours_with_data == 0]
    if len(empty) == len(sts):
        click.echo(f"warning: no ledger data for {label}: no statement written", err=True)
        raise DataError(
            f"{label}: no data in the ledger for any configuration ({', '.join(empty)}); "
            "ingest the meter files of the period first"
        )
    paths = write_report(out_dir, cfg.community, sts)
    problems: list[str] = []
    for s in sts:
        click.echo(
            f"{s.config_id} {label}: shared {s.shared_wh / 1000:.3f} kWh, TIP {s.tip_eur} €, "
            f"valorisation {s.valorisation_eur} €, sale {s.sale_eur} €, "
            f"complete hours {s.hours_complete}/{s.hours_expected}"
        )
        if s.annual:
            click.echo(
                f"{s.config_id} {label}: surplus (yearly, per set) {s.surplus_eur} €; "
                f"sum of the monthly figures {s.monthly_surplus_eur} €; "
                f"conguaglio {s.conguaglio_eur:+} €"
            )
        if s.stale_hours:
            click.echo(
                f"warning: {s.config_id}: {s.stale_hours} hours computed with an earlier "
                "configuration; run `ems accounting recompute`",
                err=True,
            )
        if s.config_id in empty:
            problems.append(f"{s.config_id}: no data in the ledger for {label}")
        for m in s.missing_parameters:
            click.echo(f"missing parameter: {s.config_id}: {m}", err=True)
        if s.missing_parameters:
            names = ", ".join(m.split(":", 1)[0] for m in s.missing_parameters)
            problems.append(f"{s.config_id}: missing parameter(s) {names}")
    click.echo(f"statement: {paths[0]}")
    if problems:
        raise DataError(
            "; ".join(problems) + " — the statement was written but is not final (see above)"
        )


@accounting_group.command("audit")
@click.option("--db", "db_path", envvar="EMS_LEDGER_DB", default=DEFAULT_DB, show_default=True)
@click.option("--limit", type=int, default=50, show_default=True, help="Show the last N entries.")
def audit_cmd(db_path: str, limit: int) -> None:
    """Show the audit trail: ingests, corrections and new ledger versions."""
    if not Path(db_path).exists():
        raise DataError(f"{db_path}: no ledger yet")
    store = SqliteLedgerStore(db_path)
    try:
        entries = store.audit()
    finally:
        store.close()
    for e in entries[-limit:] if limit > 0 else []:
        click.echo(f"{e.seq}\t{e.recorded_at}\t{e.action}\t{e.subject}\t{e.detail}")


COMMANDS = [accounting_group]
__all__ = ["COMMANDS", "accounting_group"]
