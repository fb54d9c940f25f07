"""InfluxDB implementation of :class:`ems.ports.timeseries.TimeSeriesStore`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from adapters.influx.config import InfluxSettings
from adapters.influx.influxql import InfluxQLClient, quote_ident
from adapters.influx.sinks import V1HttpSink, V2ClientSink
from adapters.influx.spool import DiskSpool
from adapters.influx.writer import BufferedWriter
from ems.errors import DataError
from ems.ports.timeseries import Point, Sample, SeriesQuery

log = logging.getLogger(__name__)


class InfluxStore:
    """Batched, disk-buffered writes (v1 ``/write`` or influxdb-client) and InfluxQL reads."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        password = settings.password_value()
        token = settings.token_value()
        tls = {
            "ca_file": str(settings.ca_file) if settings.ca_file else None,
            "verify_tls": settings.verify_tls,
        }
        self.reader = InfluxQLClient(
            settings.url,
            settings.database,
            username=settings.username,
            password=password,
            token=token if settings.version == 2 else None,
            retention_policy=settings.retention_policy,
            timeout_s=max(30.0, settings.timeout_s),
            **tls,
        )
        if settings.version == 1:
            sink = V1HttpSink(
                settings.url,
                settings.database,
                username=settings.username,
                password=password,
                retention_policy=settings.retention_policy,
                timeout_s=settings.timeout_s,
                create_database=settings.create_database,
                **tls,
            )
            if settings.create_database:
                self._create_database()
        else:
            sink = V2ClientSink(
                settings.url,
                token or "",
                settings.org or "",
                settings.bucket or "",
                timeout_s=settings.timeout_s,
                **tls,
            )
        self.writer = BufferedWriter(
            sink,
            DiskSpool(settings.buffer_path),
            batch_size=settings.batch_size,
            flush_interval_s=settings.flush_interval_s,
        )

    def _create_database(self) -> None:
        try:
            self.reader.raw(
                f"CREATE DATABASE {quote_ident(self.settings.database)}",
                database=False,
                method="POST",
            )
        except DataError as exc:  # server down or no admin rights: writes are buffered meanwhile
            log.warning("could not create database %s: %s", self.settings.database, exc)

    def write(self, points: Iterable[Point]) -> None:
        self.writer.write(points)

    def flush(self, timeout_s: float | None = None) -> bool:
        return self.writer.flush(timeout_s)

    def read(self, query: SeriesQuery) -> list[Sample]:
        return self.reader.read(query)

    def query(self, influxql: str) -> list[dict]:
        """Run raw InfluxQL (as the dashboards do); return the first statement's series."""
        return self.reader.series(influxql)

    def stats(self) -> Mapping[str, int]:
        return self.writer.stats()

    def close(self) -> None:
        self.writer.close()
        self.reader.close()

    def __repr__(self) -> str:  # never show secrets
        s = self.settings
        return f"InfluxStore(url={s.url!r}, version={s.version}, database={s.database!r})"
