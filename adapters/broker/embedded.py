"""An amqtt broker in a background thread, on loopback and a free port by default.

Meant for ``ems run --simulate``, demos and laptops: anonymous, loopback-only, no persistence
across process restarts (sessions live as long as the process). For production use Mosquitto with
``deploy/mosquitto/``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import Future

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """``with EmbeddedBroker() as broker: ... broker.host, broker.port``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker = None
        self._stopped = threading.Event()

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="embedded-broker", daemon=True
        )
        self._thread.start()
        ready.result(timeout=timeout_s)
        log.info("embedded MQTT broker listening on %s:%d", self.host, self.port)
        return self

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            from amqtt.broker import Broker

            config = {
                "listeners": {
                    "default": {
                        "type": "tcp",
                        "bind": f"{self.host}:{self.port}",
                        "max_connections": 0,
                    }
                },
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
            self._broker = Broker(config)
            await self._broker.start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:  # noqa: BLE001 - any start failure is reported to the caller
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.close()
            self._stopped.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._loop is None or self._broker is None:
            return
        loop, broker = self._loop, self._broker
        try:
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout=timeout_s)
        except Exception:  # shutting down anyway
            log.debug("embedded broker shutdown raised", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._broker = None

    def __enter__(self) -> EmbeddedBroker:  # noqa: PYI034 - start() returns self
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
