"""Bad input found by trying every `ems` subcommand as a new user would: each gives exit code 2
and one line naming the file (or option), the field and the problem, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from adapters.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "adapters" / "sim" / "opera_pia_site.yaml"


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines, "no error printed"
    assert "Traceback" not in err, err
    return lines[-1]


# ---------------------------------------------------------------- a date that is not a date
@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["design", "{f}", "--quiet"], "name: x\nfoo: 2024-13-01\n"),
        (["run", "--config", "{f}"], "community: x\nscenario: 2024-02-30\n"),
        (["sweep", "{f}", "--dry-run"], "name: x\nbase: 2024-13-01\n"),
        (
            ["accounting", "ingest", "--config", "{f}", "--db", "{db}", "{f}"],
            "community: x\nconfigurations:\n  - constituted: 2024-13-01\n",
        ),
    ],
    ids=["design", "run", "sweep", "accounting"],
)
def test_an_impossible_date_in_yaml_is_one_line_with_its_line_number(tmp_path, capsys, argv, text):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    args = [a.format(f=f, db=tmp_path / "l.sqlite") for a in argv]
    assert main(args) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {f}: line ") and "invalid date '2024-" in line, line


# ---------------------------------------------------------------- ems run arguments
@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--start", "notadate"], "--start"),
        (["--start", "2025-06-16T00:00+02:00"], "without a time zone"),
        (["--steps", "0"], "--steps"),
        (["--time-limit", "-1"], "--time-limit"),
        (["--mqtt-port", "99999"], "--mqtt-port"),
    ],
)
def test_bad_run_arguments_are_usage_errors(tmp_path, capsys, extra, fragment):
    assert main(["run", "--simulate", "--state", str(tmp_path / "st"), *extra]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert fragment in line and "Invalid value" in line, line
    assert not (tmp_path / "st").exists()  # rejected before anything ran


def _run_site(tmp_path: Path, capsys, **changes) -> tuple[Path, int, str]:
    """``ems run --simulate`` on the demo SITE.yaml with ``changes``: (site file, exit code,
    the error line)."""
    raw = yaml.safe_load(SITE.read_text())
    raw["scenario"] = str((SITE.parent / raw["scenario"]).resolve())
    raw["sizes"] = str((SITE.parent / raw["sizes"]).resolve())
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({**raw, **changes}))
    code = main(["run", "--simulate", "--config", str(site), "--state", str(tmp_path / "st")])
    return site, code, _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"hub1": {"battery": {"modules": -6}}}, "sizes_override: hub1.battery.modules: -6 is not"),
        ({"hub1": {"battery": 6}}, "sizes_override: hub1.battery: 6 is not a mapping of sizes"),
        # entries operation would silently ignore: no such technology at the hub, a quantity or
        # a charger type it does not have, a hub the scenario does not have
        ({"hub3": {"hp_45": {"n_units": 1}}}, "sizes_override.hub3.hp_45: no technology 'hp_45'"),
        ({"hub1": {"battery": {"modules": 2, "kwhh": 10}}}, "sizes_override.hub1.battery.kwhh: "),
        ({"hub1": {"chargers": {"charger_v1g_50kw": 1}}}, "hub1.chargers.charger_v1g_50kw: "),
        ({"hub9": {"battery": {"modules": 2}}}, "sizes_override.hub9: not a hub of scenario"),
    ],
    ids=["negative", "not-a-mapping", "entry", "quantity", "charger-type", "hub"],
)
def test_a_bad_sizes_override_names_the_field(tmp_path, capsys, override, fragment):
    site, code, line = _run_site(tmp_path, capsys, sizes_override=override)
    assert code == 2, line
    assert line.startswith(f"error: {site}: ") and fragment in line, line
    assert not (tmp_path / "st").exists()  # rejected before anything ran


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (
            lambda h: h["hub3"].update(hp_45={"n_units": 1.0, "kwe": 45.0}),
            "hubs.hub3.hp_45: no technology 'hp_45' at hub3 in scenario opera_pia_virtual_hp",
        ),
        (
            lambda h: h["hub1"]["pv_mono"].update(kwpp=10.0),
            "hubs.hub1.pv_mono.kwpp: unknown quantity of pv_mono (known: kwp)",
        ),
    ],
    ids=["entry", "quantity"],
)
def test_a_sizes_file_entry_no_technology_reads_is_refused(tmp_path, capsys, edit, fragment):
    sizes = yaml.safe_load((SITE.parent / yaml.safe_load(SITE.read_text())["sizes"]).read_text())
    edit(sizes["hubs"])
    (tmp_path / "sizes.yaml").write_text(yaml.safe_dump(sizes))
    _site, code, line = _run_site(tmp_path, capsys, sizes=str(tmp_path / "sizes.yaml"))
    assert code == 2, line
    assert line.startswith(f"error: {tmp_path / 'sizes.yaml'}: {fragment}"), line


# ---------------------------------------------------------------- the hourly year of a scenario
def _hourly_scenario(tmp: Path, edit) -> Path:
    idx = pd.date_range("2023-01-01", periods=8760, freq="h")
    df = pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M"), "y": 0.0})
    edit(df)
    df.to_csv(tmp / "year.csv", index=False)
    scenario = {
        "name": "hourly",
        "community": "independent",
        "site": {"lat": 44.4, "lon": 8.96},
        "time": {"hourly_csv": "year.csv"},
        "hubs": [
            {"id": "h1", "contract_kw": 500, "electricity": {"annual_mwh": 838, "shape": "campus"}}
        ],
        "prices": {"purchase_bands": {"F1": 0.3, "F2": 0.25, "F3": 0.2}, "sale_eur_per_kwh": 0.05},
    }
    (tmp / "s.yaml").write_text(yaml.safe_dump(scenario))
    return tmp / "s.yaml"


def _inf(df):
    df.loc[100, "y"] = float("inf")


def _repeat(df):
    df.loc[11, "timestamp"] = df.loc[10, "timestamp"]


def _swap(df):
    df.loc[[20, 21], "timestamp"] = df.loc[[21, 20], "timestamp"].to_numpy()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_inf, "year.csv: line 102: y: missing or not a number ('inf')"),
        (
            lambda df: df.loc.__setitem__((100, "y"), None),
            "year.csv: line 102: y: missing or not a number (empty)",
        ),
        (_repeat, "year.csv: line 13: timestamp: 2023-01-01 10:00 repeats line 12"),
        (
            lambda df: df.drop(index=range(10, 20), inplace=True),
            "year.csv: 8750 rows: an hourly year needs 8760",
        ),
        (lambda df: df.drop(index=range(200, 8760), inplace=True), "year.csv: 200 rows"),
        (_swap, "year.csv: line 22: timestamp: 2023-01-01 21:00:00 is 0 days 02:00:00 after"),
    ],
    ids=["inf", "empty", "repeated", "short", "200_rows", "out_of_order"],
)
def test_a_broken_hourly_year_is_refused_before_solving(tmp_path, capsys, edit, expected):
    """Before: ±inf gave an 'optimal' design at −1.36 M€/y, a partial year was annualised as a
    full one and a repeated hour was silently kept (exit 0)."""
    path = _hourly_scenario(tmp_path, edit)
    assert main(["design", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("error: ") and expected in line, line
    assert not (tmp_path / "out").exists()


def test_ingest_config_with_bad_yaml_is_one_line(tmp_path, capsys):
    f = tmp_path / "ingest.yaml"
    f.write_text("mqtt: [\n")
    assert main(["ingest", "--config", str(f), "--community", "x", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {f}: line 2: not valid YAML: " + (
        "expected the node content, but found '<stream end>'"
    ), err


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_a_non_finite_number_in_a_scenario_is_named(tmp_path, capsys, value):
    """``max_kwp: .inf`` was an OverflowError traceback; ``.nan`` said 'greater than or equal to 0'."""
    path = _hourly_scenario(tmp_path, lambda df: None)
    raw = yaml.safe_load(path.read_text())
    raw["hubs"][0]["pv"] = [{"type": "pv_mono", "max_kwp": 10}]
    path.write_text(yaml.safe_dump(raw).replace("max_kwp: 10", f"max_kwp: {value}"))
    assert main(["design", str(path), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"error: {path}: hubs[h1].pv[0].max_kwp: Input should be a finite number", line


def test_accounting_ingest_of_a_binary_file_is_a_rejected_row_not_a_traceback(tmp_path, capsys):
    """A spreadsheet or binary given by mistake was a csv.Error traceback."""
    f = tmp_path / "meters.xlsx"
    f.write_bytes(b"PK\x03\x04\x00\x00\r\x00\x00\x00abc\rdef\x00\n" * 20)
    config = ROOT / "examples" / "accounting" / "accounting.yaml"
    args = ["accounting", "ingest", "--config", str(config), "--db", str(tmp_path / "l.sqlite")]
    assert main([*args, str(f)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: 1 bad row(s), first {f}:1: not a CSV file: "), line


def test_ingest_that_never_reaches_its_broker_says_so_and_fails(tmp_path, capsys):
    """It printed 'accepted 0, rejected 0' and exited 0 with no word about the broker."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    argv = ["ingest", "--community", "x", "--mqtt-port", str(port), "--duration", "1"]
    assert main([*argv, "--sqlite", str(tmp_path / "t.sqlite")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert (
        line == f"error: never connected to the MQTT broker 127.0.0.1:{port}: nothing was ingested"
    )


def test_site_file_errors_use_the_scenario_conventions(tmp_path, capsys):
    """'(file)' and '(top level)' as in scenario errors (a bare '-' stood in the field slot)."""
    assert main(["run", "--config", str(tmp_path / "none.yaml")]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: {tmp_path / 'none.yaml'}: (file): file not found"
    )
    site = tmp_path / "site.yaml"
    site.write_text("community: x\nscenario: s.yaml\nsizes: z.yaml\nstep_min: 7\nhorizon_h: 24\n")
    assert main(["run", "--config", str(site)]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: {site}: (top level): horizon_h must be a whole number of steps"
    )


def test_a_negative_demand_in_the_hourly_year_is_refused(tmp_path, capsys):
    """A load of −500 kW was sized as if it were free generation (exit 0)."""
    path = _hourly_scenario(tmp_path, lambda df: None)
    raw = yaml.safe_load(path.read_text())
    raw["hubs"][0]["electricity"] = {"column": "y"}
    path.write_text(yaml.safe_dump(raw))
    df = pd.read_csv(tmp_path / "year.csv")
    df.loc[100, "y"] = -500.0
    df.to_csv(tmp_path / "year.csv", index=False)
    assert main(["design", str(path), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == "error: year.csv: line 102: y: -500 is negative (demand and PV yield are ≥ 0)"


def test_run_with_a_broken_hourly_profile_names_the_cell(tmp_path, capsys):
    """Operation read the profile with a bare pd.read_csv: a text cell was a KeyError traceback."""
    case = ROOT / "design" / "cases" / "opera_pia"
    df = pd.read_csv(case / "data" / "hourly.csv")
    df["hub1_elec_kw"] = df["hub1_elec_kw"].astype(object)
    df.loc[5, "hub1_elec_kw"] = "abc"
    df.to_csv(tmp_path / "hourly.csv", index=False)
    scenario = yaml.safe_load((case / "virtual_hp.yaml").read_text())
    scenario["extends"] = str(case / "electric_base.yaml")
    scenario["time"] = {"hourly_csv": str(tmp_path / "hourly.csv")}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario))
    raw = yaml.safe_load(SITE.read_text())
    raw["scenario"] = str(tmp_path / "s.yaml")
    raw["sizes"] = str((SITE.parent / raw["sizes"]).resolve())
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(raw))
    argv = ["run", "--simulate", "--config", str(tmp_path / "site.yaml")]
    assert main([*argv, "--steps", "1", "--state", str(tmp_path / "st")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert (
        line
        == f"error: {tmp_path / 'hourly.csv'}: line 7: hub1_elec_kw: missing or not a number ('abc')"
    )
