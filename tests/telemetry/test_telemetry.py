"""Pure tests of the topic scheme, payload schemas, point conversion and line protocol."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.influx.lineproto import encode_point
from ems.ports.timeseries import Point
from ems.telemetry import (
    Accepted,
    Rejected,
    decode_state,
    encode_setpoint,
    parse_topic,
    setpoint_topic,
    state_topic,
    status_topic,
    to_point,
)
from ems.telemetry.schemas import parse_timestamp
from ems.telemetry.topics import TopicError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
RELAXED = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_topic_round_trip():
    topic = state_topic("opera-pia", "hub1", "battery", "bat1")
    assert topic == "cer/opera-pia/hub1/battery/bat1/state"
    parsed = parse_topic(topic)
    assert (parsed.community, parsed.hub, parsed.kind, parsed.device, parsed.channel) == (
        "opera-pia",
        "hub1",
        "battery",
        "bat1",
        "state",
    )
    assert setpoint_topic("c", "h", "ev_charger", "cp1") == "cer/c/h/ev_charger/cp1/setpoint"
    assert status_topic("c") == "cer/c/ems/status"


@pytest.mark.parametrize(
    "topic",
    [
        "cer/c/h/k/d",
        "cer/c/h/k/d/state/x",
        "xyz/c/h/k/d/state",
        "cer/c/h/k/d/command",
        "cer/c/h/k/d d/state",
        "cer/c//k/d/state",
    ],
)
def test_bad_topics(topic):
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_timestamps_iso_epoch_seconds_and_milliseconds_agree():
    expected = datetime(2026, 6, 1, 11, 59, 30, tzinfo=timezone.utc)
    assert parse_timestamp("2026-06-01T11:59:30Z") == expected
    assert parse_timestamp("2026-06-01T13:59:30+02:00") == expected
    assert parse_timestamp(expected.timestamp()) == expected
    assert parse_timestamp(int(expected.timestamp() * 1000)) == expected


def test_accepted_state_becomes_tagged_point():
    result = decode_state(
        "cer/c/h1/ev_charger/cp1/state",
        json.dumps(
            {
                "ts": "2026-06-01T11:59:30.250Z",
                "plugged": True,
                "p_kw": 7.4,
                "departure": "2026-06-01T18:00:00Z",
            }
        ).encode(),
        now=NOW,
    )
    assert isinstance(result, Accepted)
    point = to_point(result)
    assert point.measurement == "telemetry"
    assert (
        point.time_ns
        == int(datetime(2026, 6, 1, 11, 59, 30, tzinfo=timezone.utc).timestamp()) * 10**9
        + 250_000_000
    )
    assert point.tags == {"community": "c", "hub": "h1", "device": "cp1", "kind": "ev_charger"}
    assert point.fields == {
        "plugged": True,
        "p_kw": 7.4,
        "departure_epoch_s": int(datetime(2026, 6, 1, 18, tzinfo=timezone.utc).timestamp()),
    }


def test_wrong_community_rejected():
    result = decode_state(
        "cer/other/h1/pv/p/state", b'{"ts": 1, "p_kw": 1}', now=NOW, community="mine"
    )
    assert isinstance(result, Rejected) and result.reason.value == "wrong_community"


def test_setpoint_encoding_requires_validity_window():
    ts = NOW
    payload = json.loads(
        encode_setpoint(
            "ai_cluster", {"ts": ts, "valid_until": ts + timedelta(minutes=15), "p_cap_kw": 12.0}
        )
    )
    assert payload["p_cap_kw"] == 12.0 and payload["valid_until"].startswith("2026-06-01T12:15:00")
    with pytest.raises(ValueError):
        encode_setpoint(
            "ai_cluster", {"ts": ts, "valid_until": ts - timedelta(seconds=1), "p_cap_kw": 12.0}
        )
    with pytest.raises(ValueError):
        encode_setpoint("meter", {"ts": ts, "valid_until": ts + timedelta(minutes=15)})


def test_line_protocol_escaping():
    point = Point(
        "telemetry",
        5,
        {"hub": "a b,c=d", "device": ""},
        {"mode": 'he"at', "n": 3, "ok": True, "p_kw": 1.5},
    )
    assert (
        encode_point(point) == 'telemetry,hub=a\\ b\\,c\\=d mode="he\\"at",n=3i,ok=true,p_kw=1.5 5'
    )


@RELAXED
@given(st.binary(max_size=300))
def test_decode_never_raises_on_arbitrary_bytes(payload):
    result = decode_state("cer/c/h1/battery/b1/state", payload, now=NOW)
    assert isinstance(result, (Accepted, Rejected))


@RELAXED
@given(
    st.dictionaries(
        st.sampled_from(["ts", "p_kw", "soc_pct", "temp_c", "x"]),
        st.one_of(
            st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
        ),
        max_size=5,
    )
)
def test_decode_never_raises_on_arbitrary_objects(document):
    result = decode_state("cer/c/h1/battery/b1/state", json.dumps(document).encode(), now=NOW)
    assert isinstance(result, (Accepted, Rejected))
