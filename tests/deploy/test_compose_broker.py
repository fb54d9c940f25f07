"""The compose stack's broker, run for real without docker: `deploy/compose/init-secrets.sh`
makes the secrets, the real Mosquitto runs `deploy/compose/mosquitto.conf` (container paths
mapped to the test's folders, ports to free ones) with the repository's ACL, and the EMS connects
with the `mqtt:` section of `deploy/site.example.yaml` (password file = the generated secret),
while a hub gateway publishes over TLS with its own generated password."""

from __future__ import annotations

import getpass
import json
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from adapters.mqtt import MqttClient, MqttSettings, TelemetryIngest
from adapters.sqlite_store import SQLiteStore
from tests.conftest import server_missing
from tests.integration import servers
from tests.integration.helpers import make_test_pki, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy/compose"


def _pki(pki: Path) -> None:
    make_test_pki(pki, "cer-ems compose test CA")


@pytest.fixture
def compose_broker(tmp_path: Path):
    for tool in ("openssl", "mosquitto_passwd"):
        if shutil.which(tool) is None:
            server_missing(f"{tool} not installed")
    binary = servers.find_binary("mosquitto", "/usr/sbin/mosquitto")
    if binary is None:
        server_missing("mosquitto not installed")
    stack = tmp_path / "compose"
    stack.mkdir()
    shutil.copy(COMPOSE / "init-secrets.sh", stack / "init-secrets.sh")
    out = subprocess.run(
        ["sh", str(stack / "init-secrets.sh"), "hub1", "market"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    _pki(stack / "certs")
    plain, tls = servers.free_port(), servers.free_port()
    conf = (COMPOSE / "mosquitto.conf").read_text()
    for container, host in (
        ("/mosquitto/config/passwd", stack / "secrets/mosquitto_passwd"),
        ("/mosquitto/config/cer-ems.acl", ROOT / "deploy/mosquitto/acl"),
        ("/mosquitto/config/certs", stack / "certs"),
        ("/mosquitto/data/", f"{stack}/data/"),
    ):
        assert container in conf, container
        conf = conf.replace(container, str(host))
    conf = re.sub(r"^listener 1883$", f"listener {plain} 127.0.0.1", conf, flags=re.M)
    conf = re.sub(r"^listener 8883$", f"listener {tls} 127.0.0.1", conf, flags=re.M)
    (stack / "data").mkdir()
    (stack / "mosquitto.conf").write_text(conf + f"\nuser {getpass.getuser()}\n")
    proc = servers.ServerProcess(
        "mosquitto", [binary, "-c", str(stack / "mosquitto.conf")], stack, plain, "tcp"
    )
    try:
        proc.start()
    except RuntimeError as exc:
        server_missing(f"the compose mosquitto.conf does not start: {exc}")
    yield stack, plain, tls
    proc.stop()


def test_compose_broker_with_generated_secrets(compose_broker, tmp_path: Path) -> None:
    stack, plain, tls = compose_broker
    secrets = stack / "secrets"
    assert (
        secrets / "influx_auth_header"
    ).read_text() == f"Token {(secrets / 'influx_token').read_text().strip()}"
    users = [line.split(":")[0] for line in (secrets / "mosquitto_passwd").read_text().splitlines()]
    assert users == ["ems", "monitor", "hub1", "market"]
    for name in ("mqtt_ems_password", "influx_token", "grafana_admin_password"):
        assert (secrets / name).stat().st_mode & 0o077 == 0, (
            name
        )  # secrets readable by their owner only

    # the EMS as the compose `ems` service runs it: site.example.yaml's mqtt section, secret file mapped
    mqtt = yaml.safe_load((ROOT / "deploy/site.example.yaml").read_text())["mqtt"]
    assert mqtt["password_file"] == "/run/secrets/mqtt_ems_password" and mqtt["host"] == "mosquitto"
    settings = MqttSettings(
        community="opera_pia",
        **{
            **mqtt,
            "host": "127.0.0.1",
            "port": plain,
            "password_file": secrets / "mqtt_ems_password",
        },
    )
    store = SQLiteStore(tmp_path / "s.sqlite")
    ems = MqttClient(settings).start()
    ingest = TelemetryIngest(ems, store).start()
    try:
        assert ems.wait_subscribed(10)
        # hub1's gateway over TLS (port 8883 in the stack) with its generated password
        gateway = MqttClient(
            MqttSettings(
                community="opera_pia",
                host="localhost",
                port=tls,
                username="hub1",
                password_file=secrets / "mqtt_hub1_password",
                tls=True,
                ca_file=stack / "certs/ca.crt",
                client_id="gw-hub1",
            ),
            last_will=False,
        ).start()
        assert gateway.wait_connected(10)
        ts = datetime.now(timezone.utc).isoformat()
        gateway.publish(
            "cer/opera_pia/hub1/pv/pv_mono/state", json.dumps({"ts": ts, "p_kw": 4.2}), qos=1
        ).wait_for_publish(5)
        assert wait_until(lambda: ingest.accepted == 1, 10)
        gateway.stop(announce_offline=False)
        # a wrong password and anonymous access are refused
        for user, pw in (("hub1", "not-the-password"), (None, None)):
            pw_file = tmp_path / "wrong"
            pw_file.write_text(pw or "")
            bad = MqttClient(
                MqttSettings(
                    community="opera_pia",
                    host="127.0.0.1",
                    port=plain,
                    username=user,
                    password_file=pw_file if user else None,
                    client_id=f"bad-{user}",
                ),
                last_will=False,
            ).start()
            try:
                assert not bad.wait_connected(2)
            finally:
                bad.stop(announce_offline=False)
    finally:
        ingest.stop()
        ems.stop()
        store.close()
