"""coldchain-gateway check-config names the file, the line, the field and the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXAMPLES = sorted((ROOT / "firmware-configs" / "gateways").glob("*.yaml"))


def check(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "check-config", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_example_configs_are_valid() -> None:
    assert len(EXAMPLES) >= 3
    result = check(*EXAMPLES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok: gateway") == len(EXAMPLES)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda t: t.replace("poll_interval_s: 2", "poll_interval_s: -1"),
            ["line 8:", "poll_interval_s", "greater than 0", "(got -1)"],
        ),
        (
            lambda t: t.replace("zone: wh-leeds-amb1\n", "zone: wh-leeds-nowhere\n"),
            ["zone", "'wh-leeds-nowhere' is not one of the zones"],
        ),
        (
            lambda t: t.replace("port: 15022", "port: 99999"),
            ["devices.2.transport.port", "less than or equal to 65535", "(got 99999)"],
        ),
        (
            lambda t: t.replace(
                "register_map: ../sensors/renke-rs-ws-n01.yaml",
                "register_map: ../sensors/missing.yaml",
            ),
            ["devices.2.register_map", "no such file", "missing.yaml"],
        ),
        (
            lambda t: t.replace("  kind: warehouse", "  kind: warehouse\n  colour: blue"),
            ["site.colour", "Extra inputs are not permitted"],
        ),
        (lambda t: t + "\n  - [unclosed", ["not valid YAML", ": line "]),
    ],
    ids=["negative-interval", "unknown-zone", "bad-port", "missing-map", "unknown-field", "yaml"],
)
def test_broken_config_is_explained(tmp_path: Path, mutate, expected: list[str]) -> None:
    original = (ROOT / "firmware-configs" / "gateways" / "warehouse-leeds.yaml").read_text()
    broken = tmp_path / "gateways" / "broken.yaml"
    broken.parent.mkdir()
    (tmp_path / "sensors").symlink_to(ROOT / "firmware-configs" / "sensors")
    broken.write_text(mutate(original))
    result = check(broken)
    assert result.returncode == 1
    assert str(broken) in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, result.stderr


def test_a_sentinel_the_data_type_cannot_hold_is_refused(tmp_path: Path) -> None:
    sensors = tmp_path / "sensors"
    sensors.mkdir()
    for source in (ROOT / "firmware-configs" / "sensors").glob("*.yaml"):
        (sensors / source.name).write_text(source.read_text())
    xy = sensors / "xy-md02.yaml"
    xy.write_text(xy.read_text().replace("sentinels: [-32768, 32767]", "sentinels: [0x8000]"))
    original = (ROOT / "firmware-configs" / "gateways" / "warehouse-leeds.yaml").read_text()
    gateway = tmp_path / "gateways" / "leeds.yaml"
    gateway.parent.mkdir()
    gateway.write_text(original)
    result = check(gateway)
    assert result.returncode == 1
    assert str(xy) in result.stderr or "xy-md02.yaml" in result.stderr, result.stderr
    assert (
        "sentinel 0x8000 (32768) cannot occur in int16 point 'temperature' (-32768..32767)"
        in result.stderr
    ), result.stderr
