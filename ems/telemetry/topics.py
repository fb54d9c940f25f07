"""The MQTT topic scheme of SPEC §5.

- device state:     ``cer/<community>/<hub>/<device_kind>/<device_id>/state``
- device setpoint:  ``cer/<community>/<hub>/<device_kind>/<device_id>/setpoint``
- job announcement: ``cer/<community>/<hub>/ai_cluster/<cluster_id>/job`` (one message per batch
  job and update: queued, running with progress, done, cancelled)
- EMS status:       ``cer/<community>/ems/status``

Topic segments are restricted to ``[A-Za-z0-9_.-]`` (1–64 characters) so that they are safe as
MQTT levels, InfluxDB tag values and Grafana template variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

ROOT = "cer"
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

Channel = Literal["state", "setpoint", "job"]


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed device topic."""

    community: str
    hub: str
    kind: str
    device: str
    channel: Channel

    def __str__(self) -> str:
        return f"{ROOT}/{self.community}/{self.hub}/{self.kind}/{self.device}/{self.channel}"


class TopicError(ValueError):
    """A topic that does not follow the scheme."""


def check_segment(value: str, what: str) -> str:
    """Return ``value`` if it is a valid topic segment, else raise :class:`TopicError`."""
    if not isinstance(value, str) or not _SEGMENT.match(value):
        raise TopicError(f"{what} {value!r} is not 1-64 characters of [A-Za-z0-9_.-]")
    return value


@lru_cache(maxsize=4096)
def parse_topic(topic: str) -> Topic:
    """Parse a device state/setpoint topic; raise :class:`TopicError` on anything else.

    Cached: a site has a bounded set of device topics (errors are not cached)."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != ROOT:
        raise TopicError(
            f"topic {topic!r} is not cer/<community>/<hub>/<kind>/<id>/state|setpoint|job"
        )
    _, community, hub, kind, device, channel = parts
    for value, what in (
        (community, "community"),
        (hub, "hub"),
        (kind, "device kind"),
        (device, "device id"),
    ):
        check_segment(value, what)
    if channel not in ("state", "setpoint", "job"):
        raise TopicError(
            f"topic {topic!r} ends in {channel!r}, expected 'state', 'setpoint' or 'job'"
        )
    return Topic(community, hub, kind, device, channel)  # type: ignore[arg-type]


def state_topic(community: str, hub: str, kind: str, device: str) -> str:
    """Topic on which a device publishes its state."""
    return str(
        Topic(
            check_segment(community, "community"),
            check_segment(hub, "hub"),
            check_segment(kind, "device kind"),
            check_segment(device, "device id"),
            "state",
        )
    )


def setpoint_topic(community: str, hub: str, kind: str, device: str) -> str:
    """Topic on which the EMS publishes a device's setpoint (retained)."""
    return str(
        Topic(
            check_segment(community, "community"),
            check_segment(hub, "hub"),
            check_segment(kind, "device kind"),
            check_segment(device, "device id"),
            "setpoint",
        )
    )


def job_topic(community: str, hub: str, kind: str, device: str) -> str:
    """Topic on which a device (an AI cluster's scheduler) announces its batch jobs."""
    return str(
        Topic(
            check_segment(community, "community"),
            check_segment(hub, "hub"),
            check_segment(kind, "device kind"),
            check_segment(device, "device id"),
            "job",
        )
    )


def status_topic(community: str) -> str:
    """The EMS's own status topic (online/offline via last will, counters, plan summary)."""
    return f"{ROOT}/{check_segment(community, 'community')}/ems/status"


def state_subscription(community: str) -> str:
    """Wildcard subscription matching every device state of a community."""
    return f"{ROOT}/{check_segment(community, 'community')}/+/+/+/state"


def job_subscription(community: str) -> str:
    """Wildcard subscription matching every job announcement of a community."""
    return f"{ROOT}/{check_segment(community, 'community')}/+/+/+/job"
