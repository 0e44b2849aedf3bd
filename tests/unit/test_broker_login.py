"""Broker addresses (mqtt, mqtts), the gateway's TLS and login settings, and their refusals."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
import yaml

from edge import broker_login
from edge.broker_login import BrokerLoginError
from edge.config import ConfigError, MqttSettings, TlsSettings, load_gateway
from edge.wire import BrokerAddress, client_tls
from tests.conftest import SENSORS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtts://broker.example:8883", BrokerAddress("broker.example", 8883, tls=True)),
        ("mqtts://broker.example", BrokerAddress("broker.example", 8883, tls=True)),
        ("mqtt://10.0.0.5:8883", BrokerAddress("10.0.0.5", 8883)),
        ("mqtt://10.0.0.5", BrokerAddress("10.0.0.5", 1883)),
        ("mqtts://[::1]:9883", BrokerAddress("::1", 9883, tls=True)),
        ("localhost:1883", BrokerAddress("localhost", 1883)),
    ],
)
def test_broker_addresses_that_parse(text: str, expected: BrokerAddress) -> None:
    assert BrokerAddress.parse(text) == expected
    assert BrokerAddress.parse(expected.url) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://broker:80", "scheme 'http' is not supported (mqtt or mqtts)"),
        ("ssl://broker:8883", "scheme 'ssl' is not supported"),
        ("ws://broker:9001", "scheme 'ws' is not supported"),
        ("mqtts://ingest:s3cret@broker:8883", "no credentials in the address"),
        ("mqtt://broker:99999", "the port is not a number 1-65535"),
        ("mqtt://broker:x", "the port is not a number 1-65535"),
        ("mqtt://:1883", "is not mqtt://host:port or mqtts://host:port"),
        ("mqtts://broker:8883/topic", "is not mqtt://host:port or mqtts://host:port"),
        ("broker", "is not mqtt://host:port or mqtts://host:port"),
        ("broker:0", "is not mqtt://host:port or mqtts://host:port"),
    ],
)
def test_broker_addresses_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        BrokerAddress.parse(text)
    assert "s3cret" not in str(caught.value), "a password must never be echoed"


def test_client_tls_is_tls_1_2_at_least_and_verifies_the_broker() -> None:
    context = client_tls()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def settings_problem(**fields: object) -> str:
    with pytest.raises(ValueError) as caught:
        MqttSettings.model_validate(fields)
    return str(caught.value)


def test_a_password_needs_tls_and_names_the_field() -> None:
    problem = settings_problem(username="gw1", password_file="secret")
    assert "password_file: a password is sent only over TLS" in problem
    problem = settings_problem(username="gw1", password_env="GW_PASSWORD", port=1883)
    assert "password_env: a password is sent only over TLS" in problem


def test_a_password_is_never_in_the_config_itself() -> None:
    problem = settings_problem(username="gw1", password="hunter2", tls={})
    assert "password: never in the config file; give password_file or password_env" in problem


def test_password_settings_are_checked_together() -> None:
    assert "a password needs a username" in settings_problem(password_env="P", tls={})
    both = settings_problem(username="u", password_env="P", password_file="f", tls={})
    assert "give one of them, not both" in both
    assert "cert_file and key_file go together" in settings_problem(tls={"cert_file": "gw.crt"})
    ok = MqttSettings(username="u", password_env="P", tls=TlsSettings())
    assert ok.has_password


def gateway_yaml(directory: Path, mqtt: dict[str, object]) -> Path:
    config = {
        "id": "gw1",
        "site": {"id": "s1", "name": "Site", "kind": "warehouse"},
        "mqtt": mqtt,
        "zones": [{"id": "z1", "name": "Cold room"}],
        "devices": [
            {
                "id": "d1",
                "zone": "z1",
                "register_map": str(SENSORS / "xy-md02.yaml"),
                "transport": {"host": "127.0.0.1"},
            }
        ],
    }
    path = directory / "gw1.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_plaintext_password_in_a_gateway_config_is_refused_with_its_line(tmp_path) -> None:
    path = gateway_yaml(tmp_path, {"port": 1883, "username": "gw1", "password_file": "pw"})
    with pytest.raises(ConfigError) as caught:
        load_gateway(path)
    assert "line 6: mqtt: password_file: a password is sent only over TLS" in str(caught.value)


def test_an_mqtts_override_keeps_the_certificates_and_mqtt_drops_them() -> None:
    tls = TlsSettings(ca_file="ca.crt", cert_file="gw1.crt", key_file="gw1.key")
    settings = MqttSettings(port=8883, tls=tls)
    over_tls = broker_login.settings_for(settings, BrokerAddress.parse("mqtts://b.example"))
    assert (over_tls.host, over_tls.port, over_tls.tls) == ("b.example", 8883, tls)
    plain = broker_login.settings_for(settings, BrokerAddress.parse("mqtt://127.0.0.1:1883"))
    assert (plain.port, plain.tls) == (1883, None)
    system_cas = broker_login.settings_for(MqttSettings(), BrokerAddress.parse("mqtts://b"))
    assert system_cas.tls == TlsSettings()
    assert broker_login.settings_for(settings, None) is settings


def test_a_plain_override_never_carries_a_password() -> None:
    settings = MqttSettings(username="gw1", password_env="GW_PASSWORD", tls=TlsSettings())
    with pytest.raises(BrokerLoginError, match="sent only over TLS: use mqtts://"):
        broker_login.settings_for(settings, BrokerAddress.parse("mqtt://127.0.0.1:1883"))


def test_login_files_are_named_when_missing_or_empty(tmp_path, monkeypatch) -> None:
    with pytest.raises(BrokerLoginError, match=r"mqtt.tls.cert_file: no such file .*gw1.crt"):
        broker_login.tls_context(TlsSettings(cert_file="gw1.crt", key_file="gw1.key"), tmp_path)
    settings = MqttSettings(username="gw1", password_file="pw", tls=TlsSettings())
    with pytest.raises(BrokerLoginError, match="mqtt.password_file: cannot read"):
        broker_login.password(settings, tmp_path)
    (tmp_path / "pw").write_text("\n")
    with pytest.raises(BrokerLoginError, match="mqtt.password_file: .* is empty"):
        broker_login.password(settings, tmp_path)
    (tmp_path / "pw").write_text("correct horse\n")
    assert broker_login.password(settings, tmp_path) == "correct horse"
    from_env = MqttSettings(username="gw1", password_env="GW1_MQTT_PASSWORD", tls=TlsSettings())
    monkeypatch.delenv("GW1_MQTT_PASSWORD", raising=False)
    with pytest.raises(BrokerLoginError, match="GW1_MQTT_PASSWORD is not set or empty"):
        broker_login.password(from_env, tmp_path)
    monkeypatch.setenv("GW1_MQTT_PASSWORD", "battery staple")
    assert broker_login.password(from_env, tmp_path) == "battery staple"
