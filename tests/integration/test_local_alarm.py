"""The local alarm sounds with the cloud unreachable, is reported later, and obeys commands."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import ModbusTcpClient
from sqlalchemy import select

from cloud.adapters.broker import free_port
from cloud.adapters.engine import make_engine
from cloud.adapters.orm.readings import GatewayEvent
from edge import wire
from edge.config import TcpTransport, load_register_map
from edge.simulator import SensorFarm, SimulatedSensor
from tests.conftest import SENSORS, FarmThread, ingest_args, start_ingest, wait_until

pytestmark = pytest.mark.integration

RELAY_UNIT = 9


def warm(quantity: str, _now: float) -> float:
    """A cold room whose cooling has failed: 12 C against a 2-8 C profile."""
    return 12.0 if quantity == "temperature" else 50.0


def coil(port: int) -> bool:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    try:
        assert client.connect()
        return bool(client.read_coils(0, count=1, device_id=RELAY_UNIT).bits[0])
    finally:
        client.close()


def config(directory: Path, modbus_port: int, mqtt_port: int) -> tuple[str, str, Path]:
    tag = uuid.uuid4().hex[:8]
    gateway, site = f"gw-{tag}", f"site-{tag}"
    endpoint = {"kind": "tcp", "host": "127.0.0.1", "port": modbus_port}
    body = {
        "id": gateway,
        "site": {"id": site, "name": "Alarm test", "kind": "warehouse"},
        "poll_interval_s": 0.3,
        "mqtt": {
            "host": "127.0.0.1",
            "port": mqtt_port,
            "heartbeat_s": 1,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1,
        },
        "zones": [
            {
                "id": f"{site}-cold",
                "name": "Cold room",
                "low": 2,
                "high": 8,
                "alarm_delay_s": 1.5,
                "alarm_output": "siren",
            }
        ],
        "devices": [
            {
                "id": f"{site}-t1",
                "zone": f"{site}-cold",
                "transport": endpoint,
                "register_map": str(SENSORS / "xy-md02.yaml"),
                "unit_id": 1,
            }
        ],
        "alarm_outputs": [{"id": "siren", "transport": endpoint, "unit_id": RELAY_UNIT, "coil": 0}],
    }
    path = directory / f"{gateway}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return gateway, site, path


def test_alarm_offline_then_reported_and_silenced_by_command(
    tmp_path: Path, pg_url, processes, private_broker
) -> None:
    modbus_port, broker_port = free_port(), free_port()
    farm = SensorFarm()
    rmap = load_register_map(SENSORS / "xy-md02.yaml")
    endpoint = TcpTransport(host="127.0.0.1", port=modbus_port)
    farm.add(endpoint, SimulatedSensor(1, rmap, warm))
    farm.add(endpoint, SimulatedSensor(RELAY_UNIT, rmap, warm))  # the relay module
    gateway, site, path = config(tmp_path, modbus_port, broker_port)
    args = ("edge.cli", "run", str(path), "--data-dir", str(tmp_path / "data"))

    with FarmThread(farm):
        # 1. No broker at all: the siren still sounds after the alarm delay.
        offline = processes("gateway-offline", *args)
        wait_until(lambda: coil(modbus_port), 20, "the siren coil to be set with no broker")
        assert offline.terminate() == 0

        # 2. With a broker and the cloud: the buffered alarm event is delivered.
        broker = private_broker(port=broker_port).start()
        start_ingest(processes, "ingest", ingest_args(pg_url, broker.address))
        online = processes("gateway-online", *args)
        engine = make_engine(pg_url)

        def alarm_events() -> list[tuple[str, str | None, float | None]]:
            with engine.connect() as conn:
                return conn.execute(
                    select(GatewayEvent.type, GatewayEvent.zone_id, GatewayEvent.value).where(
                        GatewayEvent.gateway_id == gateway
                    )
                ).all()

        (event,) = wait_until(alarm_events, 30, "the local alarm event to reach the cloud")
        assert event == ("local_alarm", f"{site}-cold", 12.0)
        assert online.terminate() == 0

        # 3. A command sent while the gateway is offline waits in its session: silence.
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ops-{gateway}")
        client.connect(*broker.address)
        client.loop_start()
        client.publish(
            f"{wire.TOPIC_ROOT}/{site}/{gateway}/cmd/silence", b"{}", qos=1
        ).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        assert coil(modbus_port), "the siren went off before the command arrived"
        again = processes("gateway-again", *args)
        wait_until(lambda: "command 'silence'" in again.text(), 20, "the queued command")
        wait_until(lambda: not coil(modbus_port), 10, "the siren to be silenced")
        time.sleep(1)
        assert not coil(modbus_port), "the silenced siren came back on"
        assert again.terminate() == 0
        engine.dispose()
