"""Issue 16 E: the shipped `deploy/mosquitto/mosquitto.conf`, run for real (paths and ports mapped
to the test's folders, its TLS listener included): a gateway with its own password cannot take
over the EMS's session by sending the EMS's client id; a packet above the limit is refused by the
broker and never reaches the EMS; the session and the messages queued for the EMS survive a
broker killed with SIGKILL right after they arrived (saved on every change); a gateway publishes
over TLS and the EMS takes it."""

from __future__ import annotations

import getpass
import json
import re
import shutil
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adapters.mqtt import MqttClient, MqttSettings, TelemetryIngest
from adapters.sqlite_store import SQLiteStore
from tests.conftest import server_missing
from tests.deploy.test_compose_broker import _pki
from tests.integration import servers
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy/mosquitto/mosquitto.conf"
PASSWORDS = {"ems": "ems-pw-1", "hub1": "hub1-pw-2", "monitor": "mon-pw-3"}
COMMUNITY = "opera_pia"


@pytest.fixture
def shipped_broker(tmp_path: Path):
    for tool in ("openssl", "mosquitto_passwd"):
        if shutil.which(tool) is None:
            server_missing(f"{tool} not installed")
    binary = servers.find_binary("mosquitto", "/usr/sbin/mosquitto")
    if binary is None:
        server_missing("mosquitto not installed")
    etc = tmp_path / "etc"
    (etc / "certs").mkdir(parents=True)
    _pki(etc / "certs")
    passwd = etc / "passwd"
    passwd.touch()
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    passwd.chmod(0o600)
    shutil.copy(ROOT / "deploy/mosquitto/acl", etc / "cer-ems.acl")
    plain, tls = servers.free_port(), servers.free_port()
    conf = CONF.read_text()
    for original, mapped in (
        ("/etc/mosquitto/passwd", etc / "passwd"),
        ("/etc/mosquitto/cer-ems.acl", etc / "cer-ems.acl"),
        ("/etc/mosquitto/certs", etc / "certs"),
        ("/var/lib/mosquitto/", f"{tmp_path}/data/"),
    ):
        assert str(original) in conf, original
        conf = conf.replace(str(original), str(mapped))
    conf = re.sub(r"^listener 1883 127.0.0.1$", f"listener {plain} 127.0.0.1", conf, flags=re.M)
    conf = re.sub(r"^listener 8883$", f"listener {tls} 127.0.0.1", conf, flags=re.M)
    conf = conf.replace("log_dest syslog", "log_dest stdout")
    (tmp_path / "data").mkdir()
    (tmp_path / "mosquitto.conf").write_text(conf + f"\nuser {getpass.getuser()}\n")
    proc = servers.ServerProcess(
        "mosquitto", [binary, "-c", str(tmp_path / "mosquitto.conf")], tmp_path, plain, "tcp"
    )
    try:
        proc.start()
    except RuntimeError as exc:
        server_missing(f"the shipped mosquitto.conf does not start: {exc}")
    yield proc, plain, tls, etc
    proc.stop()


def _settings(port: int, user: str, client_id: str, **kw) -> MqttSettings:
    return MqttSettings(
        community=COMMUNITY,
        host="127.0.0.1",
        port=port,
        username=user,
        password=PASSWORDS[user],
        client_id=client_id,
        reconnect_min_s=1,
        reconnect_max_s=1,
        **kw,
    )


def _state(p_kw: float) -> str:
    return json.dumps({"ts": datetime.now(timezone.utc).isoformat(), "p_kw": p_kw})


TOPIC = f"cer/{COMMUNITY}/hub1/pv/pv_mono/state"


