"""`ems accounting …` through adapters.cli.main.main, on the shipped sample data."""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "accounting"
CONFIG = str(EXAMPLES / "accounting.yaml")
FILES = [
    str(EXAMPLES / f)
    for f in ("meters_2024-06.csv", "pv-hub1_2024-06_15min.csv", "prices_NORD_2024-06.csv")
]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def ledger(tmp_path: Path, capsys) -> str:
    db = str(tmp_path / "ledger.sqlite")
    rc, out, err = _run(capsys, "accounting", "ingest", "--config", CONFIG, "--db", db, *FILES)
    assert rc == 0, err
    return db


def test_ingest_report_and_replay(ledger: str, tmp_path: Path, capsys) -> None:
    rc, out, _ = _run(capsys, "accounting", "ingest", "--config", CONFIG, "--db", ledger, *FILES)
    assert rc == 0 and "0 new, 0 corrected" in out and "ledger: 0 new hour versions" in out
    rc, out, err = _run(
        capsys,
        "accounting",
        "report",
        "--config",
        CONFIG,
        "--db",
        ledger,
        "--month",
        "2024-06",
        "--out",
        str(tmp_path / "rep"),
    )
    assert rc == 0, err
    rep = tmp_path / "rep"
    md = (rep / "statement_2024-06.md").read_text()
    assert "## Configuration cer-genova" in md and "![Daily shared energy" in md
    png = rep / "statement_2024-06_cer-genova_daily.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the sample's gap: 6 hours of member bianchi on 18 June, listed and kept out of the totals
    assert (
        "| IT001E20000005 withdrawn (bianchi): no data | 2024-06-18T09:00+02:00 | "
        "2024-06-18T14:00+02:00 | 6 |" in md
    )
    [conf] = list(csv.DictReader((rep / "statement_2024-06_configurations.csv").open()))
    assert conf["complete_hours"] == "714" and conf["hours"] == "720"
    members = list(csv.DictReader((rep / "statement_2024-06_members.csv").open()))
    assert sum(Decimal(m["allocation_eur"]) for m in members) == Decimal(conf["incentive_eur"])
    assert Decimal(conf["incentive_eur"]) == Decimal(conf["tip_eur"]) + Decimal(
        conf["valorisation_eur"]
    )
    plants = list(csv.DictReader((rep / "statement_2024-06_plants.csv").open()))
    old = [p for p in plants if p["plant_id"] == "pv-old"][0]
    assert (
        old["pre_existing"] == "True"
        and Decimal(old["tip_eur"]) == 0
        and Decimal(old["shared_kwh"]) > 0
    )
    # shared kWh in the configuration = sum over plants (attribution is exhaustive)
    assert sum(Decimal(p["shared_kwh"]) for p in plants) == Decimal(conf["shared_kwh"])
    daily = list(csv.DictReader((rep / "statement_2024-06_daily.csv").open()))
    assert len(daily) == 30 and sum(Decimal(d["shared_kwh"]) for d in daily) == Decimal(
        conf["shared_kwh"]
    )
    # GSE-shaped export: the month's TOTALE row carries the statement's figures
    gse = list(csv.DictReader((rep / "statement_2024-06_gse.csv").open(), delimiter=";"))
    [total] = [r for r in gse if r["impianto"] == "TOTALE"]
    assert Decimal(total["tariffa_premio_eur"].replace(",", ".")) == Decimal(conf["tip_eur"])
    assert Decimal(total["corrispettivi_gse_eur"].replace(",", ".")) == Decimal(
        conf["gse_fees_eur"]
    )
    assert Decimal(total["energia_condivisa_kwh"].replace(",", ".")) == Decimal(conf["shared_kwh"])
    assert {r["impianto"] for r in gse} == {"pv-hub1", "pv-hub3", "pv-old", "TOTALE"}


