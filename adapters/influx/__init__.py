"""InfluxDB adapter: batched, disk-buffered writes (1.x ``/write``, 2.x/3.x influxdb-client),
InfluxQL reads.
"""

from adapters.influx.config import InfluxSettings
from adapters.influx.store import InfluxStore

__all__ = ["InfluxSettings", "InfluxStore"]
