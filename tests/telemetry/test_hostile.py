"""Hostile payloads (issue 16 C, D): size and nesting limits before decoding, every failure a
counted reason, one rate-limited log line per reason, time order of EV fields."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ems.telemetry.rejects import RejectCounter
from ems.telemetry.validate import (
    Accepted,
    Rejected,
    RejectReason,
    ValidationLimits,
    decode_state,
    json_depth,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
TS = NOW.isoformat()
EV = "cer/c/h1/ev_charger/cp1/state"
METER = "cer/c/h1/meter/main/state"


def _nested(depth: int) -> bytes:
    return b'{"ts": 1780315200, "import_p_kw": 1, "export_p_kw": 0, "x": ' + (
        b"[" * depth + b"]" * depth + b"}"
    )


def test_100k_deep_payload_is_a_counted_reason_not_a_recursion_error():
    # 100,000 levels are 200 kB: with the default 64 kB limit, refused on size before decoding
    assert decode_state(METER, _nested(100_000), now=NOW).reason is RejectReason.TOO_LARGE
    # with the size limit lifted, the nesting scan refuses it (the decoder would recurse)
    big = ValidationLimits(max_payload_bytes=10**6)
    result = decode_state(METER, _nested(100_000), now=NOW, limits=big)
    assert isinstance(result, Rejected) and result.reason is RejectReason.TOO_DEEP
    # unbalanced, too: only opening brackets
    result = decode_state(METER, b"[" * 100_000, now=NOW, limits=big)
    assert result.reason is RejectReason.TOO_DEEP
    # within 64 kB and deeper than Python's recursion limit
    assert decode_state(METER, _nested(30_000), now=NOW).reason is RejectReason.TOO_DEEP
    # at the limit the payload reaches the schema (an unknown field), one level more does not
    limits = ValidationLimits(max_depth=3)
    assert decode_state(METER, _nested(2), now=NOW, limits=limits).reason is (
        RejectReason.UNKNOWN_FIELD
    )
    assert decode_state(METER, _nested(3), now=NOW, limits=limits).reason is RejectReason.TOO_DEEP


def test_depth_scan_ignores_brackets_inside_strings_and_escapes():
    text = json.dumps({"a": '[[[[[[[[[[["\\', "b": [[1]], "c": "}}}}"}).encode()
    assert json_depth(text, 2) == 3  # {, [, [ — the string's brackets and quotes do not count
    assert json_depth(b'["\\"[[[[", [[[]]]]', 3) == 4
    # pathological escapes cost one linear pass
    assert json_depth(b"[" * 9 + b'"' + b'\\"' * 30_000, 8) == 9


JSON_VALUES = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_depth_scan_agrees_with_the_decoded_document(document):
    def depth(value) -> int:
        if isinstance(value, list):
            return 1 + max((depth(v) for v in value), default=0)
        if isinstance(value, dict):
            return 1 + max((depth(v) for v in value.values()), default=0)
        return 0

    text = json.dumps(document).encode()
    for stop in range(5):  # the contract: "deeper than stop" exactly when the document is
        assert (json_depth(text, stop) > stop) == (depth(document) > stop), (text, stop)


def test_an_unexpected_decoder_failure_is_counted_as_undecodable(monkeypatch):
    import ems.telemetry.validate as validate

    def boom(_text: str) -> None:
        raise MemoryError("no room")

    monkeypatch.setattr(validate._DECODER, "decode", boom)
    result = decode_state(METER, b'{"ts": 1}', now=NOW)
    assert isinstance(result, Rejected) and result.reason is RejectReason.UNDECODABLE
    assert "MemoryError" in result.detail


def _ev(**fields) -> bytes:
    return json.dumps({"ts": TS, "plugged": True, "p_kw": 3.7, **fields}).encode()


@pytest.mark.parametrize(
    "departure, reason",
    [
        ((NOW - timedelta(hours=2)).isoformat(), RejectReason.INCONSISTENT),
        (TS, RejectReason.INCONSISTENT),
        ((NOW + timedelta(days=40)).isoformat(), RejectReason.INCONSISTENT),
        ((NOW + timedelta(minutes=1)).isoformat(), None),
        ((NOW + timedelta(hours=8)).isoformat(), None),
    ],
)
def test_ev_departure_must_follow_the_measurement(departure, reason):
    result = decode_state(EV, _ev(departure=departure), now=NOW)
    if reason is None:
        assert isinstance(result, Accepted)
    else:
        assert isinstance(result, Rejected) and result.reason is reason
        assert "departure" in result.detail


def test_an_unplugged_charger_keeps_its_last_departure():
    # a gateway that repeats the old departure after the car left must not keep it "plugged"
    payload = json.dumps(
        {
            "ts": TS,
            "plugged": False,
            "p_kw": 0.0,
            "departure": (NOW - timedelta(hours=1)).isoformat(),
        }
    ).encode()
    assert isinstance(decode_state(EV, payload, now=NOW), Accepted)


def test_reject_log_is_one_line_per_payload_and_rate_limited_per_reason(caplog):
    clock = [0.0]
    counter = RejectCounter(burst=3, window_s=60.0, monotonic=lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="ems.telemetry.rejects")
    for _ in range(1000):
        counter.record(decode_state(METER, _nested(30_000), now=NOW))
    for _ in range(5):
        counter.record(decode_state(METER, b"not json", now=NOW))
    assert counter.snapshot() == {"too_deep": 1000, "not_json": 5}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6 and all("\n" not in line for line in lines)
    assert sum("too_deep" in line for line in lines) == 3
    assert not any(r.exc_info for r in caplog.records)  # no traceback, ever
    caplog.clear()
    clock[0] = 61.0
    counter.record(decode_state(METER, b"", now=NOW))
    lines = [r.getMessage() for r in caplog.records]
    assert "2 more lines of not_json" in lines[0] and "997 more lines of too_deep" in lines[1]
    assert "empty" in lines[2]
    counter.record_error("store_error", "disk full")
    assert counter.error_snapshot() == {"store_error": 1} and counter.total() == 1006
