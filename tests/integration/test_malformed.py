"""A table of malformed payloads: each is rejected with its reason, the client keeps running, the
valid messages around them still arrive, and the counters reach the status topic and the store."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from adapters.sqlite_store import SQLiteStore
from ems.ports.timeseries import SeriesQuery
from ems.telemetry.validate import DeviceRegistry, Rejected
from tests.conftest import unique
from tests.integration.helpers import (
    Pipeline,
    Publisher,
    clear_retained,
    forget_session,
    wait_until,
)

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)
TS = (NOW - timedelta(seconds=30)).isoformat()

# (case id, device kind, payload bytes, expected reason)
MALFORMED = [
    ("not_utf8", "battery", b'\xff\xfe{"p_kw": 1}', "not_utf8"),
    ("not_json", "battery", b"{p_kw: 1,", "not_json"),
    ("empty", "battery", b"", "empty"),
    ("json_array", "battery", b"[1, 2, 3]", "not_object"),
    ("json_number", "battery", b"42", "not_object"),
    ("missing_ts", "battery", json.dumps({"p_kw": 1.0, "soc_pct": 50}).encode(), "missing_field"),
    ("missing_soc", "battery", json.dumps({"ts": TS, "p_kw": 1.0}).encode(), "missing_field"),
    (
        "number_as_string",
        "battery",
        json.dumps({"ts": TS, "p_kw": "1.0", "soc_pct": 50}).encode(),
        "wrong_type",
    ),
    (
        "bool_as_number",
        "ev_charger",
        json.dumps({"ts": TS, "plugged": 1, "p_kw": 0.0}).encode(),
        "wrong_type",
    ),
    (
        "number_as_bool",
        "battery",
        json.dumps({"ts": TS, "p_kw": True, "soc_pct": 50}).encode(),
        "wrong_type",
    ),
    (
        "soc_above_100",
        "battery",
        json.dumps({"ts": TS, "p_kw": 1.0, "soc_pct": 140}).encode(),
        "out_of_range",
    ),
    ("negative_pv", "pv", json.dumps({"ts": TS, "p_kw": -5.0}).encode(), "out_of_range"),
    (
        "absurd_power",
        "meter",
        json.dumps({"ts": TS, "import_p_kw": 1e9, "export_p_kw": 0}).encode(),
        "out_of_range",
    ),
    ("nan", "pv", b'{"ts": "' + TS.encode() + b'", "p_kw": NaN}', "non_finite"),
    ("infinity", "pv", b'{"ts": "' + TS.encode() + b'", "p_kw": Infinity}', "non_finite"),
    (
        "future_ts",
        "pv",
        json.dumps({"ts": (NOW + timedelta(days=1)).isoformat(), "p_kw": 1.0}).encode(),
        "future_timestamp",
    ),
    (
        "stale_ts",
        "pv",
        json.dumps({"ts": "2001-01-01T00:00:00Z", "p_kw": 1.0}).encode(),
        "stale_timestamp",
    ),
    ("garbage_ts", "pv", json.dumps({"ts": "yesterday", "p_kw": 1.0}).encode(), "bad_timestamp"),
    (
        "naive_ts",
        "pv",
        json.dumps({"ts": "2026-01-01T12:00:00", "p_kw": 1.0}).encode(),
        "bad_timestamp",
    ),
    (
        "unknown_field",
        "pv",
        json.dumps({"ts": TS, "p_kw": 1.0, "pkw": 2}).encode(),
        "unknown_field",
    ),
    (
        "bad_enum",
        "heat_pump",
        json.dumps({"ts": TS, "mode": "turbo", "p_kw": 3.0}).encode(),
        "bad_value",
    ),
    (
        "unplugged_charging",
        "ev_charger",
        json.dumps({"ts": TS, "plugged": False, "p_kw": 7.0}).encode(),
        "inconsistent",
    ),
    (
        "above_rated",
        "battery",
        json.dumps({"ts": TS, "p_kw": 80.0, "soc_pct": 50}).encode(),
        "above_rated",
    ),
    (
        "too_large",
        "pv",
        b'{"ts": "' + TS.encode() + b'", "p_kw": 1.0, "pad": "' + b"x" * 70_000 + b'"}',
        "too_large",
    ),
    # nested 100,000 deep (200 kB): refused on size before any decoding
    ("nested_100k", "pv", b"[" * 100_000 + b"]" * 100_000, "too_large"),
    # nested 30,000 deep within 64 kB: the nesting scan refuses it (json would recurse)
    (
        "nested_30k",
        "pv",
        b'{"ts": "' + TS.encode() + b'", "p_kw": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        "too_deep",
    ),
    (
        "ev_leaves_before_ts",
        "ev_charger",
        json.dumps(
            {
                "ts": TS,
                "plugged": True,
                "p_kw": 3.0,
                "departure": (NOW - timedelta(hours=1)).isoformat(),
            }
        ).encode(),
        "inconsistent",
    ),
]
# topic-level cases: (case id, topic suffix after cer/<community>/, expected reason)
BAD_TOPICS = [
    ("unknown_kind", "hub1/toaster/{dev}/state", "unknown_kind"),
    ("unknown_device", "hub1/battery/ghost_{dev}/state", "unknown_device"),
]
VALID = {"ts": TS, "p_kw": 2.0, "soc_pct": 55.0}


def test_malformed_payloads_rejected_with_reason(mqtt_broker, tmp_path, caplog):
    host, port = mqtt_broker
    community = unique("bad")
    registry = DeviceRegistry()
    devices = [case for case, *_ in MALFORMED] + [case for case, *_ in BAD_TOPICS]
    for case, kind, _payload, _reason in MALFORMED:
        registry.add("hub1", kind, case, rated_p_kw=20.0 if kind == "battery" else None)
    for i in range(len(devices) + 1):
        registry.add("hub1", "battery", f"ok{i}", rated_p_kw=20.0)
    registry.add("hub1", "toaster", "unknown_kind")
    rejections: list[Rejected] = []
    store = SQLiteStore(tmp_path / "ems.sqlite")
    ingest_id = unique("ingest-")
    pipeline = Pipeline.start(
        host,
        port,
        community,
        store,
        client_id=ingest_id,
        registry=registry,
        on_reject=rejections.append,
    )
    publisher = Publisher(host, port, unique("pub-"))
    try:
        # valid, bad, valid, bad, ..., valid
        publisher.publish(f"cer/{community}/hub1/battery/ok0/state", VALID)
        for i, (case, kind, payload, _reason) in enumerate(MALFORMED, start=1):
            publisher.publish(f"cer/{community}/hub1/{kind}/{case}/state", payload)
            publisher.publish(f"cer/{community}/hub1/battery/ok{i}/state", VALID)
        for j, (case, suffix, _reason) in enumerate(BAD_TOPICS, start=len(MALFORMED) + 1):
            publisher.publish(f"cer/{community}/" + suffix.format(dev=case), VALID)
            publisher.publish(f"cer/{community}/hub1/battery/ok{j}/state", VALID)
        n_valid = len(devices) + 1
        n_bad = len(MALFORMED) + len(BAD_TOPICS)
        assert wait_until(
            lambda: pipeline.ingest.accepted >= n_valid and len(rejections) >= n_bad, 20
        ), (pipeline.ingest.counters(), [str(r) for r in rejections])

        by_device = {r.topic_text.split("/")[4]: r for r in rejections}
        for case, _kind, _payload, reason in MALFORMED:
            assert by_device[case].reason.value == reason, f"{case}: {by_device[case]}"
            assert by_device[case].detail  # a human-readable reason
        for case, _suffix, reason in BAD_TOPICS:
            key = case if reason != "unknown_device" else f"ghost_{case}"
            assert by_device[key].reason.value == reason, f"{case}: {by_device[key]}"
        assert len(rejections) == n_bad

        # every valid message around them arrived
        assert store.flush(10)
        samples = store.read(
            SeriesQuery("telemetry", "soc_pct", 0, 2**62, {"community": community})
        )
        assert sorted(s.tags["device"] for s in samples) == sorted(f"ok{i}" for i in range(n_valid))

        # counters: in the status (retained) and in the store
        counts = pipeline.ingest.report(wait_s=5)
        assert counts["rejected"] == n_bad and counts["accepted"] == n_valid
        assert not any("internal_error" in k for k in counts), counts
        # one line per rejected payload, never a traceback
        assert not any(r.exc_info for r in caplog.records)
        out = subprocess.run(
            [
                "mosquitto_sub",
                "-h",
                host,
                "-p",
                str(port),
                "-t",
                f"cer/{community}/ems/status",
                "-C",
                "1",
                "-W",
                "5",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        status = json.loads(out.stdout)
        assert status["state"] == "online"
        assert status["ingest"]["rejected_out_of_range"] == 3
        assert status["ingest"]["rejected_wrong_type"] == 3
        assert store.flush(10)
        stored = store.read(SeriesQuery("ingest", "rejected", 0, 2**62, {"community": community}))
        assert stored and stored[-1].value == n_bad
        stored_nan = store.read(
            SeriesQuery("ingest", "rejected_non_finite", 0, 2**62, {"community": community})
        )
        assert stored_nan[-1].value == 2
    finally:
        publisher.close()
        pipeline.stop()
        store.close()
        forget_session(host, port, ingest_id)
        clear_retained(host, port, [f"cer/{community}/ems/status"])
