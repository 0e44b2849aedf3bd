"""The ingest's way into the broker: TLS (mqtts) with a client certificate, and a login.

The password is never an option of its own (it would show in the process list): it comes
from COLDCHAIN_BROKER_PASSWORD or a file, and only over TLS.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from edge.wire import BrokerAddress, client_tls

F = TypeVar("F", bound=Callable[..., Any])
PASSWORD_ENV = "COLDCHAIN_BROKER_PASSWORD"


@dataclass(frozen=True)
class BrokerLogin:
    """How to connect: TLS (None: plain MQTT), the user name and password (None: none)."""

    tls: ssl.SSLContext | None = None
    username: str | None = None
    password: str | None = None


def broker_options(command: F) -> F:
    """The --broker option and the TLS and login options that go with it."""
    options = [
        click.option(
            "--broker",
            envvar="COLDCHAIN_BROKER",
            default="mqtt://127.0.0.1:1883",
            show_default=True,
            help="mqtts://host[:8883] for TLS (1.2 at least, the broker's certificate and "
            "host name verified), or mqtt://host[:1883].",
        ),
        click.option(
            "--ca-file",
            envvar="COLDCHAIN_BROKER_CA_FILE",
            type=click.Path(dir_okay=False, path_type=Path),
            help="CA certificates the broker's certificate is verified against (mqtts; "
            "default: the system's).",
        ),
        click.option(
            "--cert-file",
            envvar="COLDCHAIN_BROKER_CERT_FILE",
            type=click.Path(dir_okay=False, path_type=Path),
            help="The ingest's client certificate (mqtts); its CN is its broker user name.",
        ),
        click.option(
            "--key-file",
            envvar="COLDCHAIN_BROKER_KEY_FILE",
            type=click.Path(dir_okay=False, path_type=Path),
            help="The client certificate's private key.",
        ),
        click.option("--username", envvar="COLDCHAIN_BROKER_USERNAME", help="Broker user name."),
        click.option(
            "--password-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help=f"A file holding the broker password (or set {PASSWORD_ENV}); mqtts only.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def broker_login(
    address: BrokerAddress,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    username: str | None,
    password_file: Path | None,
) -> BrokerLogin:
    """The options checked together; a mistake is a click.BadParameter naming the option."""
    tls_options = {"--ca-file": ca_file, "--cert-file": cert_file, "--key-file": key_file}
    if not address.tls:
        given = [name for name, value in tls_options.items() if value is not None]
        if given:
            raise click.BadParameter(
                f"{', '.join(given)} given, but the broker {address.url} is plain MQTT: "
                "use mqtts://",
                param_hint="--broker",
            )
    if (cert_file is None) != (key_file is None):
        raise click.BadParameter("--cert-file and --key-file go together", param_hint="--key-file")
    for name, path in tls_options.items():
        if path is not None and not path.is_file():
            raise click.BadParameter(f"no such file {str(path)!r}", param_hint=name)
    password = _password(password_file)
    if password is not None:
        if username is None:
            raise click.BadParameter("a password needs a user name", param_hint="--username")
        if not address.tls:
            raise click.BadParameter(
                f"a password is sent only over TLS; the broker {address.url} is plain MQTT: "
                "use mqtts://",
                param_hint="--broker",
            )
    tls = None
    if address.tls:
        try:
            tls = client_tls(
                None if ca_file is None else str(ca_file),
                None if cert_file is None else str(cert_file),
                None if key_file is None else str(key_file),
            )
        except ssl.SSLError as exc:
            raise click.BadParameter(
                f"cannot use the CA, certificate or key: {exc.reason or exc}",
                param_hint="--ca-file/--cert-file/--key-file",
            ) from None
    return BrokerLogin(tls, username, password)


def _password(password_file: Path | None) -> str | None:
    if password_file is not None:
        try:
            text = password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {str(password_file)!r}: {exc.strerror}", param_hint="--password-file"
            ) from None
        if not text:
            raise click.BadParameter(
                f"{str(password_file)!r} is empty", param_hint="--password-file"
            )
        return text
    return os.environ.get(PASSWORD_ENV) or None