def test_tls_gateway_client_id_takeover_and_oversize_packet(shipped_broker, tmp_path):
    proc, plain, tls, etc = shipped_broker
    store = SQLiteStore(tmp_path / "s.sqlite")
    ems = MqttClient(_settings(plain, "ems", f"cer-ems-{COMMUNITY}")).start()
    ingest = TelemetryIngest(ems, store).start()
    try:
        assert ems.wait_subscribed(10)
        # a hub gateway over the TLS listener, verifying the broker's certificate
        gw = MqttClient(
            _settings(tls, "hub1", "gw-hub1", tls=True, ca_file=etc / "certs/ca.crt"),
            last_will=False,
        ).start()
        assert gw.wait_connected(10)
        gw.publish(TOPIC, _state(1.0), qos=1).wait_for_publish(5)
        assert wait_until(lambda: ingest.accepted == 1, 10)
        gw.stop(announce_offline=False)

        # hub1's own password, the EMS's client id: the broker uses the username as client id,
        # so the EMS's connection (and its persistent session) is untouched
        intruder = MqttClient(
            _settings(plain, "hub1", f"cer-ems-{COMMUNITY}"), last_will=False
        ).start()
        assert intruder.wait_connected(10)
        intruder.publish(TOPIC, _state(2.0), qos=1).wait_for_publish(5)
        assert wait_until(lambda: ingest.accepted == 2, 10)
        time.sleep(0.5)
        assert ems.connected and ems.disconnects == 0 and ems.connects == 1
        intruder.stop(announce_offline=False)

        # 1 MB packet: the broker disconnects the sender, nothing reaches the EMS
        big = MqttClient(_settings(plain, "hub1", "gw-big"), last_will=False).start()
        assert big.wait_connected(10)
        big.publish(TOPIC, b'{"ts": 1, "pad": "' + b"x" * 1_000_000 + b'"}', qos=1)
        assert wait_until(lambda: big.disconnects >= 1, 10)
        big.stop(announce_offline=False)
        log = proc.tail_log(5000)
        time.sleep(0.5)
        assert ingest.accepted == 2 and ingest.counters()["rejected"] == 0, ingest.counters()
        assert ems.connected and ems.disconnects == 0
        # a payload between the EMS's limit (64 KiB) and the broker's (66 KiB) is the EMS's:
        # counted as too_large
        mid = MqttClient(_settings(plain, "hub1", "gw-mid"), last_will=False).start()
        assert mid.wait_connected(10)
        mid.publish(TOPIC, b'{"pad": "' + b"x" * 66_000 + b'"}', qos=1).wait_for_publish(5)
        assert wait_until(lambda: ingest.counters().get("rejected_too_large") == 1, 10), log
        mid.stop(announce_offline=False)
    finally:
        ingest.stop()
        ems.stop()
        store.close()


def test_session_and_queue_survive_a_broker_sigkill_right_after(shipped_broker, tmp_path):
    """Saved on every change: the EMS's session and three messages queued for it while it was
    away are on disk a moment after they arrived, so a SIGKILLed broker still delivers them."""
    proc, plain, _tls, _etc = shipped_broker
    store = SQLiteStore(tmp_path / "s.sqlite")
    ems = MqttClient(_settings(plain, "ems", "cer-ems")).start()
    ingest = TelemetryIngest(ems, store).start()
    assert ems.wait_subscribed(10)
    ingest.stop()
    ems.stop()  # the broker keeps the persistent session and queues for it
    gw = MqttClient(_settings(plain, "hub1", "gw"), last_will=False).start()
    assert gw.wait_connected(10)
    for i in range(3):
        gw.publish(TOPIC, _state(float(i)), qos=1).wait_for_publish(5)
    gw.stop(announce_offline=False)
    time.sleep(0.3)  # far less than the 60 s autosave the broker had before
    proc.stop(sig=signal.SIGKILL)
    proc.start()
    ems = MqttClient(_settings(plain, "ems", "cer-ems")).start()
    ingest = TelemetryIngest(ems, store).start()
    try:
        assert wait_until(lambda: ingest.accepted == 3, 15), ingest.counters()
    finally:
        ingest.stop()
        ems.stop()
        store.close()


def test_reconnect_backoff_is_capped_at_10_s():
    settings = MqttSettings(community="c")
    assert settings.reconnect_max_s == 10
    with pytest.raises(ValueError, match="reconnect_max_s"):
        MqttSettings(community="c", reconnect_max_s=60)
    client = MqttClient(settings)
    assert client._client._reconnect_max_delay == 10  # what paho's loop waits at most


def test_reconnect_after_a_long_broker_outage_within_the_cap(private_mosquitto):
    """The EMS's client with its default settings (what ``ems run`` uses): the broker is down
    for 17 s, long enough for the back-off to reach its cap (waits 1, 2, 4, 8, then 10 s); once
    the broker is back the client is connected again within the cap (10 s) plus a margin. With
    the old cap of 60 s the next try would come 16 s after the one at 15 s, 14 s after the
    restart."""
    client = MqttClient(MqttSettings(community="backoff", port=private_mosquitto.port)).start()
    try:
        assert client.wait_connected(10)
        private_mosquitto.stop()
        assert wait_until(lambda: not client.connected, 5)
        time.sleep(17.0)
        assert not client.connected
        private_mosquitto.start()
        back = time.monotonic()
        assert client.wait_connected(12.0), "not reconnected within 10 s (+2 s margin)"
        assert time.monotonic() - back <= 12.0
        assert client.connects == 2
    finally:
        client.stop(announce_offline=False)
