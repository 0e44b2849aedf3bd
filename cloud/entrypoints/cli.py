"""coldchain-cloud: migrate the database, run an ingest worker, run the embedded broker."""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from cloud.domain.access import SCOPES, TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX
from cloud.domain.plausibility import EARLIEST_PLAUSIBLE, FUTURE_SKEW, TimeWindow
from cloud.entrypoints.broker_login import broker_login, broker_options

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

DEFAULT_DB = "sqlite:///data/coldchain.sqlite"


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@click.group()
def main() -> None:
    """Cold-chain cloud service."""


@main.command()
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
@click.option(
    "--app-role",
    default=None,
    help="PostgreSQL: after migrating (as the owner), give this application role its rights "
    "(records read and written, the audit trail only read); see db-roles.",
)
def migrate(database_url: str, app_role: str | None) -> None:
    """Create or upgrade the database schema, and the audit trail's triggers."""
    from cloud.adapters.migrate import upgrade

    _logging(False)
    upgrade(database_url)
    click.echo(f"database at head: {database_url}")
    if app_role is not None:
        _grant(database_url, app_role, None)


def _grant(owner_url: str, app_role: str, password: str | None) -> None:
    from sqlalchemy.exc import DBAPIError

    from cloud.adapters.audit_database import create_login_role, grant_application_role
    from cloud.adapters.engine import make_engine

    engine = make_engine(owner_url)
    if engine.dialect.name != "postgresql":
        raise click.ClickException("database roles are for PostgreSQL (SQLite has none)")
    try:
        with _disposing(engine), engine.begin() as conn:
            if create_login_role(conn, app_role, password):
                click.echo(f"created login role {app_role}")
            grant_application_role(conn, app_role)
    except DBAPIError as exc:
        raise click.ClickException(
            f"cannot set up role {app_role} as {engine.url.username}: {exc.orig} (the owner "
            f"needs CREATEROLE to create it; or create it first: CREATE ROLE {app_role} LOGIN)"
        ) from exc
    click.echo(
        f"{app_role} may read and write the records and only read the audit trail; run the "
        f"ingest, API, control room and scheduler as {app_role}, migrations as "
        f"{engine.url.username}"
    )


@main.command("db-roles")
@click.option(
    "--owner-url",
    envvar="COLDCHAIN_OWNER_DATABASE_URL",
    required=True,
    help="Connects as the role that owns the schema and runs the migrations.",
)
@click.option("--app-role", required=True, help="The role the application processes log in as.")
@click.option(
    "--app-password-stdin", is_flag=True, help="Read the new role's password from standard input."
)
def db_roles(owner_url: str, app_role: str, app_password_stdin: bool) -> None:
    """PostgreSQL: migrate as the owner, create the application role if it does not exist,
    and give it rights to the records but not to rewrite the audit trail."""
    from cloud.adapters.migrate import upgrade

    _logging(False)
    password = sys.stdin.readline().rstrip("\r\n") if app_password_stdin else None
    upgrade(owner_url)
    click.echo("database at head, audit triggers in place")
    _grant(owner_url, app_role, password)


@main.command("audit-key")
def audit_key() -> None:
    """Print a new random audit key (keep it in a file only the sealing processes can read)."""
    import secrets

    click.echo(secrets.token_hex(32))


