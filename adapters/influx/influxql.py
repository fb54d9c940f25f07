"""History reads with InfluxQL over the v1 HTTP ``/query`` API.

Works on InfluxDB 1.x and, through their v1 compatibility API, on 2.x (database = bucket mapped by a
DBRP, ``Authorization: Token …``) and 3.x.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import urllib3

from ems.errors import DataError
from ems.ports.timeseries import Sample, SeriesQuery


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def build_query(query: SeriesQuery) -> str:
    """The InfluxQL text of a :class:`SeriesQuery`."""
    where = [f"time >= {int(query.start_ns)}", f"time < {int(query.end_ns)}"]
    where += [f"{quote_ident(k)} = {quote_string(v)}" for k, v in sorted(query.tags.items())]
    if query.every_s > 0:
        select = f"SELECT mean({quote_ident(query.field)}) AS value"
        tail = f" GROUP BY time({int(query.every_s)}s) fill(none)"
    else:
        select = f"SELECT {quote_ident(query.field)} AS value, *::tag"
        tail = ""
    return f"{select} FROM {quote_ident(query.measurement)} WHERE {' AND '.join(where)}{tail}"


class InfluxQLClient:
    """Minimal client for ``/query`` with nanosecond epochs."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        retention_policy: str | None = None,
        timeout_s: float = 30.0,
        ca_file: str | None = None,
        verify_tls: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self._headers: dict[str, str] = {}
        if token:
            self._headers["Authorization"] = f"Token {token}"
        elif username:
            self._headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            )
        from adapters.influx.sinks import http_pool

        self._http = http_pool(timeout_s, ca_file, verify_tls)

    def raw(
        self, influxql: str, *, database: bool = True, method: str = "GET"
    ) -> list[dict[str, Any]]:
        """Run one or more statements; return the ``results`` list. Raise :class:`DataError` on errors."""
        fields = {"q": influxql, "epoch": "ns"}
        if database:
            fields["db"] = self.database
            if self.retention_policy:
                fields["rp"] = self.retention_policy
        try:
            if method == "GET":
                response = self._http.request(
                    "GET", f"{self.url}/query", fields=fields, headers=self._headers
                )
            else:
                response = self._http.request_encode_body(
                    "POST",
                    f"{self.url}/query",
                    fields=fields,
                    headers=self._headers,
                    encode_multipart=False,
                )
        except urllib3.exceptions.HTTPError as exc:
            raise DataError(f"InfluxDB at {self.url} unreachable: {exc}") from exc
        text = response.data.decode(errors="replace")
        if response.status != 200:
            raise DataError(f"InfluxQL query failed (HTTP {response.status}): {text.strip()[:300]}")
        payload = json.loads(text)
        results = payload.get("results", [])
        for result in results:
            if "error" in result:
                raise DataError(f"InfluxQL error: {result['error']} in {influxql!r}")
        return results

    def series(self, influxql: str) -> list[dict[str, Any]]:
        """The series of the first statement (each: name, columns, values, optional tags)."""
        results = self.raw(influxql)
        return results[0].get("series", []) if results else []

    def read(self, query: SeriesQuery) -> list[Sample]:
        samples: list[Sample] = []
        for series in self.series(build_query(query)):
            columns = series["columns"]
            tag_columns = [(i, c) for i, c in enumerate(columns) if c not in ("time", "value")]
            series_tags: Mapping[str, str] = series.get("tags", {})
            for row in series["values"]:
                if row[1] is None:
                    continue
                tags = dict(series_tags)
                tags.update({c: row[i] for i, c in tag_columns if row[i] is not None})
                samples.append(Sample(int(row[0]), row[1], tags))
        samples.sort(key=lambda s: s.time_ns)
        return samples

    def ping(self) -> bool:
        try:
            return self._http.request("GET", f"{self.url}/ping", headers=self._headers).status in (
                200,
                204,
            )
        except urllib3.exceptions.HTTPError:
            return False

    def close(self) -> None:
        self._http.clear()
