"""TLS end to end with the shipped broker config: gateway -> Mosquitto (mqtts) -> ingest -> db.

The broker runs deploy/mosquitto/coldchain.conf and deploy/mosquitto/acl as shipped; only
file paths, the listener's port (bound to loopback) and the persistence location are
rewritten, and a log file and the user to run as are added so a test can run it.
"""

from __future__ import annotations

import getpass
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import trustme
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import func, select

from cloud.adapters.broker import free_port
from cloud.adapters.engine import make_engine
from cloud.adapters.orm.readings import Reading
from edge.buffer import Buffer
from tests import conftest
from tests.brokers import PrivateMosquitto
from tests.conftest import (
    ROOT,
    Process,
    make_gateway_config,
    start_ingest,
    wait_until,
)

pytestmark = pytest.mark.integration

SHIPPED_CONF = ROOT / "deploy" / "mosquitto" / "coldchain.conf"
SHIPPED_ACL = ROOT / "deploy" / "mosquitto" / "acl"
INGEST_CN = "coldchain-ingest"  # the ACL's `user coldchain-ingest`
REFUSED_LOGIN = r"broker refused the ingest worker: (Not authorized|Bad user name or password)"


@dataclass
class Pki:
    directory: Path
    ca: trustme.CA

    def path(self, name: str) -> Path:
        return self.directory / name

    def client(self, cn: str) -> None:
        """A client certificate and key: <cn>.crt, <cn>.key (CN = the MQTT user name)."""
        leaf = self.ca.issue_cert(f"{cn}.clients.invalid", common_name=cn)
        leaf.private_key_pem.write_to_path(str(self.path(f"{cn}.key")))
        leaf.cert_chain_pems[0].write_to_path(str(self.path(f"{cn}.crt")))

    def revoke(self, *cns: str) -> None:
        """Write ca.crl, the CA's list of revoked certificates, naming these."""
        key = serialization.load_pem_private_key(self.ca.private_key_pem.bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        issuer = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + timedelta(days=1))
        )
        for cn in cns:
            cert = x509.load_pem_x509_certificate(self.path(f"{cn}.crt").read_bytes())
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(now - timedelta(minutes=1))
                .build()
            )
        crl = builder.sign(key, hashes.SHA256())
        self.path("ca.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))


def make_pki(directory: Path, clients: list[str], revoked: list[str]) -> Pki:
    """A CA, the broker's certificate (127.0.0.1, localhost), client certificates, a CRL."""
    directory.mkdir(parents=True)
    pki = Pki(directory, trustme.CA())
    pki.ca.cert_pem.write_to_path(str(pki.path("ca.crt")))
    server = pki.ca.issue_cert("127.0.0.1", "localhost", common_name="localhost")
    server.private_key_pem.write_to_path(str(pki.path("broker.key")))
    server.cert_chain_pems[0].write_to_path(str(pki.path("broker.crt")))
    for cn in [*clients, *revoked]:
        pki.client(cn)
    pki.revoke(*revoked)
    return pki


def shipped_broker(directory: Path, pki: Pki) -> PrivateMosquitto:
    """Mosquitto with the shipped config: paths, port and persistence location rewritten."""
    broker = PrivateMosquitto(directory, port=free_port())
    text = SHIPPED_CONF.read_text()
    text = text.replace("/etc/mosquitto/certs/", f"{pki.directory}/")
    text = text.replace("/etc/mosquitto/coldchain.acl", str(SHIPPED_ACL))
    text, listeners = re.subn(
        r"^listener 8883$", f"listener {broker.port} 127.0.0.1", text, flags=re.M
    )
    assert listeners == 1, "the shipped config has one TLS listener on 8883"
    for setting in ("tls_version tlsv1.2", "crlfile", "require_certificate true"):
        assert setting in text, f"the shipped config lost {setting!r}"
    broker.config.write_text(
        text + f"\npersistence_location {directory}/\n"
        f"log_dest file {directory}/mosquitto.log\nuser {getpass.getuser()}\n"
    )
    return broker


@dataclass
class Secured:
    broker: PrivateMosquitto
    pki: Pki
    url: str

    @property
    def address(self) -> tuple[str, int]:
        return self.broker.address


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    """The shipped broker, its PKI (gw-good, gw-other, gw-stolen revoked, the ingest)."""
    pki = make_pki(
        tmp_path / "pki", ["gw-good", "gw-other", INGEST_CN, "gw-spare"], revoked=["gw-stolen"]
    )
    broker = shipped_broker(tmp_path / "broker", pki).start()
    yield Secured(broker, pki, f"mqtts://127.0.0.1:{broker.port}")
    broker.stop()


def tls_gateway(
    tmp_path: Path, secured: Secured, gateway_id: str, cert: str
) -> conftest.TestGateway:
    """A gateway config on the shipped broker over TLS, presenting `cert`'s certificate."""
    made = make_gateway_config(tmp_path / gateway_id, sensors=2)
    config = yaml.safe_load(made.config.read_text())
    old_id = config["id"]
    config["id"] = gateway_id
    config["mqtt"].update(
        host="127.0.0.1",
        port=secured.broker.port,
        protocol="5",  # a refused PUBLISH is a refusing PUBACK: the records stay
        tls={
            "ca_file": str(secured.pki.path("ca.crt")),
            "cert_file": str(secured.pki.path(f"{cert}.crt")),
            "key_file": str(secured.pki.path(f"{cert}.key")),
        },
    )
    path = made.config.with_name(f"{gateway_id}.yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    made.config.unlink()
    assert old_id != gateway_id
    return conftest.TestGateway(gateway_id, made.site, path, made.data_dir)


def run_gateway(
    spawn: Callable[..., Process], gateway: conftest.TestGateway, *extra: str
) -> Process:
    return spawn(
        f"gateway-{gateway.id}",
        "edge.cli",
        "run",
        str(gateway.config),
        "--data-dir",
        str(gateway.data_dir),
        *extra,
    )


def run_ingest(spawn: Callable[..., Process], secured: Secured, database_url: str) -> Process:
    pki = secured.pki
    return start_ingest(
        spawn,
        "ingest",
        (
            "cloud.entrypoints.cli",
            "ingest",
            "--database-url",
            database_url,
            "--no-migrate",
            "--broker",
            secured.url,
            "--ca-file",
            str(pki.path("ca.crt")),
            "--cert-file",
            str(pki.path(f"{INGEST_CN}.crt")),
            "--key-file",
            str(pki.path(f"{INGEST_CN}.key")),
            "--client-id",
            f"ingest-{uuid.uuid4().hex[:8]}",
            "--session-expiry",
            "600",
        ),
    )


def stored(url: str, gateway: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(
            select(func.count()).select_from(Reading).where(Reading.gateway_id == gateway)
        ).scalar_one()
    engine.dispose()
    return int(count)


def connects(secured: Secured, cert: str | None, tls: bool = True) -> bool:
    """Whether a bare client gets a CONNACK that accepts it within a few seconds."""
    accepted = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"probe-{uuid.uuid4().hex[:6]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    if tls:
        client.tls_set(
            ca_certs=str(secured.pki.path("ca.crt")),
            certfile=None if cert is None else str(secured.pki.path(f"{cert}.crt")),
            keyfile=None if cert is None else str(secured.pki.path(f"{cert}.key")),
            cert_reqs=ssl.CERT_REQUIRED,
        )
    client.on_connect = lambda _c, _u, _f, reason, _p: None if reason.is_failure else accepted.set()
    try:
        client.connect(*secured.address)
        client.loop_start()
        accepted.wait(3)
    except (OSError, ssl.SSLError):
        pass  # the handshake itself failed: refused
    finally:
        client.loop_stop()
        client.disconnect()
    return accepted.is_set()


def test_readings_arrive_over_tls_and_every_other_way_in_is_refused(
    tmp_path: Path, secured: Secured, pg_url: str, processes, clock_sensors
) -> None:
    ingest = run_ingest(processes, secured, pg_url)
    good = tls_gateway(tmp_path, secured, "gw-good", "gw-good")
    clock_sensors(good)
    good_run = run_gateway(processes, good)
    wait_until(lambda: stored(pg_url, "gw-good") >= 10, 60, "readings over TLS in the database")

    # The ingest and a gateway with a good certificate connect; nothing else does.
    assert connects(secured, "gw-spare")
    assert not connects(secured, "gw-stolen"), "a revoked certificate was accepted"
    assert not connects(secured, None), "a client without a certificate was accepted"
    assert not connects(secured, None, tls=False), "plaintext reached the TLS listener"

    # A gateway holding the stolen (revoked) certificate stores nothing, and keeps trying.
    stolen = tls_gateway(tmp_path, secured, "gw-stolen", "gw-stolen")
    clock_sensors(stolen)
    stolen_run = run_gateway(processes, stolen, "--broker", secured.url)
    wait_until(
        lambda: stolen_run.text().count("cannot connect to the broker") >= 2,
        30,
        "the revoked gateway to be refused twice",
    )
    assert "connected to broker" not in stolen_run.text()

    # A gateway's own certificate under another gateway's prefix: the ACL refuses it.
    impostor = tls_gateway(tmp_path, secured, "gw-victim", "gw-other")
    clock_sensors(impostor)
    impostor_run = run_gateway(processes, impostor)
    # (Mosquitto accepts its certificate, then refuses its will, status and readings on
    # gw-victim's topics: it drops the connection, and the records stay in the buffer.)
    wait_until(
        lambda: secured.broker.log().count("as gw-gw-victim (p5, c0, k30, u'gw-other')") >= 3,
        30,
        "the impostor's certificate to be accepted for TLS, three times",
    )

    before = stored(pg_url, "gw-good")
    wait_until(lambda: stored(pg_url, "gw-good") > before, 30, "gw-good to keep arriving")
    assert stored(pg_url, "gw-stolen") == 0, "a revoked certificate's readings were stored"
    assert stored(pg_url, "gw-victim") == 0, "a gateway published under another's prefix"
    assert good_run.alive() and stolen_run.alive() and impostor_run.alive()
    assert ingest.alive(), ingest.text()
    assert "dead letter" not in ingest.text()
    assert good_run.terminate() == 0
    assert impostor_run.terminate() == 0
    kept = Buffer(impostor.data_dir / "buffer.sqlite")
    assert kept.depth > 0, "the records the broker refused must stay in the gateway's buffer"
    kept.close()


def test_an_ingest_refused_by_the_broker_logs_it_and_keeps_trying(
    tmp_path: Path, secured: Secured, pg_url: str, processes
) -> None:
    """A revoked ingest certificate: a clear error, retried with backoff, never a crash."""
    pki = secured.pki
    ingest = processes(
        "ingest-revoked",
        "cloud.entrypoints.cli",
        "ingest",
        "--database-url",
        pg_url,
        "--no-migrate",
        "--broker",
        secured.url,
        "--ca-file",
        str(pki.path("ca.crt")),
        "--cert-file",
        str(pki.path("gw-stolen.crt")),
        "--key-file",
        str(pki.path("gw-stolen.key")),
    )
    wait_until(
        lambda: ingest.text().count("cannot connect to the broker") >= 2,
        30,
        "the ingest to be refused and to try again",
    )
    assert ingest.alive(), ingest.text()
    assert "ingest connected" not in ingest.text()
    assert ingest.terminate() == 0


def test_a_login_with_a_password_goes_over_tls_and_a_wrong_one_is_retried(
    tmp_path: Path, pg_url: str, processes, clock_sensors, monkeypatch
) -> None:
    """Brokers that take passwords: the gateway's from its file, the ingest's from the
    environment; a wrong one is logged as such and retried, never a crash."""
    pki = make_pki(tmp_path / "pki", [], revoked=[])
    passwords = tmp_path / "passwords"
    for user, secret in (("gw-pw", "gateway-secret-1"), ("ingest", "ingest-secret-1")):
        subprocess.run(
            ["mosquitto_passwd", "-b", *([] if passwords.exists() else ["-c"]), str(passwords)]
            + [user, secret],
            check=True,
            capture_output=True,
            timeout=30,
        )
    broker = PrivateMosquitto(
        tmp_path / "broker",
        extra=(
            f"tls_version tlsv1.2\ncafile {pki.path('ca.crt')}\n"
            f"certfile {pki.path('broker.crt')}\nkeyfile {pki.path('broker.key')}\n"
            f"password_file {passwords}\nallow_anonymous false\n"
        ),
    ).start()
    try:
        secured = Secured(broker, pki, f"mqtts://127.0.0.1:{broker.port}")
        ingest_cmd = (
            "cloud.entrypoints.cli",
            "ingest",
            "--database-url",
            pg_url,
            "--no-migrate",
            "--broker",
            secured.url,
            "--ca-file",
            str(pki.path("ca.crt")),
            "--username",
            "ingest",
            "--session-expiry",
            "600",
        )
        monkeypatch.setenv("COLDCHAIN_BROKER_PASSWORD", "not-the-password")
        wrong = processes("ingest-wrong", *ingest_cmd, "--client-id", "ingest-wrong")
        wait_until(
            # Mosquitto 2.0 answers "Not authorized", later ones "Bad user name or password"
            lambda: len(re.findall(REFUSED_LOGIN, wrong.text())) >= 2,
            30,
            "the wrong password to be refused, and tried again",
        )
        assert wrong.alive(), wrong.text()
        assert "certificate refused or revoked" not in wrong.text()
        assert wrong.terminate() == 0

        monkeypatch.setenv("COLDCHAIN_BROKER_PASSWORD", "ingest-secret-1")
        start_ingest(processes, "ingest", (*ingest_cmd, "--client-id", "ingest-right"))
        made = make_gateway_config(tmp_path / "gw", sensors=2)
        config = yaml.safe_load(made.config.read_text())
        config["id"] = "gw-pw"
        (made.config.parent / "gw-pw.password").write_text("gateway-secret-1\n")
        config["mqtt"].update(
            port=broker.port,
            username="gw-pw",
            password_file="gw-pw.password",  # relative to the config file
            tls={"ca_file": str(pki.path("ca.crt"))},
        )
        made.config.write_text(yaml.safe_dump(config, sort_keys=False))
        gateway = conftest.TestGateway("gw-pw", made.site, made.config, made.data_dir)
        clock_sensors(gateway)
        run_gateway(processes, gateway)
        wait_until(lambda: stored(pg_url, "gw-pw") >= 5, 60, "readings over TLS with a password")
        assert "u'gw-pw'" in broker.log()
    finally:
        broker.stop()


def test_a_certificate_revoked_later_is_refused_after_sighup(secured: Secured) -> None:
    """The operations how-to: regenerate the CRL, SIGHUP Mosquitto, the certificate is out."""
    assert connects(secured, "gw-spare")
    secured.pki.revoke("gw-stolen", "gw-spare")
    seen = len(secured.broker.log())
    assert secured.broker.proc is not None
    secured.broker.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "Reloading config" in secured.broker.log()[seen:], 10, "the reload")
    wait_until(lambda: not connects(secured, "gw-spare"), 15, "gw-spare to be refused")
    assert connects(secured, "gw-good"), "a certificate not revoked is still accepted"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--broker", "http://127.0.0.1:1883"], {}, "scheme 'http' is not supported"),
        (["--broker", "mqtt://ingest:pw@127.0.0.1"], {}, "no credentials in the address"),
        (
            ["--broker", "mqtt://127.0.0.1:1883", "--ca-file", "ca.crt"],
            {},
            "--ca-file given, but the broker mqtt://127.0.0.1:1883 is plain MQTT",
        ),
        (
            ["--broker", "mqtt://127.0.0.1:1883", "--username", "ingest"],
            {"COLDCHAIN_BROKER_PASSWORD": "secret-1"},
            "a password is sent only over TLS",
        ),
        (
            ["--broker", "mqtts://127.0.0.1", "--cert-file", "missing.crt"],
            {},
            "--cert-file and --key-file go together",
        ),
        (
            ["--broker", "mqtts://127.0.0.1", "--ca-file", "missing-ca.crt"],
            {},
            "no such file 'missing-ca.crt'",
        ),
    ],
)
def test_the_ingest_refuses_a_broker_it_must_not_use(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    result = cli(
        "cloud.entrypoints.cli",
        "ingest",
        "--database-url",
        f"sqlite:///{tmp_path / 'never.sqlite'}",
        *args,
        env=env,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr, result.stderr
    assert "secret-1" not in result.stdout + result.stderr
    assert not (tmp_path / "never.sqlite").exists()


def test_a_gateway_that_cannot_log_in_as_configured_says_which_setting(tmp_path: Path) -> None:
    made = make_gateway_config(tmp_path, sensors=1)
    config = yaml.safe_load(made.config.read_text())
    config["mqtt"].update(port=8883, tls={"cert_file": "gw.crt", "key_file": "gw.key"})
    made.config.write_text(yaml.safe_dump(config, sort_keys=False))
    result = cli("edge.cli", "run", str(made.config), "--data-dir", str(made.data_dir))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "mqtt.tls.cert_file: no such file" in result.stderr, result.stderr

    config["mqtt"].update(username="gw", password_env="GW_TEST_PASSWORD", tls={})
    made.config.write_text(yaml.safe_dump(config, sort_keys=False))
    plain = cli(
        "edge.cli",
        "run",
        str(made.config),
        "--data-dir",
        str(made.data_dir),
        "--broker",
        "mqtt://127.0.0.1:1883",
        env={"GW_TEST_PASSWORD": "secret-1"},
    )
    assert plain.returncode == 2, plain.stdout + plain.stderr
    assert "sent only over TLS: use mqtts://" in plain.stderr, plain.stderr
    assert "secret-1" not in plain.stdout + plain.stderr