@main.command()
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
@broker_options
@click.option(
    "--client-id",
    default="coldchain-ingest-1",
    show_default=True,
    help="Stable per worker: the broker keeps its session while it is down.",
)
@click.option(
    "--shared/--no-shared",
    default=False,
    show_default=True,
    help="Join the shared subscription group (several workers split the load). Mosquitto 2.0 "
    "forgets shared subscriptions when it restarts, so messages published before the workers "
    "reconnect are lost: use it with a broker that persists them.",
)
@click.option("--group", default="ingest", show_default=True, help="Shared subscription group.")
@click.option(
    "--session-expiry",
    type=int,
    default=7 * 24 * 3600,
    show_default=True,
    help="Seconds the broker keeps this worker's session and queue while it is down.",
)
@click.option("--mqtt-version", type=click.Choice(["5", "3.1.1"]), default="5", show_default=True)
@click.option("--migrate/--no-migrate", "run_migrations", default=True, show_default=True)
@click.option(
    "--rules-in",
    type=click.Choice(["auto", "thread", "process"]),
    default="auto",
    show_default=True,
    help="Run the cold-chain rules in a thread of the worker or a process of their own "
    "(auto: a process on PostgreSQL, a thread on SQLite).",
)
@click.option(
    "--future-skew",
    envvar="COLDCHAIN_FUTURE_SKEW",
    type=click.FloatRange(min=0, max=24 * 3600),
    default=FUTURE_SKEW.total_seconds(),
    show_default=True,
    help="Seconds a reading may be stamped after the cloud's clock; later ones are quarantined.",
)
@click.option(
    "--earliest-plausible",
    envvar="COLDCHAIN_EARLIEST_PLAUSIBLE",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=EARLIEST_PLAUSIBLE.strftime("%Y-%m-%d"),
    show_default=True,
    help="UTC date before which no gateway took a reading (a clock not yet synchronised "
    "stamps 1970); earlier ones are quarantined.",
)
@click.option("-v", "--verbose", is_flag=True)
def ingest(
    database_url: str,
    broker: str,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    username: str | None,
    password_file: Path | None,
    client_id: str,
    shared: bool,
    group: str,
    session_expiry: int,
    mqtt_version: str,
    run_migrations: bool,
    rules_in: str,
    future_skew: float,
    earliest_plausible: datetime,
    verbose: bool,
) -> None:
    """Store what the gateways publish; acknowledge only after the commit."""
    from cloud import bootstrap
    from cloud.entrypoints.ingest import IngestWorker
    from cloud.entrypoints.runtime import calm_collector
    from edge.wire import BrokerAddress

    _logging(verbose)
    if not math.isfinite(future_skew):
        raise click.BadParameter("must be a finite number of seconds", param_hint="--future-skew")
    window = TimeWindow(
        skew=timedelta(seconds=future_skew), earliest=earliest_plausible.replace(tzinfo=UTC)
    )
    if window.earliest > datetime.now(UTC):
        raise click.BadParameter("is in the future", param_hint="--earliest-plausible")
    try:
        address = BrokerAddress.parse(broker)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--broker") from None
    login = broker_login(address, ca_file, cert_file, key_file, username, password_file)
    wiring = bootstrap.ingest(database_url, migrate=run_migrations, rules_in=rules_in)
    worker = IngestWorker(
        wiring.store,
        address.host,
        address.port,
        login=login,
        client_id=client_id,
        shared=shared,
        group=group,
        session_expiry_s=session_expiry,
        protocol=mqtt_version,
        rules_process=wiring.rules_process,
        time_window=window,
    )
    calm_collector()
    worker.start()
    _wait_for_signal()
    worker.stop()
    logging.getLogger(__name__).info("ingest stopped: %d readings written", worker.written)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=1883, show_default=True)
def broker(host: str, port: int) -> None:
    """Run the embedded MQTT broker (amqtt) in the foreground."""
    from cloud.adapters.broker import EmbeddedBroker

    _logging(False)
    embedded = EmbeddedBroker(host, port).start()
    click.echo(f"broker listening on {embedded.url}")
    _wait_for_signal()
    embedded.stop()


AUDIT_KEY_FILE = click.option(
    "--audit-key-file",
    envvar="COLDCHAIN_AUDIT_KEY_FILE",
    type=click.Path(dir_okay=False),
    help="The audit trail's key [or COLDCHAIN_AUDIT_KEY].",
)


@main.command("access-table")
def access_table_command() -> None:
    """Print who may do what (the role-by-action table of docs/security.md) as Markdown."""
    from cloud.domain.access import access_table

    click.echo(access_table(), nl=False)


