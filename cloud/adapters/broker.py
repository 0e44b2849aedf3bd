"""The embedded MQTT broker of the demo and of small sites: amqtt, in-process, MQTT 3.1.1.

It has no shared subscriptions, so one ingest worker serves it. Production uses Mosquitto
or a clustered broker (deploy/mosquitto/).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from amqtt.broker import Broker

log = logging.getLogger(__name__)


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, never the same one twice in this process."""
    while True:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def broker_config(host: str, port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class EmbeddedBroker:
    """amqtt running on its own event loop in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None):
        self.host = host
        self.port = port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._broker: Broker | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt", daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._thread.start()
        self._broker = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(15)
        log.info("embedded broker listening on %s", self.url)
        return self

    async def _start(self) -> Broker:
        # Built on its own loop: Broker() makes its broadcast-shutdown future on the loop
        # current where it is constructed. Made in the caller's thread, that future belonged
        # to another loop, shutdown() never woke the broadcast loop, and after 5 s amqtt
        # cancelled it, logging a traceback and leaving a broadcast task pending.
        broker = Broker(broker_config(self.host, self.port))
        await broker.start()
        return broker

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
        # amqtt can leave tasks behind (a client's handler, a delivery under way). Cancelled
        # and awaited here, none is left pending when the loop stops, so none is reported
        # "destroyed but pending" at exit.
        current = asyncio.current_task()
        rest = [task for task in asyncio.all_tasks() if task is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        await self._loop.shutdown_asyncgens()
