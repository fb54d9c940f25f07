# Sourced by .ci/run: make sure Mosquitto, InfluxDB 1.x and VictoriaMetrics are installed and
# answering on loopback, and export where they are for the integration tests:
#   EMS_TEST_MQTT_HOST / EMS_TEST_MQTT_PORT, EMS_TEST_INFLUX_URL, EMS_TEST_VM_URL
# The system Mosquitto on 127.0.0.1:1883 is used when it answers; every other server is started
# here with its own config and data directory under a temp dir and stopped when the shell exits.
# Tests that stop/restart a server (broker restart, InfluxDB outage) start private copies of
# their own from the same binaries.

_ems_log() { echo "[services] $*" >&2; }

_ems_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

_ems_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

_ems_wait_http() {  # url seconds
  local url=$1 deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

_ems_wait_tcp() {  # port seconds
  local port=$1 deadline=$((SECONDS + $2))
  until _ems_port_open "$port"; do
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- install what is missing
_ems_missing=()
command -v influxd >/dev/null 2>&1 || _ems_missing+=(influxdb)
command -v victoria-metrics >/dev/null 2>&1 || _ems_missing+=(victoria-metrics)
{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || _ems_missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || _ems_missing+=(mosquitto-clients)
command -v openssl >/dev/null 2>&1 || _ems_missing+=(openssl)  # TLS listener tests (issue 16)
command -v curl >/dev/null 2>&1 || _ems_missing+=(curl)
command -v systemd-analyze >/dev/null 2>&1 || _ems_missing+=(systemd)  # verifies deploy/systemd's unit
if [ ${#_ems_missing[@]} -gt 0 ]; then
  _ems_log "installing: ${_ems_missing[*]}"
  _ems_sudo=""
  if [ "$(id -u)" -ne 0 ]; then _ems_sudo="sudo"; fi
  $_ems_sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $_ems_sudo apt-get install -y -qq --no-install-recommends "${_ems_missing[@]}"
  # Debian starts the packaged services on install; ours use their own ports and dirs, so that is harmless.
fi
export PATH="$PATH:/usr/sbin"

# ---------------------------------------------------------------- headless Chromium (issue 13)
# tests/design/test_report_html.py opens the design report in a real headless browser
if ! command -v chromium >/dev/null 2>&1; then
  _ems_log "installing: chromium"
  _ems_sudo_c=""
  if [ "$(id -u)" -ne 0 ]; then _ems_sudo_c="sudo"; fi
  $_ems_sudo_c apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $_ems_sudo_c apt-get install -y -qq --no-install-recommends chromium fonts-liberation
fi

# ---------------------------------------------------------------- device protocols (issue 12)
# tests/devices: OCPP charge points over real websockets with TLS (openssl makes the self-signed
# certificate) and a real pymodbus TCP server; ocpp, websockets and pymodbus come from pyproject.
if ! command -v openssl >/dev/null 2>&1; then
  _ems_log "installing: openssl"
  _ems_sudo_d=""
  if [ "$(id -u)" -ne 0 ]; then _ems_sudo_d="sudo"; fi
  $_ems_sudo_d apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $_ems_sudo_d apt-get install -y -qq --no-install-recommends openssl
fi

EMS_SERVICES_DIR=$(mktemp -d -t cer-ems-services.XXXXXX)
export EMS_SERVICES_DIR
_ems_pids=()
_ems_cleanup() {
  for pid in "${_ems_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${_ems_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$EMS_SERVICES_DIR"
}
trap _ems_cleanup EXIT

# ---------------------------------------------------------------- Mosquitto
if _ems_port_open 1883; then
  _ems_log "using the Mosquitto already answering on 127.0.0.1:1883"
  export EMS_TEST_MQTT_HOST=127.0.0.1 EMS_TEST_MQTT_PORT=1883
else
  _ems_mqtt_port=$(_ems_free_port)
  mkdir -p "$EMS_SERVICES_DIR/mosquitto"
  cat > "$EMS_SERVICES_DIR/mosquitto/mosquitto.conf" <<CONF
listener $_ems_mqtt_port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $EMS_SERVICES_DIR/mosquitto/
max_queued_messages 1000000
user $(id -un)
log_dest file $EMS_SERVICES_DIR/mosquitto/mosquitto.log
CONF
  "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$EMS_SERVICES_DIR/mosquitto/mosquitto.conf" &
  _ems_pids+=($!)
  _ems_wait_tcp "$_ems_mqtt_port" 20 || { _ems_log "mosquitto did not start"; cat "$EMS_SERVICES_DIR/mosquitto/mosquitto.log" >&2; return 1; }
  _ems_log "started Mosquitto on 127.0.0.1:$_ems_mqtt_port"
  export EMS_TEST_MQTT_HOST=127.0.0.1 EMS_TEST_MQTT_PORT=$_ems_mqtt_port
fi

# ---------------------------------------------------------------- InfluxDB 1.x
_ems_influx_port=$(_ems_free_port)
_ems_d="$EMS_SERVICES_DIR/influxdb"
mkdir -p "$_ems_d"
cat > "$_ems_d/influxdb.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$(_ems_free_port)"
[meta]
  dir = "$_ems_d/meta"
[data]
  dir = "$_ems_d/data"
  wal-dir = "$_ems_d/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$_ems_influx_port"
  log-enabled = false
[continuous_queries]
  enabled = false
CONF
influxd run -config "$_ems_d/influxdb.conf" > "$_ems_d/influxd.log" 2>&1 &
_ems_pids+=($!)
_ems_wait_http "http://127.0.0.1:$_ems_influx_port/ping" 30 || { _ems_log "influxd did not start"; cat "$_ems_d/influxd.log" >&2; return 1; }
_ems_log "started InfluxDB $(influxd version 2>/dev/null | head -1) on 127.0.0.1:$_ems_influx_port"
export EMS_TEST_INFLUX_URL="http://127.0.0.1:$_ems_influx_port"

# ---------------------------------------------------------------- VictoriaMetrics
_ems_vm_port=$(_ems_free_port)
victoria-metrics -httpListenAddr="127.0.0.1:$_ems_vm_port" -storageDataPath="$EMS_SERVICES_DIR/vm" \
  -retentionPeriod=100y -search.latencyOffset=0s -loggerLevel=ERROR > "$EMS_SERVICES_DIR/vm.log" 2>&1 &
_ems_pids+=($!)
_ems_wait_http "http://127.0.0.1:$_ems_vm_port/health" 30 || { _ems_log "victoria-metrics did not start"; cat "$EMS_SERVICES_DIR/vm.log" >&2; return 1; }
_ems_log "started VictoriaMetrics on 127.0.0.1:$_ems_vm_port"
export EMS_TEST_VM_URL="http://127.0.0.1:$_ems_vm_port"
