"""TLS with a client certificate per gateway, and an ACL that keeps each to its own prefix."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge import wire
from edge.buffer import Buffer
from edge.config import MqttSettings, TlsSettings
from edge.publisher import Publisher
from edge.wire import Quality
from tests.brokers import PrivateMosquitto
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(directory: Path, clients: list[str]) -> None:
    """A CA, a server certificate for 127.0.0.1 and one client certificate per name."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=directory,
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ext in [("server", ["-extfile", "san.ext"])] + [(c, []) for c in clients]:
        cn = "localhost" if name == "server" else name
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=directory,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{name}.crt",
            *ext,
            cwd=directory,
        )


@pytest.fixture
def secured(tmp_path: Path):
    tag = uuid.uuid4().hex[:6]
    names = {"a": f"gw-a-{tag}", "b": f"gw-b-{tag}", "ingest": f"ingest-{tag}"}
    pki = tmp_path / "pki"
    make_pki(pki, list(names.values()))
    (tmp_path / "acl").write_text(
        "pattern write cc/v1/+/%u/#\n"
        "pattern read cc/v1/+/%u/cmd/#\n"
        f"user {names['ingest']}\ntopic read cc/v1/#\n"
    )
    broker = PrivateMosquitto(
        tmp_path / "broker",
        extra=(
            f"cafile {pki}/ca.crt\ncertfile {pki}/server.crt\nkeyfile {pki}/server.key\n"
            "require_certificate true\nuse_identity_as_username true\n"
            f"acl_file {tmp_path}/acl\nallow_anonymous false\n"
        ),
    ).start()
    yield broker, pki, names
    broker.stop()


def subscriber(broker: PrivateMosquitto, pki: Path, name: str) -> tuple[mqtt.Client, list]:
    got: list[mqtt.MQTTMessage] = []
    ready = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.tls_set(
        ca_certs=str(pki / "ca.crt"),
        certfile=str(pki / f"{name}.crt"),
        keyfile=str(pki / f"{name}.key"),
    )
    client.on_connect = lambda c, *_: c.subscribe("cc/v1/#", qos=1)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, msg: got.append(msg)
    client.connect(*broker.address)
    client.loop_start()
    assert ready.wait(10), broker.log()
    return client, got


def publisher(tmp_path: Path, broker, pki: Path, gateway: str, cert: str, site: str) -> Publisher:
    buffer = Buffer(tmp_path / f"{gateway}-{cert}.sqlite")
    body = wire.encode_reading_body("probe", "temperature", 5.0, "C", Quality.OK, datetime.now(UTC))
    buffer.append("reading", [body] * 10)
    settings = MqttSettings(
        protocol="5",
        records_per_message=5,
        ack_timeout_s=60,
        tls=TlsSettings(ca_file="ca.crt", cert_file=f"{cert}.crt", key_file=f"{cert}.key"),
    )
    status = lambda: wire.encode(  # noqa: E731
        wire.StatusMessage(v=1, gateway=gateway, site=site, state="online")
    )
    pub = Publisher(buffer, settings, gateway, site, status, config_dir=pki)
    pub.start(*broker.address)
    return pub


def test_gateway_publishes_under_its_own_prefix_over_tls(tmp_path: Path, secured) -> None:
    broker, pki, names = secured
    sub, got = subscriber(broker, pki, names["ingest"])
    pub = publisher(tmp_path, broker, pki, names["a"], names["a"], "site-1")
    wait_until(lambda: pub.buffer.depth == 0, 20, "the buffer to be acknowledged")
    readings = [m for m in got if m.topic.endswith("/readings")]
    assert sum(len(wire.decode(m.topic, m.payload)[1].records) for m in readings) == 10
    assert pub.refused_envelopes == 0
    pub.stop()
    sub.loop_stop()
    sub.disconnect()


def test_another_gateways_certificate_is_refused_on_that_prefix(tmp_path: Path, secured) -> None:
    broker, pki, names = secured
    sub, got = subscriber(broker, pki, names["ingest"])
    # Gateway B's certificate, pretending to be gateway A.
    pub = publisher(tmp_path, broker, pki, names["a"], names["b"], "site-1")
    wait_until(
        lambda: f"u'{names['b']}'" in broker.log(), 20, "B's certificate to be accepted for TLS"
    )
    time.sleep(4)
    assert pub.buffer.depth == 10, "records the broker refused must stay in the buffer"
    assert not [m for m in got if names["a"] in m.topic], "the broker let B publish as A"
    pub.stop(drain_timeout_s=0)
    sub.loop_stop()
    sub.disconnect()


def test_a_client_without_a_certificate_cannot_connect(secured) -> None:
    broker, pki, _ = secured
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anonymous")
    client.tls_set(ca_certs=str(pki / "ca.crt"))
    client.on_connect = lambda *_: connected.set()
    try:
        client.connect(*broker.address)
        client.loop_start()
        assert not connected.wait(3)
    except OSError:
        pass  # the handshake itself failed: refused all the same
    finally:
        client.loop_stop()
    assert not connected.is_set()