@main.command("verify-audit")
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
@AUDIT_KEY_FILE
@click.option(
    "--checkpoints",
    envvar="COLDCHAIN_AUDIT_CHECKPOINTS",
    type=click.Path(dir_okay=False),
    help="The file of signed heads the scheduler writes (JSON lines); each must still match.",
)
@click.option(
    "--seal/--no-seal",
    default=True,
    show_default=True,
    help="Seal the entries that have no seal yet, once the trail verified intact.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Minutes an entry may wait for its seal before it is reported.",
)
def verify_audit(
    database_url: str, audit_key_file: str | None, checkpoints: str | None, seal: bool, grace: float
) -> None:
    """Verify the audit trail's keyed chain; exit 1 naming the first entry edited, deleted,
    moved or not matching a checkpoint; exit 2 if it cannot be read or there is no key."""
    from datetime import timedelta
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from cloud import bootstrap
    from cloud.adapters.audit_seals import read_checkpoints, seal_pending, verify_trail
    from cloud.domain.audit_chain import AuditKeyError

    try:
        key = bootstrap.audit_key(audit_key_file)
        if key is None:
            raise AuditKeyError(
                "no audit key: give --audit-key-file, COLDCHAIN_AUDIT_KEY_FILE or "
                "COLDCHAIN_AUDIT_KEY"
            )
        heads = read_checkpoints(Path(checkpoints), key) if checkpoints else []
    except (OSError, ValueError) as exc:  # AuditKeyError is a ValueError
        click.echo(f"cannot verify the audit trail: {exc}", err=True)
        sys.exit(2)
    engine = bootstrap.database(database_url).engine
    with _disposing(engine):
        try:
            report = verify_trail(engine, key, heads, grace=timedelta(minutes=grace))
            sealed = seal_pending(engine, key) if seal and report.intact else 0
        except SQLAlchemyError as exc:
            click.echo(f"cannot read the audit trail at {database_url}: {exc}", err=True)
            sys.exit(2)
        except AuditKeyError as exc:
            click.echo(f"cannot seal the audit trail: {exc}", err=True)
            sys.exit(2)
    for note in report.notes():
        click.echo(f"note: {note}", err=True)
    if report.problem is not None:
        click.echo(
            f"audit trail BROKEN at {report.problem} ({report.checked} entries intact before it)",
            err=True,
        )
        sys.exit(1)
    matched = f", {report.checkpoints} checkpoints match" if checkpoints else ""
    click.echo(f"audit trail intact: {report.checked} entries checked, head {report.head}{matched}")
    if sealed:
        click.echo(f"sealed {sealed} entries that had no seal yet")


