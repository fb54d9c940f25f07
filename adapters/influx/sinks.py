"""Write endpoints: InfluxDB 1.x ``/write`` over HTTP, and influxdb-client for 2.x/3.x."""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlencode

import urllib3

from adapters.influx.writer import PermanentWriteError, RetryableWriteError

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = {401, 403, 404, 408, 429, 500, 502, 503, 504}


def _classify_status(status: int, body: str) -> Exception:
    text = f"HTTP {status}: {body.strip()[:300]}"
    if status in _RETRYABLE_STATUS or status >= 500:
        # 401/403: credentials may be fixed by the operator; 404: database not created yet.
        return RetryableWriteError(text)
    return PermanentWriteError(text)


def http_pool(
    timeout_s: float, ca_file: str | None = None, verify_tls: bool = True
) -> urllib3.PoolManager:
    """A small keep-alive pool; HTTPS verified against ``ca_file`` or the system CAs unless disabled."""
    tls: dict[str, str] = {"cert_reqs": "CERT_REQUIRED" if verify_tls else "CERT_NONE"}
    if ca_file:
        tls["ca_certs"] = ca_file
    return urllib3.PoolManager(
        maxsize=2,
        timeout=urllib3.Timeout(connect=min(3.0, timeout_s), read=timeout_s),
        retries=False,
        **tls,
    )


class V1HttpSink:
    """``POST /write?db=…&rp=…&precision=ns`` (InfluxDB 1.x; also VictoriaMetrics and 2.x's v1 API)."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        retention_policy: str | None = None,
        timeout_s: float = 10.0,
        create_database: bool = False,
        ca_file: str | None = None,
        verify_tls: bool = True,
    ) -> None:
        create_query = urlencode({"q": 'CREATE DATABASE "' + database.replace('"', '\\"') + '"'})
        self._create_url = f"{url.rstrip('/')}/query?{create_query}" if create_database else None
        params = {"db": database, "precision": "ns"}
        if retention_policy:
            params["rp"] = retention_policy
        self._url = f"{url.rstrip('/')}/write?{urlencode(params)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._http = http_pool(timeout_s, ca_file, verify_tls)

    def send(self, body: bytes) -> None:
        try:
            response = self._http.request("POST", self._url, body=body, headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableWriteError(f"{type(exc).__name__}: {exc}") from exc
        if response.status == 404 and self._create_url and b"database not found" in response.data:
            # The server came up after we started (or lost its data): create the database, retry once.
            try:
                self._http.request("POST", self._create_url, headers=self._headers)
                response = self._http.request("POST", self._url, body=body, headers=self._headers)
            except urllib3.exceptions.HTTPError as exc:
                raise RetryableWriteError(f"{type(exc).__name__}: {exc}") from exc
        if response.status != 204 and response.status != 200:
            raise _classify_status(response.status, response.data.decode(errors="replace"))

    def close(self) -> None:
        self._http.clear()


class V2ClientSink:
    """influxdb-client's synchronous write API: InfluxDB 2.x/3.x (URL, token, org, bucket)."""

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        *,
        timeout_s: float = 10.0,
        ca_file: str | None = None,
        verify_tls: bool = True,
    ) -> None:
        from influxdb_client import InfluxDBClient, WritePrecision
        from influxdb_client.client.write_api import SYNCHRONOUS

        self._client = InfluxDBClient(
            url=url,
            token=token,
            org=org,
            timeout=int(timeout_s * 1000),
            retries=False,
            enable_gzip=False,
            verify_ssl=verify_tls,
            ssl_ca_cert=ca_file,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._org, self._bucket, self._precision = org, bucket, WritePrecision.NS

    def send(self, body: bytes) -> None:
        from influxdb_client.rest import ApiException

        try:
            self._api.write(
                bucket=self._bucket, org=self._org, record=body, write_precision=self._precision
            )
        except ApiException as exc:
            raise _classify_status(int(exc.status or 0), str(exc.body or exc.reason)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableWriteError(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise RetryableWriteError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
