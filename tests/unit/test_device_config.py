"""Device transport and calibration settings: what is accepted and how refusals read."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from edge.config import Device, RtuTransport, TcpTransport, bus_problems


def device(transport: object, **fields: object) -> Device:
    return Device.model_validate(
        {"id": "s1", "zone": "cold", "register_map": "m.yaml", "transport": transport, **fields}
    )


def problems(transport: object, **fields: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        device(transport, **fields)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in caught.value.errors()]


def test_rtu_defaults_are_9600_8n1_with_one_retry() -> None:
    d = device({"kind": "rtu", "port": "/dev/ttyUSB0"})
    assert isinstance(d.transport, RtuTransport)
    assert d.transport.settings() == "rtu:///dev/ttyUSB0 (9600 8N1)"
    assert (d.retries, d.backoff_max_s, d.stale_after_s, d.calibration) == (1, 60.0, None, None)


def test_a_transport_without_kind_is_tcp() -> None:
    d = device({"host": "10.0.0.5"})
    assert d.transport == TcpTransport(host="10.0.0.5", port=502)
    assert d.transport.bus == "tcp://10.0.0.5:502"


@pytest.mark.parametrize(
    ("transport", "expected"),
    [
        ({"kind": "tcp", "host": "h", "port": 99999}, ("transport.port", "less than or equal")),
        ({"kind": "rtu", "port": "/dev/ttyUSB0", "parity": "X"}, ("transport.parity", "'N'")),
        ({"kind": "rtu", "port": "/dev/ttyUSB0", "baudrate": 9601}, ("transport.baudrate", "9600")),
        ({"kind": "rtu", "port": "/dev/ttyUSB0", "stopbits": 3}, ("transport.stopbits", "1 or 2")),
        ({"kind": "rtu"}, ("transport.port", "Field required")),
        ({"kind": "rtu", "port": "/dev/x", "host": "h"}, ("transport.host", "Extra inputs")),
        ({"kind": "can", "port": "x"}, ("transport", "'tcp', 'rtu'")),
    ],
    ids=["tcp-port", "parity", "baudrate", "stopbits", "no-port", "extra", "kind"],
)
def test_a_bad_transport_is_named_by_its_plain_path(transport: dict, expected) -> None:
    (where, message), *_ = problems(transport)
    assert where == expected[0]
    assert expected[1] in message


def test_calibration_takes_offsets_per_quantity_and_a_due_date() -> None:
    d = device(
        {"kind": "rtu", "port": "/dev/ttyUSB0"},
        calibration={"offsets": {"temperature": -0.2}, "due": "2027-06-30"},
    )
    assert d.calibration is not None
    assert d.calibration.offsets == {"temperature": -0.2}
    assert d.calibration.due == date(2027, 6, 30)
    assert problems({"host": "h"}, calibration={"offsets": {}})[0][0] == "calibration.due"
    assert problems({"host": "h"}, calibration={"offsets": {"Temp": 1}, "due": "2027-01-01"})


def test_bus_problems_names_both_devices() -> None:
    a = device({"kind": "rtu", "port": "/dev/ttyUSB0", "parity": "E"})
    b = Device.model_validate(
        {**a.model_dump(), "id": "s2", "transport": {"kind": "rtu", "port": "/dev/ttyUSB0"}}
    )
    c = Device.model_validate({**a.model_dump(), "id": "s3", "unit_id": 2})
    d = Device.model_validate({**a.model_dump(), "id": "s4", "unit_id": 2})
    assert bus_problems([a, b, c, d]) == [
        "devices s1 and s2 share rtu:///dev/ttyUSB0 with different settings: "
        "rtu:///dev/ttyUSB0 (9600 8E1) vs rtu:///dev/ttyUSB0 (9600 8N1)",
        "devices s1 and s2 both use unit id 1 on rtu:///dev/ttyUSB0",
        "devices s3 and s4 both use unit id 2 on rtu:///dev/ttyUSB0",
    ]
    tcp = [
        device({"host": "gw", "port": 502}, unit_id=1),
        Device.model_validate({**device({"host": "gw"}).model_dump(), "id": "s2", "unit_id": 2}),
    ]
    assert bus_problems(tcp) == []
