"""Readers that publish tag reads as JSON on a local broker topic (paho-mqtt 2.x subscriber).

paho reconnects by itself (the first connection too) and we subscribe again on every CONNACK,
so a broker restart costs the reads published meanwhile and nothing else.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.config import MqttReaderTransport
from edge.rfid.receiver import PayloadReceiver

log = logging.getLogger(__name__)


class MqttSubscriber(PayloadReceiver[MqttReaderTransport]):
    """Hands each payload on one reader's topic to `deliver`; ready while subscribed."""

    def _set_up(self) -> None:
        client_id = self.transport.client_id or f"rfid-{self.reader_id}-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=60)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        self.client.connect_async(self.transport.host, self.transport.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.ready.clear()

    # paho callbacks, on paho's network thread

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.problem("broker_refused", str(reason))
            return
        client.subscribe(self.transport.topic, qos=self.transport.qos)

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            self.problem("subscribe_refused", f"{self.transport.topic}: {reasons}")
            return
        log.info("reader %s: subscribed to %s", self.reader_id, self.transport.topic)
        self.ready.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.ready.clear()
        if reason.is_failure:
            self.problem("disconnected", f"broker {self.transport.host}: {reason}")

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.deliver(bytes(message.payload))
