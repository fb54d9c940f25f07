"""Sweeps on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on
loopback (free ports, stopped at teardown), not a LocalCluster.

The variants are the hand-checked weighted-objective instance of tests/design/test_sweep.py:
PV 20 kWp iff α < 0.876, cost 2000 €/y with PV, 1752 €/y without.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from design.sweep import load_sweep, run_sweep
from tests.conftest import server_missing
from tests.design.conftest import make_scenario
from tests.integration import servers

pytestmark = pytest.mark.integration
ALPHAS = [1.0, 0.95, 0.9, 0.8, 0.6, 0.5, 0.3, 0.0]


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[servers.DaskCluster]:
    """A scheduler and workers ``wa`` and ``wb`` (one single-threaded worker process each)."""
    try:
        cluster = servers.dask_cluster(tmp_path / "dask")
    except (RuntimeError, OSError) as exc:
        server_missing(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


def _alpha_sweep(tmp: Path) -> Path:
    base = make_scenario(
        tmp,
        {"load": [10, 0], "yield_a": [0.5, 0.0], "buy": [0.04, 0.04]},
        [
            {
                "id": "h1",
                "contract_kw": 100,
                "electricity": {"column": "load"},
                "pv": [{"type": "pv_a", "max_kwp": 50}],
            }
        ],
        extra={"emissions": {"grid_t_per_mwh": 0.25}},
    )
    p = tmp / "sweep.yaml"
    p.write_text(yaml.safe_dump({"base": base.name, "grid": [{"alpha": ALPHAS}]}))
    return p


def _expected_kwp() -> list[float]:
    return [20.0 if a < 0.876 else 0.0 for a in ALPHAS]


def _workers_by_name(address: str) -> dict[str, str]:
    from distributed import Client

    with Client(address, timeout="20s") as c:
        return {w["name"]: a for a, w in c.scheduler_info(n_workers=-1)["workers"].items()}


def test_sweep_on_external_scheduler_and_two_workers(dask_cluster, tmp_path):
    """Hand-checked results through a real scheduler; solver threads per worker from its host."""
    (tmp_path / "in").mkdir()
    sweep = load_sweep(_alpha_sweep(tmp_path / "in"))
    run = run_sweep(sweep, tmp_path / "out", scheduler=dask_cluster.address, progress=False)
    t = run.table
    assert list(t["status"]) == ["ok"] * len(ALPHAS), t[["label", "reason"]]
    assert list(t["size.h1.pv_a_kwp"]) == pytest.approx(_expected_kwp())
    workers = _workers_by_name(dask_cluster.address)
    assert set(t["worker"]) <= set(workers.values())
    # two single-threaded workers on this host share its cores
    expect_threads = max(1, (os.cpu_count() or 1) // 2)
    assert set(t["solver_threads"]) == {expect_threads}
    assert {w["solver_threads"] for w in run.workers.values()} == {expect_threads}


def test_worker_killed_mid_sweep_loses_nothing(dask_cluster, tmp_path):
    """SIGKILL a worker's process group while it holds variants (and, when it can be caught so,
    the input files): the scheduler re-runs them on the other worker; every variant comes back
    with its hand-checked result."""
    from distributed import Client

    (tmp_path / "in").mkdir()
    sweep = load_sweep(_alpha_sweep(tmp_path / "in"))
    workers = _workers_by_name(dask_cluster.address)
    result: dict = {}

    def go() -> None:
        try:
            result["run"] = run_sweep(
                sweep, tmp_path / "out", scheduler=dask_cluster.address, progress=False
            )
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=go)
    held: set[str] = set()
    victim = ""
    with Client(dask_cluster.address, timeout="20s") as spy:
        thread.start()
        deadline = time.monotonic() + 120
        while not held and time.monotonic() < deadline and thread.is_alive():
            # prefer the worker that also holds the input files (a copy lost with it must be
            # recomputed, not cancel every variant); after 3 s any worker holding variants
            files = {
                a for k, ws in spy.who_has().items() if str(k).startswith("ems-files-") for a in ws
            }
            for name, addr in workers.items():
                mine = {
                    k for k in spy.processing().get(addr, ()) if str(k).startswith("ems-variant-")
                }
                if mine and (addr in files or time.monotonic() > deadline - 117):
                    held, victim = mine, name
                    break
            time.sleep(0.02)
        assert held, "no worker received a variant"
        dask_cluster.kill_worker(victim)
    survivor = workers["wb" if victim == "wa" else "wa"]
    thread.join(timeout=300)
    assert not thread.is_alive() and "error" not in result, result.get("error")
    t = result["run"].table
    assert list(t["status"]) == ["ok"] * len(ALPHAS), t[["label", "status", "reason"]]
    assert list(t["size.h1.pv_a_kwp"]) == pytest.approx(_expected_kwp())
    rerun = t[t["hash"].isin({k.removeprefix("ems-variant-") for k in held})]
    assert len(rerun) == len(held) and (rerun["worker"] == survivor).all()
