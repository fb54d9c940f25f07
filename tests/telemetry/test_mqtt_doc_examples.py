"""Every example state payload of docs/mqtt.md is accepted by the validator on its topic (a user
copies them into a gateway), and a typo in one is rejected: the docs and the schemas agree."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems.telemetry.validate import Accepted, Rejected, decode_state

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"


def _examples() -> list[tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    pairs = re.findall(r"`(cer/[^`\s]+/state)`[^\n]*\n```json\n(.*?)```", text, re.S)
    block = re.search(r"```text\n(.*?)```", text, re.S)
    assert block, "docs/mqtt.md lost its multi-energy payload block"
    for line in block.group(1).strip().splitlines():
        payload, _, where = line.partition("//")
        pairs.append((f"cer/opera_pia/hub1/{where.split()[0]}/state", payload))
    return pairs


EXAMPLES = _examples()


def _now(payload: str) -> datetime:
    ts = json.loads(payload)["ts"]
    t = (
        datetime.fromtimestamp(ts, UTC)
        if isinstance(ts, (int, float))
        else datetime.fromisoformat(ts.replace("Z", "+00:00"))
    )
    return t + timedelta(seconds=5)


def test_the_doc_shows_every_device_kind():
    kinds = {topic.split("/")[3] for topic, _ in EXAMPLES}
    assert len(EXAMPLES) >= 16 and {"meter", "battery", "ev_charger", "heat_pump"} <= kinds


@pytest.mark.parametrize(("topic", "payload"), EXAMPLES, ids=[t for t, _ in EXAMPLES])
def test_doc_example_is_accepted_and_a_typo_is_not(topic, payload):
    got = decode_state(topic, payload.encode(), now=_now(payload), community="opera_pia")
    assert isinstance(got, Accepted), got
    data = json.loads(payload)
    field = next(k for k in data if k != "ts")
    data[field + "x"] = data.pop(field)  # the doc says unknown fields are errors
    typo = decode_state(topic, json.dumps(data).encode(), now=_now(payload), community="opera_pia")
    assert isinstance(typo, Rejected), typo