def test_correction_then_annual_report_and_audit(ledger: str, tmp_path: Path, capsys) -> None:
    rc, out, _ = _run(
        capsys,
        "accounting",
        "ingest",
        "--config",
        CONFIG,
        "--db",
        ledger,
        str(EXAMPLES / "meters_2024-06_correction.csv"),
    )
    assert rc == 0 and "2 corrected" in out and "2 new hour versions" in out
    rc, out, _ = _run(
        capsys,
        "accounting",
        "report",
        "--config",
        CONFIG,
        "--db",
        ledger,
        "--year",
        "2024",
        "--out",
        str(tmp_path),
    )
    assert rc == 0 and "complete hours 714/8784" in out
    md = (tmp_path / "statement_2024.md").read_text()
    assert (
        "| 2024-06 | 714 / 720 |" in md
        and "| 2024-05 | 0 / 744 |" in md
        and "| 2024-03 | 0 / 743 |" in md
    )
    assert (
        md.startswith("# Annual incentive statement")
        and "| hours corrected by late data (ledger version > 1) | 2 |" in md
    )
    rc, out, _ = _run(capsys, "accounting", "audit", "--db", ledger)
    assert rc == 0 and "reading_corrected" in out and "ledger_version" in out
    # nothing changed since: recompute appends nothing
    rc, out, _ = _run(
        capsys, "accounting", "recompute", "--config", CONFIG, "--db", ledger, "--month", "2024-06"
    )
    assert rc == 0 and out.strip() == "2024-06: 0 new hour versions"


def test_bad_rows_one_line_error_good_rows_kept(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "pod,direction,timestamp,kwh\n"
        "IT001E20000001,withdrawn,2024-06-12T11:00:00+02:00,12.5\n"
        "IT001E20000001,withdrawn,2024-06-12T12:00:00+02:00,twelve\n"
    )
    db = str(tmp_path / "l.sqlite")
    rc, out, err = _run(capsys, "accounting", "ingest", "--config", CONFIG, "--db", db, str(bad))
    assert rc == 2
    last = err.strip().splitlines()[-1]
    assert (
        last.startswith("error: 1 bad row(s), first ")
        and f"{bad}:3: " in last
        and "1 good row(s) were stored" in last
    )
    assert "Traceback" not in err
    rc, out, _ = _run(capsys, "accounting", "ingest", "--config", CONFIG, "--db", db, str(bad))
    assert "already ingested" in out and "0 new" in out  # the same file again: a no-op
    # the same rows in a file of different content (a trailing blank line): the good row is known
    bad.write_text(bad.read_text() + "\n")
    rc, out, _ = _run(capsys, "accounting", "ingest", "--config", CONFIG, "--db", db, str(bad))
    assert "0 new" in out and "1 unchanged" in out  # the good row was stored the first time


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["accounting", "report", "--month", "2024-13"], "--month '2024-13'"),
        (["accounting", "report", "--year", "24"], "--year '24'"),
        (["accounting", "report"], "exactly one of --month"),
        (
            ["accounting", "report", "--month", "2024-06", "--year", "2024"],
            "exactly one of --month",
        ),
        (["accounting", "report", "--bogus"], "No such option"),
        (["accounting", "frobnicate"], "No such command"),
        (["accounting", "ingest"], "at least one CSV file"),
        (
            ["accounting", "ingest", "--config", "/nonexistent/cer.yaml", "x.csv"],
            "/nonexistent/cer.yaml: (file): not found",
        ),
    ],
)
def test_bad_arguments_are_one_line_exit_2(capsys, argv, needle) -> None:
    rc, out, err = _run(capsys, *argv)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("error: "), err


def test_bad_config_and_missing_ledger(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "cer.yaml"
    shutil.copy(CONFIG, cfg)
    cfg.write_text(cfg.read_text().replace("power_kw: 45", "power_kw: -45"))
    rc, _, err = _run(
        capsys,
        "accounting",
        "report",
        "--config",
        str(cfg),
        "--db",
        str(tmp_path / "x.sqlite"),
        "--month",
        "2024-06",
    )
    assert (
        rc == 2
        and "configurations[cer-genova].plants[pv-hub3].power_kw: Input should be greater than 0"
        in err
    )
    rc, _, err = _run(
        capsys,
        "accounting",
        "report",
        "--config",
        CONFIG,
        "--db",
        str(tmp_path / "none.sqlite"),
        "--month",
        "2024-06",
    )
    assert rc == 2 and "no ledger yet" in err and len(err.strip().splitlines()) == 1


def test_invalid_yaml_and_empty_config(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("community: X\nconfigurations: [\n  - id: a\n")
    rc, _, err = _run(capsys, "accounting", "ingest", "--config", str(bad), "x.csv")
    assert (
        rc == 2
        and f"{bad}: line " in err
        and "invalid YAML" in err
        and len(err.strip().splitlines()) == 1
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    rc, _, err = _run(capsys, "accounting", "ingest", "--config", str(empty), "x.csv")
    assert rc == 2 and "(top level): expected a mapping" in err
