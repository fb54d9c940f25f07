#!/bin/sh
# InfluxQL (v1 API) mapping of the ems bucket, so the dashboards' InfluxQL queries work on 2.x.
set -e
BUCKET_ID=$(influx bucket list --org cer --name ems --hide-headers | awk '{print $1}')
influx v1 dbrp create --org cer --db ems --rp autogen --bucket-id "$BUCKET_ID" --default || true
