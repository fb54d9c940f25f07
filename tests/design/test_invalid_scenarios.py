"""Each class of invalid scenario gives one clear line naming the file, the field and the problem
(through the real CLI entry point), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters.cli.main import main
from tests.design.conftest import make_scenario


def _base(tmp: Path) -> Path:
    return make_scenario(
        tmp,
        {"load": [10, 10], "yield_a": [0.5, 0.0], "buy": [0.2, 0.3]},
        [
            {
                "id": "h1",
                "contract_kw": 100,
                "electricity": {"column": "load"},
                "pv": [{"type": "pv_a", "max_kwp": 10}],
                "battery": {"type": "bat", "max_modules": 2},
            }
        ],
    )


def _edit(path: Path, fn) -> Path:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


CASES = {
    "unknown field": (
        lambda d: d["hubs"][0].update(contract_kva=5),
        ["hubs[h1].contract_kva", "unknown key 'contract_kva'"],
    ),
    "wrong type": (
        lambda d: d["hubs"][0].update(contract_kw="lots"),
        ["hubs[h1].contract_kw", "valid number"],
    ),
    "negative limit": (
        lambda d: d["hubs"][0]["battery"].update(max_modules=-1),
        ["hubs[h1].battery.max_modules", "greater than or equal to 0"],
    ),
    "bad enum": (lambda d: d.update(community="cooperative"), ["community", "independent"]),
    "missing section": (lambda d: d.pop("prices"), ["prices", "Field required"]),
    "unknown catalogue entry": (
        lambda d: d["hubs"][0]["pv"][0].update(type="pv_x"),
        ["hubs[h1].pv[0].type", "unknown catalogue entry 'pv_x'"],
    ),
    "wrong catalogue kind": (
        lambda d: d["hubs"][0]["battery"].update(type="pv_a"),
        ["hubs[h1].battery.type", "is a pv"],
    ),
    "duplicate hub": (lambda d: d["hubs"].append(dict(d["hubs"][0])), ["hub ids must be unique"]),
    "both price sources": (
        lambda d: d["prices"].update(purchase_bands={"F1": 0.3, "F23": 0.2}),
        ["prices", "exactly one of purchase_bands"],
    ),
    "incomplete bands": (
        lambda d: (
            d["prices"].pop("purchase_column")
            and d["prices"].update(purchase_bands={"F1": 0.3, "F2": 0.2})
        ),
        ["prices.purchase_bands", "F23"],
    ),
    "vehicle departs before arrival": (
        lambda d: d["hubs"][0].update(
            chargers=[{"type": "v1g", "max_units": 1}],
            vehicles=[
                {
                    "name": "c",
                    "battery_kwh": 40,
                    "p_max_kw": 7,
                    "need_kwh_per_day": 5,
                    "arrival_h": 18,
                    "departure_h": 9,
                }
            ],
        ),
        ["hubs[h1].vehicles[c]", "departure_h must be after arrival_h"],
    ),
    "vehicles without chargers": (
        lambda d: d["hubs"][0].update(
            vehicles=[
                {
                    "name": "c",
                    "battery_kwh": 40,
                    "p_max_kw": 7,
                    "need_kwh_per_day": 5,
                    "arrival_h": 8,
                    "departure_h": 9,
                }
            ]
        ),
        ["hubs[h1]", "at least one charger"],
    ),
    "missing data column": (
        lambda d: d["hubs"][0]["electricity"].update(column="nope"),
        ["time.typical_days_csv", "missing columns ['nope']"],
    ),
    "weights for unknown day": (
        lambda d: d["time"].update(weights={"d9": 365}),
        ["time.weights", "d9"],
    ),
    "catalogue override of wrong type": (
        lambda d: d.update(catalogue_overrides={"bat": {"module_kwh": "big"}}),
        ["catalogue_overrides.bat", "module_kwh"],
    ),
}


def _error_line(stderr: str) -> str:
    """The one error line; the other stderr lines are the progress lines (one per pass)."""
    errors = [line for line in stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert stderr.strip().splitlines()[-1] == errors[0], stderr
    return errors[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_scenario_gives_one_clear_line(tmp_path, capsys, case):
    edit, expected = CASES[case]
    path = _edit(_base(tmp_path), edit)
    code = main(["design", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = _error_line(capsys.readouterr().err)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("error: ") and str(path) in err or "days.csv" in err
    for fragment in expected:
        assert fragment in err, (fragment, err)


def test_missing_file_and_bad_yaml_and_bad_csv(tmp_path, capsys):
    assert main(["design", str(tmp_path / "none.yaml"), "--quiet"]) == 2
    assert "none.yaml: (file): file not found" in capsys.readouterr().err

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nhubs: [\n")
    assert main(["design", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: line" in err and "invalid YAML" in err

    path = _base(tmp_path)
    csv = tmp_path / "days.csv"
    lines = csv.read_text().splitlines()
    lines[2] = lines[2].replace("10", "NaN", 1)
    csv.write_text("\n".join(lines) + "\n")
    assert main(["design", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "days.csv: line 3: load: missing or not a number" in err, err


def test_extends_of_a_missing_base_names_the_referring_file(tmp_path, capsys):
    path = _edit(_base(tmp_path), lambda d: d.update(extends="no_such_base.yaml"))
    assert main(["design", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: extends: base scenario not found"), err
    assert "no_such_base.yaml" in err


def test_a_misspelt_key_is_reported_as_unknown_not_as_the_missing_one(tmp_path, capsys):
    path = _edit(_base(tmp_path), lambda d: d.update(nmae=d.pop("name")))
    assert main(["design", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nmae: unknown key 'nmae'; did you mean 'name'?" in err, err


def test_bad_cli_arguments_give_usage_errors(tmp_path, capsys):
    path = _base(tmp_path)
    assert main(["design", str(path), "--gap", "7"]) == 2
    assert "--gap" in capsys.readouterr().err
    assert main(["design"]) == 2
    assert "Missing argument" in capsys.readouterr().err


def test_infeasible_scenario_is_reported_not_raised(tmp_path, capsys):
    # contract power below the load and nothing to build: no solution
    path = _edit(
        _base(tmp_path), lambda d: d["hubs"][0].update(contract_kw=1.0, pv=[], battery=None)
    )
    assert main(["design", str(path), "--quiet"]) == 2
    err = _error_line(capsys.readouterr().err)
    assert "no solution" in err and "Infeasible" in err, err
    # the slack re-solve names the hub, the carrier, how much and the first hours: 10 kW load,
    # 1 kW contract → 9 kW missing in both 12 h steps = 9 × 24 × 365 kWh/y
    assert (
        "h1 electricity cannot meet demand (up to 9.0 kW, 78.8 MWh/y; first at d1 00:00, d1 12:00)"
        in err
    ), err


def test_infeasible_asis_is_reported_and_the_design_still_sized(tmp_path, capsys):
    # contract 1 kW under a 10 kW load: the present plant cannot run, but PV + batteries can
    # (12 h night × 9 kW = 108 kWh → 22 modules of 5 kWh; lossless, C-rate 1)
    path = _edit(
        _base(tmp_path),
        lambda d: d["hubs"][0].update(
            contract_kw=1.0,
            pv=[{"type": "pv_a", "max_kwp": 100}],
            battery={"type": "bat", "max_modules": 40},
        ),
    )
    assert main(["design", str(path), "--quiet", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "note: AS-IS infeasible" in out
    assert "h1 electricity cannot meet demand (up to 9.0 kW, 78.8 MWh/y" in out
    assert "design: optimal" in out


def test_quiet_keeps_one_progress_line_per_pass(tmp_path, capsys):
    path = _base(tmp_path)
    assert main(["design", str(path), "--quiet", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "Running HiGHS" not in err  # the solver's own log is off
    assert sum(line.startswith("AS-IS: optimal") for line in err.splitlines()) == 1, err
    assert sum(line.startswith("design: optimal") for line in err.splitlines()) == 1, err
