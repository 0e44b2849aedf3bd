"""coldchain-gateway: run a gateway, check its config, simulate its sensors."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click

from edge.config import ConfigError, LoadedGateway, load_gateway


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _load(config: Path) -> LoadedGateway:
    from edge.rfid import load_reader_profiles

    try:
        loaded = load_gateway(config)
        load_reader_profiles(loaded)
        return loaded
    except ConfigError as exc:
        click.echo(f"invalid gateway config:\n{exc}", err=True)
        sys.exit(2)


@click.group()
def main() -> None:
    """Cold-chain gateway agent."""


@main.command("check-config")
@click.argument("configs", nargs=-1, required=True, type=click.Path(path_type=Path))
def check_config(configs: tuple[Path, ...]) -> None:
    """Validate gateway configs and the register maps and reader profiles they name."""
    from edge.rfid import load_reader_profiles

    failed = False
    for path in configs:
        try:
            loaded = load_gateway(path)
            load_reader_profiles(loaded)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            failed = True
            continue
        cfg = loaded.config
        click.echo(
            f"{path}: ok: gateway {cfg.id} at {cfg.site.id}, "
            f"{len(cfg.zones)} zones, {len(cfg.devices)} devices, {len(cfg.readers)} RFID readers"
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
@click.option(
    "--broker",
    help="Override the config's broker: mqtts://host[:8883] (TLS, the config's certificates) "
    "or mqtt://host[:1883] (plain: the config's TLS is not used).",
)
@click.option("-v", "--verbose", is_flag=True)
def run(config: Path, data_dir: Path, broker: str | None, verbose: bool) -> None:
    """Poll sensors, buffer durably, publish to the broker until SIGTERM or Ctrl-C."""
    from edge.broker_login import BrokerLoginError
    from edge.gateway import Gateway
    from edge.wire import BrokerAddress

    _logging(verbose)
    loaded = _load(config)
    try:
        address = BrokerAddress.parse(broker) if broker else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--broker") from None
    try:
        gateway = Gateway(loaded, data_dir, address)
    except BrokerLoginError as exc:
        click.echo(f"cannot reach the broker as configured:\n{config}: {exc}", err=True)
        sys.exit(2)
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
    """Serve simulated Modbus sensors (TCP or RTU) for every device the configs name."""
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


@main.command()
@click.option(
    "--map",
    "map_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The sensor's register map (firmware-configs/sensors/*.yaml).",
)
@click.option("--tcp", metavar="HOST[:PORT]", help="Modbus TCP sensor or TCP-to-RS-485 gateway.")
@click.option("--rtu", metavar="PORT", help="Serial port of an RS-485 adapter, e.g. /dev/ttyUSB0.")
@click.option(
    "--baudrate",
    type=click.Choice(["1200", "2400", "4800", "9600", "19200", "38400", "57600", "115200"]),
    default="9600",
    show_default=True,
)
@click.option("--parity", type=click.Choice(["N", "E", "O"]), default="N", show_default=True)
@click.option("--stopbits", type=click.Choice(["1", "2"]), default="1", show_default=True)
@click.option("--unit-id", type=click.IntRange(0, 247), default=1, show_default=True)
@click.option(
    "--timeout",
    type=click.FloatRange(0, 30, min_open=True),
    default=1.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--interval", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Seconds."
)
@click.option("-v", "--verbose", is_flag=True)
def probe(
    map_path: Path,
    tcp: str | None,
    rtu: str | None,
    baudrate: str,
    parity: str,
    stopbits: str,
    unit_id: int,
    timeout: float,
    count: int,
    interval: float,
    verbose: bool,
) -> None:
    """Read one sensor with a register map and print what it reports (commissioning)."""
    import time

    from edge.bus import Bus
    from edge.config import Device, RtuTransport, TcpTransport, load_register_map
    from edge.poller import ModbusDevice

    _logging(verbose)
    if (tcp is None) == (rtu is None):
        raise click.UsageError("give exactly one of --tcp HOST[:PORT] or --rtu PORT")
    try:
        rmap = load_register_map(map_path)
    except ConfigError as exc:
        click.echo(f"invalid register map:\n{exc}", err=True)
        sys.exit(2)
    transport: TcpTransport | RtuTransport
    if tcp is not None:
        host, _, port = tcp.rpartition(":") if ":" in tcp else (tcp, "", "502")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise click.BadParameter(f"{tcp!r}: expected HOST or HOST:PORT", param_hint="--tcp")
        transport = TcpTransport(host=host, port=int(port))
    else:
        # the choices click offers are the literals the model allows: it checks them again
        transport = RtuTransport.model_validate(
            {
                "kind": "rtu",
                "port": rtu,
                "baudrate": int(baudrate),
                "parity": parity,
                "stopbits": int(stopbits),
            }
        )
    device = Device(
        id="probe",
        zone="probe",
        register_map=str(map_path),
        transport=transport,
        unit_id=unit_id,
        timeout_s=timeout,
        retries=0,
    )
    sensor = ModbusDevice(device, rmap)
    bus = Bus(transport)
    answered = registers_read = 0
    click.echo(f"{rmap.manufacturer} {rmap.model}, unit {unit_id} on {transport.settings()}")
    try:
        for n in range(1, count + 1):
            started = time.monotonic()
            polled = sensor.read(bus)
            took_ms = (time.monotonic() - started) * 1000
            quality = polled[0].quality.value
            if polled[0].registers:
                registers_read += 1
            if quality != "timeout":
                answered += 1
            at = polled[0].taken_at.isoformat(sep=" ", timespec="milliseconds")
            why = "" if polled[0].registers else f": {sensor.last_failure}"
            click.echo(f"\nread {n}/{count} at {at}, {took_ms:.0f} ms{why}")
            click.echo(f"{'quantity':<14}{'registers':<16}{'value':>12}  {'unit':<6}quality")
            for s in polled:
                words = " ".join(f"0x{w:04X}" for w in s.registers) or "-"
                value = "-" if s.value is None else f"{s.value:g}"
                click.echo(f"{s.quantity:<14}{words:<16}{value:>12}  {s.unit:<6}{s.quality}")
            if n < count:
                time.sleep(interval)
    finally:
        bus.close()
    if not answered:
        click.echo(
            f"\nno answer from unit {unit_id} on {transport.settings()} in {count} read(s): "
            "check power, wiring (A/B), port, baud rate, parity and unit id",
            err=True,
        )
        sys.exit(1)
    if not registers_read:
        click.echo(
            f"\nunit {unit_id} answered only with Modbus exceptions: "
            "check the register map and the unit id",
            err=True,
        )
        sys.exit(1)


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=Path("data"), show_default=True
)
@click.option(
    "--export",
    "export_to",
    type=click.Path(path_type=Path),
    help="Write every waiting record to this CSV file.",
)
def buffer(config: Path, data_dir: Path, export_to: Path | None) -> None:
    """Show what the gateway's buffer holds: depth, oldest record, dropped; export to CSV."""
    import csv
    import json
    import time
    from datetime import UTC, datetime

    from edge.buffer import Buffer, BufferFormatError

    loaded = _load(config)
    path = data_dir / loaded.config.buffer.file
    if not path.exists():
        click.echo(f"no buffer at {path}", err=True)
        sys.exit(1)
    try:
        store = Buffer(path, max_records=loaded.buffer_cap())  # migrates an old format file
    except BufferFormatError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    stats = store.stats()
    oldest = (
        "none"
        if stats.oldest_created is None
        else f"{datetime.fromtimestamp(stats.oldest_created, UTC):%Y-%m-%d %H:%M:%S} UTC "
        f"({(time.time() - stats.oldest_created) / 3600:.1f} h ago)"
    )
    per_day = loaded.readings_per_day()
    click.echo(f"buffer      {path} ({path.stat().st_size / 1e6:.1f} MB)")
    click.echo(f"waiting     {stats.depth} records ({stats.depth / per_day:.2f} days of readings)")
    for kind, count in sorted(store.counts().items()):
        click.echo(f"  {kind:<10}{count}")
    click.echo(f"oldest      {oldest}")
    click.echo(
        f"dropped     {stats.dropped} (cap {store.max_records} records, "
        f"{loaded.config.buffer.max_days:g} days)"
    )
    click.echo(f"next seq    {stats.next_seq}")
    if export_to is not None:
        written = 0
        with open(export_to, "w", newline="") as out:
            fields = [
                "seq",
                "kind",
                "buffered_at",
                "sensor",
                "quantity",
                "value",
                "unit",
                "quality",
                "taken_at",
                "epc",
                "read_point",
                "first_seen",
                "last_seen",
                "count",
                "type",
                "at",
                "zone",
                "detail",
            ]
            writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for seq, kind, created, body in store.rows():
                record = json.loads("{" + body)
                buffered = datetime.fromtimestamp(created, UTC).isoformat()
                writer.writerow({"seq": seq, "kind": kind, "buffered_at": buffered, **record})
                written += 1
        click.echo(f"exported    {written} records to {export_to}")
    store.close()


if __name__ == "__main__":
    main()
