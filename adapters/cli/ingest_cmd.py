"""``ems ingest``: run the MQTT → time-series store ingest on its own (no controller).

Useful to start collecting history before operation mode is configured, to check a site's devices
and payloads, and for the ingest benchmark. Settings come from a YAML file (``--config``) with
``mqtt:`` (see :class:`adapters.mqtt.MqttSettings`), optional ``influx:`` (see
:class:`adapters.influx.InfluxSettings`) and ``sqlite_path:``; command-line options override it.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.influx.config import InfluxSettings
from adapters.influx.factory import open_store
from adapters.mqtt import MqttClient, MqttSettings, TelemetryIngest
from adapters.yaml_load import safe_load
from ems.errors import ConfigError, EmsError

log = logging.getLogger(__name__)

#: Seconds without a broker connection before ``ems ingest`` says so (it keeps retrying).
NO_BROKER_WARNING_S = 5.0


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mqtt: MqttSettings
    influx: InfluxSettings | None = None
    sqlite_path: Path | None = None


def _load(path: Path | None, overrides: dict[str, Any]) -> IngestConfig:
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(str(path), "-", f"cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "-"
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(str(path), where, f"not valid YAML: {problem}") from None
        if not isinstance(raw, dict):
            raise ConfigError(
                str(path), "-", "expected a mapping with mqtt:, influx:, sqlite_path:"
            )
    for section, values in overrides.items():
        if isinstance(values, dict):
            raw.setdefault(section, {})
            if raw[section] is None:
                raw[section] = {}
            raw[section].update({k: v for k, v in values.items() if v is not None})
        elif values is not None:
            raw[section] = values
    if "influx" in raw and not raw["influx"]:
        raw.pop("influx")
    try:
        return IngestConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(str(path or "command line"), field, first["msg"]) from exc


@click.command("ingest")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="YAML with mqtt:, influx: and sqlite_path: sections.",
)
@click.option("--community", help="Community id (topic level 2).")
@click.option("--mqtt-host", help="Broker host (default 127.0.0.1).")
@click.option("--mqtt-port", type=int, help="Broker port (default 1883).")
@click.option("--mqtt-user", help="Broker username.")
@click.option("--mqtt-password-env", help="Environment variable holding the broker password.")
@click.option(
    "--mqtt-password-file",
    type=click.Path(path_type=Path),
    help="File holding the broker password.",
)
@click.option("--mqtt-tls/--no-mqtt-tls", default=None, help="Connect with TLS.")
@click.option("--mqtt-ca", type=click.Path(path_type=Path), help="CA bundle for TLS.")
@click.option("--client-id", help="MQTT client id (persistent session key).")
@click.option("--influx-url", help="InfluxDB URL; without it the embedded SQLite store is used.")
@click.option(
    "--influx-version",
    type=click.Choice(["1", "2"]),
    help="1: /write + database; 2: influxdb-client.",
)
@click.option("--influx-database", help="1.x database (and InfluxQL database for reads).")
@click.option("--influx-org", help="2.x organisation.")
@click.option("--influx-bucket", help="2.x bucket.")
@click.option("--influx-token-env", help="Environment variable holding the 2.x token.")
@click.option(
    "--influx-buffer", type=click.Path(path_type=Path), help="Disk buffer file for outages."
)
@click.option(
    "--sqlite",
    "sqlite_path",
    type=click.Path(path_type=Path),
    help="SQLite file (default var/ems.sqlite).",
)
@click.option(
    "--embedded-broker",
    is_flag=True,
    help="Start an embedded MQTT broker (amqtt) and ingest from it.",
)
@click.option(
    "--duration",
    type=float,
    default=0.0,
    help="Stop after this many seconds (0 = until SIGINT/SIGTERM).",
)
def ingest_command(
    config_path: Path | None,
    community: str | None,
    mqtt_host: str | None,
    mqtt_port: int | None,
    mqtt_user: str | None,
    mqtt_password_env: str | None,
    mqtt_password_file: Path | None,
    mqtt_tls: bool | None,
    mqtt_ca: Path | None,
    client_id: str | None,
    influx_url: str | None,
    influx_version: str | None,
    influx_database: str | None,
    influx_org: str | None,
    influx_bucket: str | None,
    influx_token_env: str | None,
    influx_buffer: Path | None,
    sqlite_path: Path | None,
    embedded_broker: bool,
    duration: float,
) -> None:
    """Ingest device telemetry from MQTT into InfluxDB (or SQLite) until stopped."""
    influx = {
        "url": influx_url,
        "version": int(influx_version) if influx_version else None,
        "database": influx_database,
        "org": influx_org,
        "bucket": influx_bucket,
        "token_env": influx_token_env,
        "buffer_path": influx_buffer,
    }
    if all(v is None for v in influx.values()):
        influx = {}
    config = _load(
        config_path,
        {
            "mqtt": {
                "community": community,
                "host": mqtt_host,
                "port": mqtt_port,
                "username": mqtt_user,
                "password_env": mqtt_password_env,
                "password_file": mqtt_password_file,
                "tls": mqtt_tls,
                "ca_file": mqtt_ca,
                "client_id": client_id,
            },
            "influx": influx,
            "sqlite_path": sqlite_path,
        },
    )
    broker = None
    if embedded_broker:
        from adapters.broker import EmbeddedBroker

        broker = EmbeddedBroker(port=config.mqtt.port if mqtt_port else 0).start()
        config.mqtt.host, config.mqtt.port = broker.host, broker.port
        click.echo(f"embedded MQTT broker on {broker.host}:{broker.port}", err=True)
    client = MqttClient(
        config.mqtt
    )  # resolves secrets and TLS files first: config errors before any I/O
    try:
        store = open_store(config.influx, config.sqlite_path)
    except BaseException:
        if broker is not None:
            broker.stop()
        raise
    client.start()
    ingest = TelemetryIngest(client, store).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(
        f"ingesting cer/{config.mqtt.community}/+/+/+/state from {config.mqtt.host}:{config.mqtt.port}"
        f" into {store!r}",
        err=True,
    )
    started = time.monotonic()
    where = f"{config.mqtt.host}:{config.mqtt.port}"
    warned = False
    try:
        while not stop.wait(0.2):
            elapsed = time.monotonic() - started
            if not warned and not client.connected and elapsed >= NO_BROKER_WARNING_S:
                warned = True
                click.echo(
                    f"warning: no connection to the MQTT broker {where} after "
                    f"{NO_BROKER_WARNING_S:g} s; still retrying (check host, port, TLS, credentials)",
                    err=True,
                )
            if duration and elapsed >= duration:
                break
    finally:
        ingest.stop()
        client.stop()
        store.close()
        if broker is not None:
            broker.stop()
    counts = ingest.counters()
    click.echo(
        f"accepted {counts['accepted']}, rejected {counts['rejected']}"
        + "".join(f", {k} {v}" for k, v in counts.items() if k.startswith("rejected_")),
        err=True,
    )
    if client.connects == 0:
        raise EmsError(f"never connected to the MQTT broker {where}: nothing was ingested")


COMMANDS = [ingest_command]
