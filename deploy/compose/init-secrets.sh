#!/bin/sh
# Creates ./secrets/ with random passwords, the Mosquitto password file (users ems, monitor and
# one per hub gateway: pass hub ids as arguments) and the InfluxDB token. Never commit ./secrets.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets certs
gen() { [ -s "secrets/$1" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "secrets/$1"; }
for s in mqtt_ems_password mqtt_monitor_password influx_admin_password influx_token grafana_admin_password; do gen "$s"; done
printf 'Token %s' "$(cat secrets/influx_token)" > secrets/influx_auth_header
: > secrets/mosquitto_passwd
docker run --rm -v "$PWD/secrets:/s" eclipse-mosquitto:2 sh -c "
  mosquitto_passwd -b /s/mosquitto_passwd ems \"\$(cat /s/mqtt_ems_password)\" &&
  mosquitto_passwd -b /s/mosquitto_passwd monitor \"\$(cat /s/mqtt_monitor_password)\""
for hub in "$@"; do
  gen "mqtt_${hub}_password"
  docker run --rm -v "$PWD/secrets:/s" eclipse-mosquitto:2 mosquitto_passwd -b /s/mosquitto_passwd "$hub" "$(cat secrets/mqtt_${hub}_password)"
done
echo "secrets in $(pwd)/secrets; put the broker's TLS certificate in $(pwd)/certs (ca.crt, server.crt, server.key)"
