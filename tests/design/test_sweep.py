"""Sweeps: expansion of axes, content-hash cache, failing variants, hand-checked fronts.

The scenario is the one of test_objectives (hand-checked there): one hub, 10 kW of load for 12 h,
PV at 0.5 kW/kWp in those hours, buying at 0.04 €/kWh. PV (100 €/kWp/y) saves 87.6 €/y per kWp and
avoids 0.5475 t/y; AS-IS costs 1752 €/y and emits 10.95 t/y. The weighted objective (28) builds
20 kWp iff α < 0.876; with 20 kWp: cost 1752 + 20 × 12.4 = 2000 €/y, CO2 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from adapters.cli.main import main
from design.sweep import load_sweep, run_sweep
from design.sweep import prices as mc
from design.sweep.plots import pareto_mask, tornado_table
from ems.errors import ConfigError

HUB = {
    "id": "h1",
    "contract_kw": 100,
    "electricity": {"column": "load"},
    "pv": [{"type": "pv_a", "max_kwp": 50}],
}


def _base(factory) -> Path:
    return factory(
        {"load": [10, 0], "yield_a": [0.5, 0.0], "buy": [0.04, 0.04]},
        [HUB, {**HUB, "id": "h2", "pv": [], "battery": {"type": "bat", "max_modules": 2}}],
        extra={"emissions": {"grid_t_per_mwh": 0.25}},
    )


def _sweep(base: Path, body: dict) -> Path:
    p = base.parent / "sweep.yaml"
    p.write_text(yaml.safe_dump({"base": base.name, **body}, sort_keys=False))
    return p


def test_expansion_grid_sensitivity_members_monte_carlo(scenario_factory):
    base = _base(scenario_factory)
    sw = load_sweep(
        _sweep(
            base,
            {
                "grid": [
                    {"alpha": [0, 1]},
                    {"field": "hubs[h2].battery.max_modules", "values": [0, 4]},
                ],
                "sensitivity": [
                    {"field": "catalogue.pv_a.capex_eur_per_kwp", "pct": [-20, 20]},
                    {"field": "hubs.h2.battery.max_modules", "pct": [-30]},
                    {
                        "members": [
                            {"label": "no h2", "leave": ["h2"]},
                            {
                                "label": "+h3",
                                "join": [{"copy": "h1", "id": "h3", "contract_kw": 7}],
                            },
                        ]
                    },
                ],
                "monte_carlo": {"samples": 3, "seed": 5},
            },
        )
    )
    groups = [v.group for v in sw.variants]
    assert groups == ["grid"] * 4 + ["base"] + ["sensitivity"] * 5 + ["monte_carlo"] * 3
    grid = sw.variants[:4]
    assert [(v.axes["alpha"], v.axes["hubs[h2].battery.max_modules"]) for v in grid] == [
        (0, 0),
        (0, 4),
        (1, 0),
        (1, 4),
    ]
    assert grid[1].scenario["objective"] == {"kind": "weighted", "alpha": 0.0}
    assert grid[1].scenario["hubs"][1]["battery"]["max_modules"] == 4
    cheap, dear, fewer, leave, join = sw.variants[5:10]
    assert cheap.scenario["catalogue_overrides"] == {"pv_a": {"capex_eur_per_kwp": 800.0}}
    assert dear.scenario["catalogue_overrides"]["pv_a"]["capex_eur_per_kwp"] == pytest.approx(1200)
    assert fewer.scenario["hubs"][1]["battery"]["max_modules"] == 1  # int(round(2 × 0.7))
    assert [h["id"] for h in leave.scenario["hubs"]] == ["h1"]
    h3 = join.scenario["hubs"][2]
    assert (h3["id"], h3["contract_kw"], h3["pv"]) == ("h3", 7, HUB["pv"])
    assert sw.variants[4].scenario["hubs"] == yaml.safe_load(base.read_text())["hubs"]
    assert [v.price_path["sample"] for v in sw.variants[10:]] == [0, 1, 2]
    assert len({v.hash for v in sw.variants}) == len(sw.variants)


def test_hash_is_content_not_names_or_threads(scenario_factory):
    base = _base(scenario_factory)
    body = {"grid": [{"alpha": [0.5]}, {"field": "solver.threads", "values": [1, 2]}]}
    a, b = load_sweep(_sweep(base, body)).variants
    assert a.hash == b.hash  # same problem, other thread count: computed once
    days = base.parent / "days.csv"
    df = pd.read_csv(days)
    df.loc[0, "buy"] = 0.05
    df.to_csv(days, index=False)
    assert load_sweep(_sweep(base, body)).variants[0].hash != a.hash  # data changed


@pytest.mark.parametrize(
    "body, field, problem",
    [
        ({"grid": [{"alpha": [0, 1.5]}]}, "grid[0]", "within [0, 1]"),
        (
            {"grid": [{"field": "prices.no_such", "values": [1]}]},
            "prices.no_such",
            "not a scenario field",
        ),
        (
            {"sensitivity": [{"field": "hubs[h9].contract_kw", "pct": [10]}]},
            "sensitivity[0].field",
            "no item 'h9'",
        ),
        (
            {"grid": [{"members": [{"label": "x", "leave": ["h7"]}]}]},
            "grid[0].members[x].leave",
            "no hub 'h7'",
        ),
        ({"grid": [{"field": "a..b", "values": [1]}]}, "grid[0].field", "dotted path"),
        ({}, "(top level)", "at least one of grid"),
        ({"grid": [{"alpha": []}]}, "grid[0]", "alpha: empty"),
        ({"base": "no_such.yaml", "grid": [{"alpha": [1]}]}, "base", "base scenario not found"),
    ],
)
def test_bad_sweep_files_give_one_line_errors(scenario_factory, capsys, body, field, problem):
    path = _sweep(_base(scenario_factory), body)
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert field in str(err.value) and problem in str(err.value)
    assert main(["sweep", str(path), "--dry-run"]) == 2
    out = capsys.readouterr().err.strip()
    assert out.startswith("error: ") and "\n" not in out


def _front_sweep(factory) -> Path:
    base = factory(
        {"load": [10, 0], "yield_a": [0.5, 0.0], "buy": [0.04, 0.04]},
        [HUB],
        extra={"emissions": {"grid_t_per_mwh": 0.25}},
    )
    return _sweep(
        base,
        {
            "kpi": "annualised_cost_eur_per_y",
            "grid": [{"alpha": [1.0, 0.9, 0.5, 0.0]}],
            "sensitivity": [
                {"field": "catalogue.pv_a.capex_eur_per_kwp", "pct": [-20, 20]},
                {  # h1 replaced by a 1 kW connection without PV for a 10 kW load: infeasible
                    "members": [
                        {
                            "label": "h1 at 1 kW",
                            "leave": ["h1"],
                            "join": [{"copy": "h1", "id": "h1", "contract_kw": 1, "pv": []}],
                        }
                    ]
                },
            ],
        },
    )


def test_serial_sweep_hand_checked_front_failures_and_cache(scenario_factory, tmp_path):
    path = _front_sweep(scenario_factory)
    sw = load_sweep(path)
    run = run_sweep(sw, tmp_path / "out", serial=True, progress=False)
    t = run.table
    grid = t[t["group"] == "grid"]
    assert list(grid["size.h1.pv_a_kwp"]) == pytest.approx([0, 0, 20, 20])
    assert list(grid["kpi.annualised_cost_eur_per_y"]) == pytest.approx([1752, 1752, 2000, 2000])
    assert list(grid["kpi.co2_t_per_y"]) == pytest.approx([10.95, 10.95, 0, 0], abs=1e-6)
    assert (grid["solve.design.status"] == "optimal").all()
    # the front: both ends; duplicates of a point are not dominated by each other
    mask = pareto_mask(
        grid["kpi.annualised_cost_eur_per_y"].to_numpy(), grid["kpi.co2_t_per_y"].to_numpy()
    )
    assert mask.all()
    bad = t[t["status"] != "ok"]
    assert list(bad["label"]) == ["members=h1 at 1 kW"]
    assert bad["status"].iloc[0] == "infeasible"
    assert "provenInfeasible" in bad["reason"].iloc[0] and "h1" in bad["reason"].iloc[0]
    # tornado: PV 20 % cheaper (80 €/kWp/y < 87.6 saved) builds 20 kWp: 1752 − 20 × 7.6 = 1600
    tor = tornado_table(t, "annualised_cost_eur_per_y").set_index("axis")
    row = tor.loc["catalogue.pv_a.capex_eur_per_kwp %"]
    assert (row["low"], row["low_at"], row["high"], row["base"]) == pytest.approx(
        (1600, -20, 1752, 1752)
    )
    # files: Parquet and CSV with the same rows; the plots
    assert pd.read_parquet(tmp_path / "out" / "results.parquet").shape[0] == len(sw.variants)
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "tornado.png").is_file()
    # re-run: everything from the cache (the infeasible variant too: it is a property of it)
    again = run_sweep(load_sweep(path), tmp_path / "out", serial=True, progress=False)
    assert again.counts["run"] == 0 and again.table["cached"].all()
    cols = ["label", "status", "size.h1.pv_a_kwp", "kpi.annualised_cost_eur_per_y"]
    pd.testing.assert_frame_equal(again.table[cols], t[cols])


def test_error_variants_are_not_cached(scenario_factory, tmp_path):
    """A variant whose value the scenario schema rejects is reported (invalid) and the others
    finish; a non-final outcome (error) is retried on a re-run."""
    base = _base(scenario_factory)
    path = _sweep(base, {"grid": [{"field": "hubs[h2].battery.max_modules", "values": [-1, 1]}]})
    run = run_sweep(load_sweep(path), tmp_path / "o", serial=True, progress=False, plots=False)
    assert list(run.table["status"]) == ["invalid", "ok"]
    assert (
        "max_modules" in run.table["reason"].iloc[0]
        and "greater than or equal" in run.table["reason"].iloc[0]
    )
    from design.sweep.engine import _cache_get, _cache_put

    _cache_put(tmp_path / "c", {"hash": "x", "status": "error", "reason": "worker lost"})
    assert _cache_get(tmp_path / "c", "x") is None


def test_price_paths_are_reproducible_and_scale_prices_by_month():
    path = {
        "seed": 3,
        "sample": 2,
        "level_sigma": 0.2,
        "monthly_sigma": 0.05,
        "sale_correlation": 1.0,
    }
    buy, sell = mc.monthly_factors(path)
    assert np.allclose(buy, mc.monthly_factors(path)[0])
    assert np.allclose(buy, sell)  # correlation 1: the same shocks
    assert not np.allclose(buy, mc.monthly_factors({**path, "sample": 3})[0])
    # over many samples the median factor is 1 (lognormal around the base path)
    many = np.array([mc.monthly_factors({**path, "sample": k})[0][5] for k in range(2000)])
    assert np.median(many) == pytest.approx(1.0, abs=0.03)
    idx = pd.date_range("2023-01-01", periods=8760, freq="h")
    hourly = pd.DataFrame({"zonal": 100.0}, index=idx)
    scn = {"prices": {"purchase_bands": {"F1": 0.3, "F23": 0.2}, "sale_column": "zonal"}}
    prices = mc.apply_to_hourly(scn, hourly, path)
    assert prices["purchase_column"] == mc.MC_BUY and prices["sale_column"] == mc.MC_SELL
    # 2023-07-03 is a Monday: 10:00 is F1, 23:00 is F3 (F23 price)
    assert hourly.loc["2023-07-03 10:00", mc.MC_BUY] == pytest.approx(0.3 * buy[6])
    assert hourly.loc["2023-07-03 23:00", mc.MC_BUY] == pytest.approx(0.2 * buy[6])
    assert hourly.loc["2023-02-01 12:00", mc.MC_SELL] == pytest.approx(100.0 * sell[1])


def test_monte_carlo_variants_solve_with_their_own_prices(scenario_factory, tmp_path):
    """Typical days carry no calendar: a sample scales the prices by its annual mean factor, so
    the AS-IS cost (no choice) is the base cost × that factor, sample by sample."""
    base = _base(scenario_factory)
    path = _sweep(base, {"monte_carlo": {"samples": 3, "seed": 11, "level_sigma": 0.3}})
    sw = load_sweep(path)
    run = run_sweep(sw, tmp_path / "o", serial=True, progress=False)
    assert (run.table["status"] == "ok").all()
    for v, cost in zip(sw.variants, run.table["asis.annualised_cost_eur_per_y"], strict=True):
        factor = mc.monthly_factors(v.price_path)[0].mean()
        assert cost == pytest.approx(2 * 1752 * factor)  # two hubs with the same load
    assert (tmp_path / "o" / "monte_carlo.png").is_file()


def test_monte_carlo_on_an_hourly_year_prices_each_month(tmp_path):
    """An hourly year with band prices: a sample's purchase price is band price × its month's
    factor on the real calendar. With a constant 10 kW load and nothing to build, the AS-IS cost
    is 10 kW × Σ_hours price (the typical days keep each hour's mean and weights count days)."""
    from ems.tariffs import arera_bands

    idx = pd.date_range("2023-01-01", periods=8760, freq="h")
    pd.DataFrame(
        {"timestamp": idx.strftime("%Y-%m-%d %H:%M"), "load": 10.0, "zonal": 100.0}
    ).to_csv(tmp_path / "year.csv", index=False)
    scenario = {
        "name": "year",
        "community": "independent",
        "site": {"lat": 44.4, "lon": 8.96},
        "time": {"hourly_csv": "year.csv"},
        "hubs": [{"id": "h1", "contract_kw": 50, "electricity": {"column": "load"}}],
        "prices": {"purchase_bands": {"F1": 0.3, "F23": 0.2}, "sale_column": "zonal"},
        "finance": {"interest_rate": 0.0},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario))
    sweep = {"base": "s.yaml", "monte_carlo": {"samples": 2, "seed": 1, "level_sigma": 0.2}}
    (tmp_path / "sw.yaml").write_text(yaml.safe_dump(sweep))
    sw = load_sweep(tmp_path / "sw.yaml")
    run = run_sweep(sw, tmp_path / "o", serial=True, progress=False, plots=False)
    assert (run.table["status"] == "ok").all(), run.table["reason"]
    band = np.array([0.3 if b == "F1" else 0.2 for b in arera_bands(idx)])
    month = idx.month.to_numpy() - 1
    for v, cost in zip(sw.variants, run.table["asis.annualised_cost_eur_per_y"], strict=True):
        factor = mc.monthly_factors(v.price_path)[0]
        assert cost == pytest.approx(10.0 * float((band * factor[month]).sum()), rel=1e-6)


