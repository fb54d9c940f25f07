"""Live day-ahead zonal price (Pz) over MQTT (device ``market/price/pz``): validated like any
payload, used for the sale price and the incentive's Pz where it covers the horizon, the
zonal-price profile elsewhere."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.operation.service import OperationService
from ems.operation.state import PlantState
from ems.techs.grid import Grid
from ems.telemetry.validate import Accepted, RejectReason, decode_state, to_point

TOPIC = "cer/c/market/price/pz/state"
NOW = datetime(2025, 6, 16, 8, 0, tzinfo=timezone.utc)


def feed(
    start: str = "2025-06-16T10:00:00Z", values=(200.0, 40.0, 0.0), step_min: int = 60
) -> dict:
    return {
        "ts": "2025-06-16T08:00:00Z",
        "start": start,
        "step_min": step_min,
        "pz_eur_per_mwh": list(values),
    }


def test_price_payload_validation() -> None:
    ok = decode_state(TOPIC, json.dumps(feed()).encode(), now=NOW, community="c")
    assert isinstance(ok, Accepted)
    assert to_point(ok).fields["pz_eur_per_mwh_n"] == 3
    for bad, reason in (
        ({**feed(), "pz_eur_per_mwh": []}, RejectReason.OUT_OF_RANGE),
        ({**feed(), "pz_eur_per_mwh": [1e6]}, RejectReason.OUT_OF_RANGE),
        ({**feed(), "pz_eur_per_mwh": ["50"]}, RejectReason.WRONG_TYPE),
        ({**feed(), "step_min": 30}, RejectReason.BAD_VALUE),
        ({**feed(), "pz_eur_per_mwh": [1.0] * 673}, RejectReason.OUT_OF_RANGE),
    ):
        res = decode_state(TOPIC, json.dumps(bad).encode(), now=NOW, community="c")
        assert res.reason is reason, (bad, res)
    nan = json.dumps(feed()).replace("200.0", "NaN").encode()
    assert decode_state(TOPIC, nan, now=NOW, community="c").reason is RejectReason.NON_FINITE


def test_feed_overrides_the_profile_where_it_covers(op) -> None:
    _site, _setup, fc, _ctl = op
    st = PlantState()
    st.ingest(("market", "price", "pz"), feed())
    pz = st.pz_feed()
    assert len(pz) == 12 and pz.index[0] == pd.Timestamp("2025-06-16 10:00", tz="UTC")
    times = pd.date_range("2025-06-16 09:00", periods=24, freq="15min", tz="UTC")  # 09:00–14:45
    profile = fc.pz_eur_per_mwh(times)
    live = fc.pz_eur_per_mwh(times, pz)
    expected = profile.copy()
    expected[4:8], expected[8:12], expected[12:16] = 200.0, 40.0, 0.0  # 10:00, 11:00, 12:00 hours
    assert np.allclose(live, expected)
    assert np.allclose(fc.price_sell(times, pz), fc.sale_factor * expected / 1000.0)
    assert not np.allclose(profile[4:16], expected[4:16])  # the feed changed something


def test_service_plans_with_the_fed_price(op) -> None:
    site, setup, fc, ctl = op
    svc = OperationService(site, setup, fc, controller=ctl)
    start = pd.Timestamp("2025-06-16 10:00", tz="UTC")
    svc.on_state(("market", "price", "pz"), feed(values=[333.0] * 4))
    out = svc.step(start)
    grid = setup.techs_of(Grid)[0].block
    sell = np.array([pyo.value(grid.price_sell[k]) for k in ctl.keys])
    assert np.allclose(sell[:16], fc.sale_factor * 0.333)
    assert not np.allclose(sell[16:], fc.sale_factor * 0.333)
    assert np.allclose(out.forecast["market.pz_eur_per_mwh"][:16], 333.0)
    assert ("market", "price", "pz", None) in svc.devices()
