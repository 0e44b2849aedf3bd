"""coldchain-gateway: run a gateway, check its config, simulate its sensors."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click

from edge.config import ConfigError, load_gateway


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _load(config: Path):
    try:
        return load_gateway(config)
    except ConfigError as exc:
        click.echo(f"invalid gateway config:\n{exc}", err=True)
        sys.exit(2)


@click.group()
def main() -> None:
    """Cold-chain gateway agent."""


@main.command("check-config")
@click.argument("configs", nargs=-1, required=True, type=click.Path(path_type=Path))
def check_config(configs: tuple[Path, ...]) -> None:
    """Validate gateway configs and the register maps they name."""
    failed = False
    for path in configs:
        try:
            loaded = load_gateway(path)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            failed = True
            continue
        cfg = loaded.config
        click.echo(
            f"{path}: ok: gateway {cfg.id} at {cfg.site.id}, "
            f"{len(cfg.zones)} zones, {len(cfg.devices)} devices"
        )
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Where the buffer lives.",
)
@click.option("--broker", help="Override the config's broker: mqtt://host:port.")
@click.option("-v", "--verbose", is_flag=True)
def run(config: Path, data_dir: Path, broker: str | None, verbose: bool) -> None:
    """Poll sensors, buffer durably, publish to the broker until SIGTERM or Ctrl-C."""
    from edge.gateway import Gateway
    from edge.wire import BrokerAddress

    _logging(verbose)
    loaded = _load(config)
    try:
        address = BrokerAddress.parse(broker) if broker else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--broker") from None
    gateway = Gateway(loaded, data_dir, address)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: gateway.stop())
    gateway.run()


@main.command()
@click.argument("configs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--curve",
    type=click.Choice(["zone", "clock"]),
    default="zone",
    show_default=True,
    help="zone: a slow wave inside each zone's limits; clock: value = seconds mod 100.",
)
@click.option("-v", "--verbose", is_flag=True)
def simulate(configs: tuple[Path, ...], curve: str, verbose: bool) -> None:
    """Serve simulated Modbus TCP sensors for every device the configs name."""
    from edge.simulator import SensorFarm, serve_forever

    _logging(verbose)
    farm = SensorFarm()
    for path in configs:
        farm.add_gateway(_load(path), curve)

    async def _main() -> None:
        task = asyncio.create_task(serve_forever(farm))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(_main())


if __name__ == "__main__":
    main()