@main.command("create-user")
@click.argument("username")
@click.option("--full-name", required=True, help="The printed name shown on signatures.")
@click.option("--role", type=click.Choice(["viewer", "operator", "qa", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--machine", is_flag=True, help="A machine user: no password, acts only through tokens."
)
@click.option(
    "--actor",
    default=None,
    help="Who creates the account, for the audit trail [default: cli:<login name>].",
)
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
def create_user(
    username: str,
    full_name: str,
    role: str,
    password_stdin: bool,
    machine: bool,
    actor: str | None,
    database_url: str,
) -> None:
    """Add a user in the role at once, for the installer (the creation lands in the audit
    trail); admins add users through the API, where a second admin confirms the role."""
    import getpass
    import secrets

    from cloud.service_layer.signatures import create_user as add_user

    if machine:
        password = secrets.token_urlsafe(32)  # never told: a machine cannot log in
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session(database_url) as session:
        session.info["actor"] = actor or f"cli:{getpass.getuser()}"
        try:
            kind = "machine" if machine else "person"
            user = add_user(session, username, full_name, role, password, kind=kind)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(f"created {user.role} {user.username} ({user.full_name})")


@main.command("unlock-user")
@click.argument("username")
@click.option("--reason", required=True, help="Why the account is unlocked (audited).")
@click.option("--actor", default=None, help="Who unlocks it [default: cli:<login name>].")
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
def unlock_user(username: str, reason: str, actor: str | None, database_url: str) -> None:
    """Unlock an account locked after wrong passwords (when no admin can log in to do it)."""
    from cloud.service_layer.accounts import unlock
    from cloud.service_layer.signatures import user_named

    with _session(database_url) as session:
        session.info["actor"] = _actor(actor)
        user = user_named(session, username)
        if user is None:
            raise click.ClickException(f"user {username!r} does not exist")
        try:
            unlock(session, user, reason)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(f"unlocked {username}")


@main.group("api-token")
def api_token() -> None:
    """Bearer tokens for machines (scanners, integrations), acting as a user."""


def _actor(actor: str | None) -> str:
    import getpass

    return actor or f"cli:{getpass.getuser()}"


DATABASE = click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
ACTOR = click.option(
    "--actor", default=None, help="Who acts, for the audit trail [default: cli:<login name>]."
)


@api_token.command("create")
@click.argument("username")
@click.option("--name", required=True, help="What uses the token, e.g. 'dock scanner 3'.")
@click.option(
    "--issuer",
    required=True,
    help="The admin who issues it: to themselves or to a machine user, never to a person.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="What the token may do (repeat for several).",
)
@click.option(
    "--days", type=click.IntRange(1, TOKEN_DAYS_MAX), default=TOKEN_DAYS_DEFAULT, show_default=True
)
@ACTOR
@DATABASE
def api_token_create(
    username: str,
    name: str,
    issuer: str,
    scopes: tuple[str, ...],
    days: int,
    actor: str | None,
    database_url: str,
) -> None:
    """Issue a scoped, expiring token for USERNAME; the secret is printed once, here."""
    from cloud.service_layer.signatures import existing_user
    from cloud.service_layer.tokens import TokenRefused, issue_token

    with _session(database_url) as session:
        session.info["actor"] = _actor(actor)
        try:
            admin = existing_user(session, issuer)
            token, secret = issue_token(
                session, username, name, issuer=admin, scopes=scopes, days=days
            )
        except (LookupError, ValueError, TokenRefused) as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(
        f"token {token.id} ({name}) for {username}, scopes {token.scopes}, expires "
        f"{token.expires_at:%Y-%m-%d}; store it now, it is not shown again:"
    )
    click.echo(secret)


@api_token.command("list")
@DATABASE
def api_token_list(database_url: str) -> None:
    """Tokens with their user, hint and state (never the secrets)."""
    from sqlalchemy import select

    from cloud.adapters.orm.people import ApiToken, User

    with _session(database_url) as session:
        rows = session.execute(
            select(ApiToken, User.username)
            .join(User, User.id == ApiToken.user_id)
            .order_by(ApiToken.id)
        ).all()
    click.echo(
        f"{'id':>4}  {'user':<16}{'name':<28}{'hint':<12}{'created':<22}{'expires':<12}"
        f"{'scopes':<32}state"
    )
    for token, username in rows:
        state = "live" if token.revoked_at is None else f"revoked {token.revoked_at:%Y-%m-%d %H:%M}"
        click.echo(
            f"{token.id:>4}  {username:<16}{token.name:<28}{token.hint:<12}"
            f"{token.created_at:%Y-%m-%d %H:%M} UTC  {token.expires_at:%Y-%m-%d}  "
            f"{token.scopes or '(none)':<32}{state}"
        )


@api_token.command("revoke")
@click.argument("token_id", type=int)
@click.option("--reason", required=True, help="Why, for the audit trail.")
@ACTOR
@DATABASE
def api_token_revoke(token_id: int, reason: str, actor: str | None, database_url: str) -> None:
    """Revoke token TOKEN_ID: its holder is refused from the next request on."""
    from cloud.service_layer.tokens import revoke_token

    with _session(database_url) as session:
        session.info.update(actor=_actor(actor), reason=reason)
        try:
            revoke_token(session, token_id)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    click.echo(f"token {token_id} revoked")


@contextmanager
def _disposing(engine: Engine) -> Iterator[None]:
    try:
        yield
    finally:
        engine.dispose()


@contextmanager
def _session(database_url: str) -> Iterator[Session]:
    """A session on the database for one command; the engine is closed afterwards."""
    from cloud import bootstrap

    db = bootstrap.database(database_url)
    with _disposing(db.engine), db.sessions() as session:
        yield session


def _instant(_ctx: object, _param: object, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from exc
    if parsed.utcoffset() is None:
        raise click.BadParameter(f"{value!r} has no offset: add Z or +01:00")
    return parsed


@main.command()
@click.option("--zone", "zones", multiple=True, help="A zone to check (repeat); default: all.")
@click.option("--since", callback=_instant, help="ISO 8601 with offset [default: two days ago].")
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
def reconcile(zones: tuple[str, ...], since: datetime | None, database_url: str) -> None:
    """Recompute zones' excursions from their readings; exit 1 if the record differs."""
    from cloud.service_layer.rules import reconcile as rules_check

    _logging(False)
    with _session(database_url) as session:
        session.info["actor"] = "cli:reconcile"
        try:
            reports = rules_check.reconcile(session, list(zones) or None, since)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()  # the alerts it raised
    for report in reports:
        verdict = "agrees" if report.agrees else f"{len(report.differences)} difference(s)"
        click.echo(f"{report.zone_id} since {report.since.isoformat()}: {verdict}")
        for difference in report.differences:
            click.echo(f"  {difference.text()}")
    if not all(r.agrees for r in reports):
        sys.exit(1)


@main.command("epcis-export")
@click.option("--batch", help="Batch id, or its lot.")
@click.option("--item", help="Item: EPC (hex), (01)<gtin>(21)<serial> or <gtin>+<serial>.")
@click.option("--from", "start", callback=_instant, help="ISO 8601 with offset.")
@click.option("--to", "end", callback=_instant, help="ISO 8601 with offset.")
@click.option("--sensors", is_flag=True, help="Add each stay's temperatures (sensorElementList).")
@click.option(
    "--validate",
    "schema",
    type=click.Path(exists=True, dir_okay=False),
    help="Check the document against this EPCIS JSON schema; exit 1 if invalid.",
)
@click.option("-o", "--output", type=click.File("w"), default="-", show_default=True)
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
def epcis_export(
    batch: str | None,
    item: str | None,
    start: datetime | None,
    end: datetime | None,
    sensors: bool,
    schema: str | None,
    output: TextIO,
    database_url: str,
) -> None:
    """Export custody of a batch, an item or a time range as an EPCIS 2.0 document."""
    import json

    from sqlalchemy import select

    from cloud.adapters.epcis_schema import validate
    from cloud.adapters.orm.traceability import Batch
    from cloud.service_layer.custody import item_by_reference
    from cloud.service_layer.epcis_export import Selection, batch_selection, export_document

    with _session(database_url) as session:
        try:
            if batch is not None:
                key = Batch.id == int(batch) if batch.isdigit() else Batch.lot == batch
                found = session.scalars(select(Batch).where(key)).all()
                if len(found) != 1:
                    raise click.ClickException(f"batch {batch}: {len(found)} batches match")
                selection = batch_selection(session, found[0].id, start, end)
            elif item is not None:
                row = item_by_reference(session, item)
                if row is None:
                    raise click.ClickException(f"item {item} is not registered")
                selection = Selection(frozenset({row.id}), start, end)
            else:
                selection = Selection(None, start, end)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        doc = export_document(session, selection, sensors=sensors)
    if schema is not None:
        problems = validate(doc, schema)
        if problems:
            raise click.ClickException("invalid EPCIS document: " + "; ".join(problems[:5]))
    output.write(json.dumps(doc, indent=2) + "\n")
    count = len(doc["epcisBody"]["eventList"])
    click.echo(f"{count} events exported", err=True)


@main.command("epcis-import")
@click.argument("document", type=click.File("r"))
@click.option(
    "--actor", default=None, help="Who imports, for the scans [default: cli:<login name>]."
)
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
def epcis_import(document: TextIO, actor: str | None, database_url: str) -> None:
    """Take a partner's EPCIS 2.0 document into custody; exit 1 if anything was not placed."""
    import getpass
    import json

    from cloud.domain.epcis import EpcisError
    from cloud.service_layer.epcis_import import import_document

    try:
        data = json.load(document)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{document.name}: not JSON: {exc}") from exc
    with _session(database_url) as session:
        try:
            report = import_document(session, data, actor or f"cli:{getpass.getuser()}")
        except EpcisError as exc:
            raise click.ClickException(f"{document.name}: {exc}") from exc
        session.commit()
    click.echo(
        f"{report.events} events: {report.imported} imported ({report.sightings} sightings), "
        f"{report.duplicates} already imported, {len(report.skipped)} skipped"
    )
    for uri in report.unknown_locations:
        click.echo(f"unknown read point or location: {uri}", err=True)
    for uri in report.unknown_epcs:
        click.echo(f"unknown EPC: {uri}", err=True)
    for note in report.skipped:
        click.echo(f"skipped {note}", err=True)
    if report.unknown_locations or report.unknown_epcs:
        sys.exit(1)


@main.command()
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8060, show_default=True)
@click.option("--migrate/--no-migrate", "run_migrations", default=True, show_default=True)
def api(database_url: str, host: str, port: int, run_migrations: bool) -> None:
    """Serve the REST API (development server; use a WSGI server in production).

    Sessions are signed with COLDCHAIN_SECRET_KEY (random per process when unset).
    """
    from cloud.adapters.broker import port_is_free
    from cloud.adapters.migrate import upgrade
    from cloud.entrypoints.api import create_app

    _logging(False)
    if not port_is_free(host, port):
        click.echo(
            f"port {port} on {host} is already in use: stop what holds it or pass --port", err=True
        )
        sys.exit(2)
    if run_migrations:
        upgrade(database_url)
    app = create_app(database_url)
    click.echo(f"REST API on http://{host}:{port}/api (OpenAPI: /api/openapi.json)")
    app.run(host=host, port=port, debug=False)


@main.command()
@click.option(
    "--database-url", envvar="COLDCHAIN_DATABASE_URL", default=DEFAULT_DB, show_default=True
)
@click.option("--interval", type=float, default=30.0, show_default=True, help="Seconds a tick.")
@click.option(
    "--escalate-after",
    default="30,120",
    show_default=True,
    help="Minutes unacknowledged after which an alert goes to tier 1, 2, ... channels.",
)
@click.option(
    "--remind-every", type=float, default=60.0, show_default=True, help="Minutes; 0: off."
)
@click.option(
    "--sequence-grace",
    type=click.FloatRange(min=0),
    default=15.0,
    show_default=True,
    help="Minutes a gap in a gateway's sequence numbers may stay open before it is an alert.",
)
@click.option("--smtp-host", envvar="COLDCHAIN_SMTP_HOST", default="127.0.0.1", show_default=True)
@click.option("--smtp-port", envvar="COLDCHAIN_SMTP_PORT", type=int, default=25, show_default=True)
@click.option("--smtp-from", envvar="COLDCHAIN_SMTP_FROM", default="coldchain@localhost")
@click.option("--smtp-starttls/--no-smtp-starttls", default=False, show_default=True)
@click.option("--smtp-user", envvar="COLDCHAIN_SMTP_USER", default=None)
@click.option("--smtp-password", envvar="COLDCHAIN_SMTP_PASSWORD", default=None)
@click.option(
    "--smtp-ca-file",
    envvar="COLDCHAIN_SMTP_CA_FILE",
    default=None,
    help="CA certificates the SMTP server's certificate is verified against (else the system's).",
)
@click.option(
    "--webhook-allow",
    envvar="COLDCHAIN_WEBHOOK_ALLOW",
    default="",
    help="Hosts and CIDR networks outside the public internet that webhooks may call "
    "(comma-separated); everything else non-public is refused.",
)
@AUDIT_KEY_FILE
@click.option(
    "--checkpoint-file",
    envvar="COLDCHAIN_AUDIT_CHECKPOINTS",
    type=click.Path(dir_okay=False),
    help="Append the audit trail's signed head here (JSON lines), off the database's disks.",
)
@click.option(
    "--checkpoint-url",
    envvar="COLDCHAIN_AUDIT_CHECKPOINT_URL",
    default=None,
    help="Also POST each signed head here as JSON.",
)
@click.option(
    "--checkpoint-every", type=click.FloatRange(min=0.1), default=15.0, show_default=True,
    help="Minutes between checkpoints of the audit trail's head.",
)  # fmt: skip
@click.option(
    "--seal-every", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
    help="Seconds between sealings of new audit entries.",
)  # fmt: skip
@click.option("--once", is_flag=True, help="Run one tick and exit (for cron or a check).")
@click.option("-v", "--verbose", is_flag=True)
def scheduler(
    database_url: str,
    interval: float,
    escalate_after: str,
    remind_every: float,
    sequence_grace: float,
    smtp_host: str,
    smtp_port: int,
    smtp_from: str,
    smtp_starttls: bool,
    smtp_user: str | None,
    smtp_password: str | None,
    smtp_ca_file: str | None,
    webhook_allow: str,
    audit_key_file: str | None,
    checkpoint_file: str | None,
    checkpoint_url: str | None,
    checkpoint_every: float,
    seal_every: float,
    once: bool,
    verbose: bool,
) -> None:
    """Escalations, reminders, expiry blocking and warnings, notification delivery; with the
    audit key, sealing the audit trail and checkpointing its head."""
    from datetime import timedelta
    from pathlib import Path

    from cloud import bootstrap
    from cloud.adapters.outbound import WebhookPolicy
    from cloud.domain.alerts import EscalationPolicy
    from cloud.domain.audit_chain import AuditKeyError
    from cloud.entrypoints.scheduler import Scheduler, SchedulerConfig
    from cloud.service_layer.notifications import SmtpSettings

    _logging(verbose)
    try:
        policy = EscalationPolicy.parse(escalate_after, remind_every or None)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--escalate-after") from exc
    try:
        smtp = SmtpSettings(
            smtp_host,
            smtp_port,
            smtp_from,
            smtp_starttls,
            smtp_user,
            smtp_password,
            ca_file=smtp_ca_file,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--smtp-user") from exc
    try:
        webhooks = WebhookPolicy.parse(webhook_allow)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--webhook-allow") from exc
    try:
        key = bootstrap.audit_key(audit_key_file)
    except AuditKeyError as exc:
        raise click.BadParameter(str(exc), param_hint="--audit-key-file") from exc
    keeping = None
    if key is not None:
        keeping = bootstrap.AuditKeeping(
            key=key,
            checkpoint_file=Path(checkpoint_file) if checkpoint_file else None,
            checkpoint_url=checkpoint_url,
            checkpoint_every=timedelta(minutes=checkpoint_every),
            seal_every_s=seal_every,
        )
    wiring = bootstrap.scheduler(database_url, smtp, keeping, webhooks)
    with _disposing(wiring.db.engine):
        runner = Scheduler(
            wiring.db.sessions,
            SchedulerConfig(
                policy=policy, interval_s=interval, sequence_grace_s=sequence_grace * 60
            ),
            senders=wiring.senders,
            audit=wiring.audit,
        )
        if once:
            click.echo(str(runner.tick()))
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        runner.run(stop)


if __name__ == "__main__":
    main()