def test_cli_default_runs_on_a_local_cluster(scenario_factory, tmp_path, capsys):
    """`ems sweep` without --scheduler: an embedded LocalCluster of worker processes; the second
    run resumes from the cache."""
    path = _front_sweep(scenario_factory)
    out = tmp_path / "cli"
    assert main(["sweep", str(path), "--workers", "2", "--quiet", "--out", str(out)]) == 0
    t = pd.read_parquet(out / "results.parquet")
    grid = t[t["group"] == "grid"]
    assert list(grid["size.h1.pv_a_kwp"]) == pytest.approx([0, 0, 20, 20])
    assert t["worker"].str.startswith("tcp://127.0.0.1:").all()
    assert (out / "pareto.png").is_file() and (out / "results.csv").is_file()
    printed = capsys.readouterr().out
    assert "LocalCluster (2 workers" in printed and "infeasible: members=h1 at 1 kW" in printed
    assert main(["sweep", str(path), "--quiet", "--out", str(out)]) == 0
    assert "all cached" in capsys.readouterr().out


def test_size_summary_is_built_from_the_technologies_labels(scenario_factory, tmp_path):
    """The Pareto labels' size summary names the groups the technologies declare
    (``summary_label``) and keys the others, without a list of kinds in the sweep code."""
    from design.sweep.plots import size_summary

    path = _front_sweep(scenario_factory)
    run = run_sweep(load_sweep(path), tmp_path / "out", serial=True, progress=False, plots=False)
    grid = run.table[run.table["group"] == "grid"]
    labels = [size_summary(r) for _i, r in grid.iterrows()]
    assert labels[0].startswith("PV 0 kWp") and labels[-1].startswith("PV 20 kWp"), labels
    # a row cached before the column existed: its sizes by item
    old = grid.iloc[-1].drop("label.sizes")
    assert size_summary(old) == "pv_a_kwp 20"  # summed over hubs
