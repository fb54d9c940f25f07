#!/bin/sh
# Creates ./secrets/ with random passwords, the Mosquitto password file (users ems, monitor and
# one per hub gateway, and `market` for a price feed: pass them as arguments) and the InfluxDB token. Never commit ./secrets.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets certs
gen() { [ -s "secrets/$1" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "secrets/$1"; }
for s in mqtt_ems_password mqtt_monitor_password influx_admin_password influx_token grafana_admin_password; do gen "$s"; done
printf 'Token %s' "$(cat secrets/influx_token)" > secrets/influx_auth_header
: > secrets/mosquitto_passwd
# mosquitto_passwd from the host (Debian: mosquitto) if there is one, else from the broker's image
if command -v mosquitto_passwd >/dev/null 2>&1; then
  passwd() { mosquitto_passwd -b secrets/mosquitto_passwd "$1" "$(cat "secrets/$2")"; }
else
  passwd() { docker run --rm -v "$PWD/secrets:/s" eclipse-mosquitto:2 sh -c "mosquitto_passwd -b /s/mosquitto_passwd '$1' \"\$(cat /s/$2)\""; }
fi
passwd ems mqtt_ems_password
passwd monitor mqtt_monitor_password
for hub in "$@"; do
  gen "mqtt_${hub}_password"
  passwd "$hub" "mqtt_${hub}_password"
done
chmod 644 secrets/mosquitto_passwd  # read by the broker's own user inside its container
echo "secrets in $(pwd)/secrets; put the broker's TLS certificate in $(pwd)/certs (ca.crt, server.crt, server.key)"
