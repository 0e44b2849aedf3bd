"""RFID reader adapters against real things: HTTP over a socket, Mosquitto, a serial pty pair.

Each test starts an RfidService with one reader and checks the observations it hands over.
Mosquitto must run on 127.0.0.1:1883 and socat must be installed; nothing is skipped.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.buffer import Buffer
from edge.config import Reader
from edge.rfid import LoadedReader, RfidService, load_profile
from edge.rfid.http_push import ReaderTokenError
from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.integration

READERS = ROOT / "firmware-configs" / "readers"
FIXTURES = ROOT / "tests" / "fixtures" / "rfid"
SOCAT = "/usr/bin/socat"
SGTIN = "3034257BF7194E4000001A85"
SGTIN2 = "3034257BF7194E4000001A86"
SSCC = "3114257BF4499602D2000000"
PORTAL = {"outer_antenna": 1, "inner_antenna": 2}


class Sink:
    """on_observations for a service under test: keeps what it is given, parsed back."""

    def __init__(self, fail_first: int = 0):
        self.bodies: list[str] = []
        self.calls = 0
        self.fail_first = fail_first
        self._lock = threading.Lock()

    def __call__(self, bodies: list[str]) -> None:
        with self._lock:
            self.calls += 1
            if self.calls <= self.fail_first:
                raise OSError("disk full (injected)")
            self.bodies += bodies

    def observations(self) -> list[wire.Observation]:
        with self._lock:
            return [wire.Observation.model_validate_json('{"seq":0,' + b) for b in self.bodies]

    def by_epc(self) -> dict[str, wire.Observation]:
        return {o.epc: o for o in self.observations()}


def reader(rid: str, transport: dict, profile: str | None, **options: object) -> LoadedReader:
    point = {"id": f"{rid}-point", "zone": "zone-1", "business_step": "receiving", **PORTAL}
    config = Reader.model_validate(
        {
            "id": rid,
            "transport": transport,
            "profile": profile,
            "read_points": [options.pop("point", point)],
            "window_s": 1.0,  # generous: a loaded CI machine may be slow between messages
            **options,
        }
    )
    return LoadedReader(config, load_profile(READERS / profile) if profile else None)


@pytest.fixture
def start_service() -> Iterator[Callable[..., RfidService]]:
    started: list[RfidService] = []

    def start(loaded: LoadedReader, sink: Callable[[list[str]], None]) -> RfidService:
        service = RfidService([loaded], sink, tick_s=0.05)
        started.append(service)
        service.start()
        if not service.wait_ready(15):
            pytest.fail(f"reader {loaded.config.id} did not become ready: {service.errors}")
        return service

    yield start
    for service in started:
        service.stop()


# --- HTTP push (Zebra FX, Impinj R700) ----------------------------------------------------


TOKEN = "reader-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def reader_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFID_TEST_TOKEN", TOKEN)


def post(url: str, body: bytes | object, auth: dict[str, str] | None = None) -> int:
    headers = {"Content-Type": "application/json", **(AUTH if auth is None else auth)}
    request = Request(url, data=body, headers=headers)
    try:
        with urlopen(request, timeout=10) as response:
            return response.status
    except HTTPError as error:
        error.close()
        return error.code


def test_http_reader_posts_become_observations_in_the_buffer(start_service, tmp_path) -> None:
    buffer = Buffer(tmp_path / "buffer.sqlite")
    try:
        transport = {
            "kind": "http",
            "host": "127.0.0.1",
            "port": 0,
            "path": "/rfid",
            "token_env": "RFID_TEST_TOKEN",
        }
        sink = Sink()

        def append(bodies: list[str]) -> None:
            buffer.append("observation", bodies)
            sink(bodies)

        service = start_service(
            reader("dock1-fx", transport, "zebra-fx-iot-connector.yaml"), append
        )
        url = f"http://127.0.0.1:{service.adapters['dock1-fx'].port}"  # type: ignore[union-attr]
        events = (FIXTURES / "zebra-fx-tag-events.json").read_bytes()
        assert post(url + "/rfid", events) == 204
        assert post(url + "/rfid", b"{this is not json") == 400
        assert post(url + "/rfid", b'[{"data": {"idHex": "xyz", "antenna": 1}}]') == 204
        assert post(url + "/elsewhere", events) == 404
        with pytest.raises(HTTPError) as refused:
            urlopen(url + "/rfid", timeout=10)  # GET is not how readers talk
        refused.value.close()
        assert refused.value.code == 501

        wait_until(lambda: len(sink.bodies) == 2, 10, "two observations from the HTTP reader")
        found = sink.by_epc()
        assert (found[SGTIN].gtin, found[SGTIN].serial) == ("80614141123458", "6789")
        assert (found[SGTIN].count, found[SGTIN].direction, found[SGTIN].peak_rssi) == (
            2,
            "in",
            -54,
        )
        assert found[SSCC].sscc == "106141412345678908"
        assert found[SSCC].read_point == "dock1-fx-point"
        assert service.errors == {"dock1-fx:bad_json": 1, "dock1-fx:bad_epc": 1}

        records = buffer.pending("observation", 0, 10)
        assert len(records) == 2
        payload = wire.assemble_readings("gw1", "site1", records)
        channel, envelope = wire.decode(wire.topic("site1", "gw1", "rfid"), payload)
        assert channel == "rfid" and {r.epc for r in envelope.records} == {SGTIN, SSCC}  # type: ignore[union-attr]
    finally:
        buffer.close()


def test_http_reader_without_the_token_is_refused_and_counted(start_service) -> None:
    """Anyone on the warehouse LAN could forge custody: now a POST needs the reader token."""
    transport = {"kind": "http", "host": "127.0.0.1", "port": 0, "token_env": "RFID_TEST_TOKEN"}
    sink = Sink()
    service = start_service(reader("dock9", transport, "zebra-fx-iot-connector.yaml"), sink)
    url = f"http://127.0.0.1:{service.adapters['dock9'].port}/"  # type: ignore[union-attr]
    events = (FIXTURES / "zebra-fx-tag-events.json").read_bytes()
    basic = base64.b64encode(f"fx9600:{TOKEN}".encode()).decode()
    wrong = base64.b64encode(b"fx9600:guess").decode()
    assert post(url, events, auth={}) == 401
    assert post(url, events, auth={"Authorization": "Bearer " + TOKEN[:-1]}) == 401
    assert post(url, events, auth={"Authorization": f"Basic {wrong}"}) == 401
    assert post(url, events, auth={"Authorization": "Basic !!not-base64"}) == 401
    time.sleep(1.5)  # a refused body, had it been taken, would be an observation by now
    assert sink.bodies == []
    assert service.errors == {"dock9:unauthorised": 4}
    assert post(url, events, auth={"Authorization": f"Basic {basic}"}) == 204
    wait_until(lambda: sink.bodies, 10, "the observations of the authorised POST")


def test_http_reader_does_not_start_without_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("RFID_TEST_TOKEN", "short")
    transport = {"kind": "http", "host": "127.0.0.1", "port": 0, "token_env": "RFID_TEST_TOKEN"}
    service = RfidService([reader("dock8", transport, "zebra-fx-iot-connector.yaml")], Sink())
    with pytest.raises(ReaderTokenError, match="RFID_TEST_TOKEN holds no token of at least 16"):
        service.start()
    service.stop()
    with pytest.raises(ValueError, match="needs a token"):
        reader("dock7", {"kind": "http", "port": 0}, "zebra-fx-iot-connector.yaml")


def test_http_reader_on_one_keep_alive_connection_and_chunked(start_service) -> None:
    transport = {"kind": "http", "host": "127.0.0.1", "port": 0, "token_env": "RFID_TEST_TOKEN"}
    sink = Sink()
    service = start_service(reader("r700", transport, "impinj-r700-webhook.yaml"), sink)
    port = service.adapters["r700"].port  # type: ignore[union-attr]
    events = json.loads((FIXTURES / "impinj-r700-events.json").read_text())
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for event in events:  # one event per POST, as a webhook in low-latency mode sends
            connection.request(
                "POST", "/", json.dumps([event]), {"Content-Type": "application/json", **AUTH}
            )
            response = connection.getresponse()
            response.read()
            assert response.status == 204
    finally:
        connection.close()
    chunks = [
        b'[{"eventType": "tagInventory", "tagInventoryEvent": ',
        b'{"epcHex": "%s", ' % SGTIN2.encode(),
        b'"antennaPort": 1, "peakRssiCdbm": -7000}}]',
    ]
    assert post(f"http://127.0.0.1:{port}/", iter(chunks)) == 204  # no length: chunked

    wait_until(lambda: len(sink.bodies) == 2, 10, "observations from the Impinj reader")
    found = sink.by_epc()
    assert (found[SGTIN].count, found[SGTIN].peak_rssi, found[SGTIN].direction) == (2, -55.5, "out")
    assert (found[SGTIN2].count, found[SGTIN2].peak_rssi) == (1, -70.0)
    assert service.errors == {"r700:not_a_tag_read": 1}


def test_open_passes_are_handed_over_on_stop_and_a_failing_sink_is_retried(start_service) -> None:
    transport = {"kind": "http", "host": "127.0.0.1", "port": 0, "token_env": "RFID_TEST_TOKEN"}
    sink = Sink(fail_first=2)
    loaded = reader("dock2", transport, "zebra-fx-iot-connector.yaml", window_s=0.2)
    service = start_service(loaded, sink)
    port = service.adapters["dock2"].port  # type: ignore[union-attr]
    assert (
        post(f"http://127.0.0.1:{port}/", json.dumps([{"idHex": SGTIN, "antenna": 1}]).encode())
        == 204
    )
    wait_until(lambda: sink.bodies, 10, "the observation after two failed hand-overs")
    assert sink.calls == 3 and service.stats()["delivered"] == 1

    slow = Sink()
    parked = start_service(
        reader("dock3", transport, "zebra-fx-iot-connector.yaml", window_s=120), slow
    )
    port = parked.adapters["dock3"].port  # type: ignore[union-attr]
    assert (
        post(f"http://127.0.0.1:{port}/", json.dumps([{"idHex": SSCC, "antenna": 2}]).encode())
        == 204
    )
    wait_until(lambda: parked.stats()["open_passes"] == 1, 10, "the pass to open")
    parked.stop()
    assert [o.epc for o in slow.observations()] == [SSCC]


# --- MQTT (readers publishing to the local broker) ----------------------------------------


def publish(broker: tuple[str, int], topic: str, payloads: list[bytes]) -> None:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"test-reader-{uuid.uuid4().hex[:8]}"
    )
    client.connect(*broker)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_mqtt_reader_messages_become_observations(start_service, mosquitto) -> None:
    topic = f"test/rfid/{uuid.uuid4().hex}/tags"
    transport = {
        "kind": "mqtt",
        "host": mosquitto[0],
        "port": mosquitto[1],
        "topic": topic,
        "qos": 1,
    }
    sink = Sink()
    service = start_service(reader("cold-door", transport, "generic-json.yaml"), sink)
    t = int(time.time() * 1000)
    publish(
        mosquitto,
        topic,
        [
            json.dumps(
                {"reader": "cold-door", "tags": [{"epc": SGTIN, "ant": 2, "rssi": -58, "ts": t}]}
            ).encode(),
            json.dumps(
                [{"epc": SGTIN, "antenna": 1, "rssi": -63}, {"epc": SSCC, "antenna": 1}]
            ).encode(),
            b"\x00\x01 reader rebooting",
            json.dumps({"tags": [{"epc": "hello", "ant": 1}, {"ant": 1}]}).encode(),
            json.dumps([{"epc": SSCC, "antenna": 2, "rssi": -49.5}]).encode(),
        ],
    )
    wait_until(lambda: len(sink.bodies) == 2, 10, "two observations from the MQTT reader")
    found = sink.by_epc()
    assert (found[SGTIN].count, found[SGTIN].direction, found[SGTIN].peak_rssi) == (2, "out", -58)
    assert (found[SSCC].count, found[SSCC].direction, found[SSCC].antenna) == (2, "in", 2)
    assert service.errors == {
        "cold-door:bad_json": 1,
        "cold-door:bad_epc": 1,
        "cold-door:not_a_tag_read": 1,
    }


# --- serial line readers, through a socat pty pair ----------------------------------------


class PtyPair:
    """socat joining two pseudo-terminals: the reader's side and the adapter's side."""

    def __init__(self, directory: Path):
        socat = SOCAT if Path(SOCAT).is_file() else shutil.which("socat")
        if socat is None:
            pytest.fail(f"socat is not installed at {SOCAT} or on PATH (apt-get install socat)")
        self.socat = socat
        self.gateway_side = directory / "ttyRFID"
        self.reader_side = directory / "ttyREADER"
        self.log = directory / "socat.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PtyPair:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.socat,
                    "-d",
                    "-d",
                    f"pty,raw,echo=0,link={self.gateway_side}",
                    f"pty,raw,echo=0,link={self.reader_side}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_until(
            lambda: self.gateway_side.exists() and self.reader_side.exists(),
            10,
            f"socat to make its ptys (log: {self.log})",
            every=0.05,
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def write(self, text: bytes) -> None:
        with open(self.reader_side, "wb", buffering=0) as tty:
            tty.write(text)


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[PtyPair]:
    pair = PtyPair(tmp_path).start()
    yield pair
    pair.stop()


def test_serial_reader_lines_become_observations(pty_pair, start_service) -> None:
    transport = {"kind": "serial", "device": str(pty_pair.gateway_side), "reconnect_s": 0.2}
    point = {"id": "pick1", "zone": "zone-1", "business_step": "picking"}
    sink = Sink()
    service = start_service(reader("bench", transport, "serial-csv.yaml", point=point), sink)
    pty_pair.write(
        f"{SGTIN},1,-52.5\r\n{SGTIN},1,-49\r\nREADY>\r\n{SSCC},2,-60\r\n".encode()
        + b"\xde\xad\xbe\xef,1,-50\r\n"
        + b"~" * 3000  # line noise with no end of line
        + f"\r\n{SGTIN2},1,loud\n{SGTIN},1,-51".encode()
    )
    pty_pair.write(b"\n")  # the last line ends in a second write
    wait_until(lambda: len(sink.bodies) == 2, 10, "two observations from the serial reader")
    found = sink.by_epc()
    assert (found[SGTIN].count, found[SGTIN].peak_rssi, found[SGTIN].read_point) == (
        3,
        -49,
        "pick1",
    )
    assert found[SSCC].antenna == 2 and found[SSCC].direction is None
    assert service.errors == {
        "bench:not_a_tag_read": 1,
        "bench:bad_line": 1,
        "bench:line_too_long": 1,
        "bench:bad_rssi": 1,
    }


def test_serial_reader_comes_back_after_the_port_disappears(pty_pair, start_service) -> None:
    transport = {"kind": "serial", "device": str(pty_pair.gateway_side), "reconnect_s": 0.2}
    point = {"id": "pick2", "zone": "zone-1", "business_step": "picking"}
    sink = Sink()
    service = start_service(reader("usb", transport, "serial-csv.yaml", point=point), sink)
    pty_pair.write(f"{SGTIN},1,-50\n".encode())
    wait_until(lambda: len(sink.bodies) == 1, 10, "the first observation")

    pty_pair.stop()  # the USB reader is unplugged
    wait_until(lambda: "usb:disconnected" in service.errors, 10, "the outage to be counted")
    time.sleep(0.6)  # several reconnect attempts while it is gone: still one outage
    assert service.errors == {"usb:disconnected": 1}

    pty_pair.start()  # plugged back in
    wait_until(lambda: service.wait_ready(0), 10, "the adapter to reopen the port")
    pty_pair.write(f"{SSCC},1,-55\n".encode())
    wait_until(lambda: len(sink.bodies) == 2, 10, "an observation after the reconnect")
    assert [o.epc for o in sink.observations()] == [SGTIN, SSCC]


# --- the simulator --------------------------------------------------------------------------


def test_simulated_reader_passes_alternate_in_and_out(start_service) -> None:
    transport = {
        "kind": "simulated",
        "epcs": [SGTIN, SSCC],
        "every_s": 1.0,
        "pass_s": 0.3,
        "reads_per_s": 60,
    }
    sink = Sink()
    start_service(reader("sim", transport, None, window_s=0.2), sink)
    wait_until(lambda: len(sink.bodies) >= 4, 15, "two simulated passes of two tags")
    first_two_passes = sink.observations()[:4]
    by_pass = [{(o.epc, o.direction) for o in first_two_passes[i : i + 2]} for i in (0, 2)]
    assert by_pass == [{(SGTIN, "in"), (SSCC, "in")}, {(SGTIN, "out"), (SSCC, "out")}]
    assert all(o.count >= 5 and o.id_uri for o in first_two_passes)
