"""How a gateway reaches its broker: the address (the config's, or --broker), TLS, the login.

The scheme of a --broker override decides TLS: mqtts keeps the config's certificates (or
verifies against the system's CAs without them); mqtt drops the config's TLS (the demo's
plaintext broker), but never with a password, which goes over TLS only.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

from edge import wire
from edge.config import MqttSettings, TlsSettings

log = logging.getLogger(__name__)


class BrokerLoginError(Exception):
    """The broker cannot be reached as configured; str() names the setting and the reason."""


def settings_for(settings: MqttSettings, broker: wire.BrokerAddress | None) -> MqttSettings:
    """The config's broker settings, with a --broker override applied."""
    if broker is None:
        return settings
    tls = settings.tls
    if broker.tls and tls is None:
        tls = TlsSettings()
    elif not broker.tls and tls is not None:
        if settings.has_password:
            raise BrokerLoginError(
                f"--broker {broker.url}: the config has a password (mqtt.password_file or "
                "mqtt.password_env), sent only over TLS: use mqtts://"
            )
        log.warning("--broker %s is plain MQTT: the config's mqtt.tls is not used", broker.url)
        tls = None
    return settings.model_copy(update={"host": broker.host, "port": broker.port, "tls": tls})


def address(settings: MqttSettings) -> wire.BrokerAddress:
    return wire.BrokerAddress(settings.host, settings.port, settings.tls is not None)


def tls_context(tls: TlsSettings, config_dir: Path) -> ssl.SSLContext:
    """TLS 1.2 at least, the broker verified; file errors name the setting."""
    paths = {
        name: None if value is None else str(config_dir / value)
        for name, value in (
            ("ca_file", tls.ca_file),
            ("cert_file", tls.cert_file),
            ("key_file", tls.key_file),
        )
    }
    for name, path in paths.items():
        if path is not None and not Path(path).is_file():
            raise BrokerLoginError(f"mqtt.tls.{name}: no such file {path!r}")
    try:
        return wire.client_tls(paths["ca_file"], paths["cert_file"], paths["key_file"])
    except ssl.SSLError as exc:
        raise BrokerLoginError(
            f"mqtt.tls: cannot use {paths['ca_file']!r}, {paths['cert_file']!r}, "
            f"{paths['key_file']!r}: {exc.reason or exc}"
        ) from None


def password(settings: MqttSettings, config_dir: Path) -> str | None:
    """The password from its file (relative to the config) or environment variable."""
    if settings.password_file is not None:
        path = config_dir / settings.password_file
        try:
            text = path.read_text().rstrip("\r\n")
        except OSError as exc:
            raise BrokerLoginError(
                f"mqtt.password_file: cannot read {str(path)!r}: {exc.strerror}"
            ) from None
        if not text:
            raise BrokerLoginError(f"mqtt.password_file: {str(path)!r} is empty")
        return text
    if settings.password_env is not None:
        text = os.environ.get(settings.password_env, "")
        if not text:
            raise BrokerLoginError(
                f"mqtt.password_env: the environment variable {settings.password_env} "
                "is not set or empty"
            )
        return text
    return None
