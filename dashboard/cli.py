"""coldchain-dashboard: serve the control room."""

from __future__ import annotations

import logging
import sys

import click

from cloud.bootstrap import port_is_free


@click.command()
@click.option(
    "--database-url",
    envvar="COLDCHAIN_DATABASE_URL",
    default="sqlite:///data/coldchain.sqlite",
    show_default=True,
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8050, show_default=True)
@click.option("--refresh-ms", type=int, default=3000, show_default=True)
def main(database_url: str, host: str, port: int, refresh_ms: int) -> None:
    """Serve the Dash control room (development server; use a WSGI server in production)."""
    from dashboard.app import create_app

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if not port_is_free(host, port):
        click.echo(
            f"port {port} on {host} is already in use: stop what holds it or pass --port", err=True
        )
        sys.exit(2)
    app = create_app(database_url, refresh_ms=refresh_ms)
    click.echo(f"control room on http://{host}:{port}/")
    app.run(host=host, port=port, debug=False)


if __name__ == "__main__":
    main()
