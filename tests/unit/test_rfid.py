"""RFID: debounce (window, counts, peak RSSI, direction, read points), EPC decode, profiles.

Pure: time is passed in (monotonic seconds for the windows, datetimes for the reads).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from edge import wire
from edge.config import ConfigError, Reader, ReadPoint, load_gateway
from edge.rfid import (
    Debouncer,
    ReaderFeed,
    ReaderProfile,
    Rejected,
    TagRead,
    identify,
    load_profile,
    load_reader_profiles,
    portal_pass,
)
from tests.conftest import ROOT

READERS = ROOT / "firmware-configs" / "readers"
FIXTURES = ROOT / "tests" / "fixtures" / "rfid"
T0 = datetime(2025, 3, 4, 8, 15, tzinfo=UTC)
SGTIN = "3034257BF7194E4000001A85"  # GTIN 80614141123458, serial 6789
SGTIN2 = "3034257BF7194E4000001A86"
SSCC = "3114257BF4499602D2000000"  # SSCC 106141412345678908
BLANK = "E2801160600002054CC2096F"  # a factory TID-like EPC: hex, but no GS1 key

DOCK = ReadPoint(
    id="dock1", zone="amb", business_step="receiving", outer_antenna=1, inner_antenna=2
)
COLD = ReadPoint(
    id="cold1-door", zone="cold", business_step="storing", outer_antenna=3, inner_antenna=4
)
BENCH = ReadPoint(id="pick1", zone="cold", business_step="picking")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def read(epc: str, t: float, antenna: int | None = 1, rssi: float | None = -60.0) -> TagRead:
    return TagRead(epc, antenna, rssi, at(t))


def feed_all(d: Debouncer, point: ReadPoint, reads: list[TagRead]) -> list[wire.Observation]:
    """Add reads as if each arrived when it was taken; returns what closed meanwhile."""
    closed = []
    for r in reads:
        now = (r.at - T0).total_seconds()
        closed += d.expire(now)
        closed += d.add(point, r, now)
    return closed


# --- debounce -----------------------------------------------------------------------------


def test_reads_within_the_window_become_one_observation() -> None:
    d = Debouncer(window_s=2.0)
    rssi = [-70, -64, -58, -52.5, -57, -66]
    reads = [read(SGTIN, i * 0.3, antenna=1 if i < 3 else 2, rssi=r) for i, r in enumerate(rssi)]
    assert feed_all(d, DOCK, reads) == []
    last = reads[-1].at - T0
    assert d.expire(last.total_seconds() + 1.99) == [], "closed before the window passed"
    (obs,) = d.expire(last.total_seconds() + 2.0)
    assert (obs.epc, obs.read_point, obs.count) == (SGTIN, "dock1", 6)
    assert (obs.first_seen, obs.last_seen) == (at(0), at(1.5))
    assert obs.peak_rssi == -52.5 and obs.antenna == 2  # the antenna of the strongest read
    assert (obs.gtin, obs.serial) == ("80614141123458", "6789")
    assert obs.id_uri == "urn:epc:id:sgtin:0614141.812345.6789"
    assert obs.sscc is None and len(d) == 0


def test_a_quiet_gap_longer_than_the_window_is_a_new_pass() -> None:
    d = Debouncer(window_s=1.0)
    closed = feed_all(d, BENCH, [read(SGTIN, t, None) for t in (0, 0.5, 2.0, 2.4)])
    closed += d.expire(10)
    assert [(o.first_seen, o.last_seen, o.count) for o in closed] == [
        (at(0), at(0.5), 2),
        (at(2.0), at(2.4), 2),
    ]


def test_a_flapping_tag_read_now_and_then_within_the_window_stays_one_pass() -> None:
    d = Debouncer(window_s=2.0)
    times = [0, 1.9, 3.7, 5.5, 7.3]  # at the edge of the field: read every 1.8-1.9 s
    assert feed_all(d, BENCH, [read(SGTIN, t, None, rssi=-75) for t in times]) == []
    (obs,) = d.expire(7.3 + 2.0)
    assert obs.count == 5 and obs.last_seen == at(7.3)


def test_a_backlog_replayed_at_once_is_split_by_read_time() -> None:
    d = Debouncer(window_s=2.0)
    closed = []
    for t in (0, 0.5, 30, 30.5):  # a reader's buffer, flushed in one go at now=60
        closed += d.add(BENCH, read(SGTIN, t, None), now=60)
    closed += d.expire(62)
    assert [(o.first_seen, o.count) for o in closed] == [(at(0), 2), (at(30), 2)]


def test_a_late_read_widens_its_pass() -> None:
    d = Debouncer(window_s=2.0)
    d.add(BENCH, read(SGTIN, 1.0, None), now=1.0)
    d.add(BENCH, read(SGTIN, 0.4, None), now=1.1)  # reached the gateway after a newer one
    (obs,) = d.expire(5)
    assert (obs.first_seen, obs.last_seen, obs.count) == (at(0.4), at(1.0), 2)


def test_a_parked_tag_is_reported_every_max_pass_s() -> None:
    d = Debouncer(window_s=2.0, max_pass_s=4.0)
    closed = feed_all(d, BENCH, [read(SGTIN, t * 0.5, None) for t in range(21)])  # 0..10 s
    closed += d.expire(100)
    assert len(closed) == 3
    assert sum(o.count for o in closed) == 21


@pytest.mark.parametrize(
    ("antennas", "direction"),
    [
        ([1, 1, 2, 1, 2, 2], "in"),  # outer first, then inner
        ([2, 2, 1, 2, 1, 1], "out"),
        ([1, 1, 1], None),  # only the outer antenna: no crossing seen
        ([2, 2], None),
    ],
)
def test_direction_from_the_order_of_a_portals_antennas(antennas, direction) -> None:
    d = Debouncer(window_s=2.0)
    feed_all(d, DOCK, [read(SGTIN, i * 0.2, a) for i, a in enumerate(antennas)])
    (obs,) = d.flush()
    assert obs.direction == direction


def test_no_direction_without_a_portal() -> None:
    d = Debouncer(window_s=2.0)
    feed_all(d, BENCH, [read(SGTIN, 0, 1), read(SGTIN, 0.2, 2)])
    assert d.flush()[0].direction is None


def test_the_same_tag_at_two_read_points_gives_two_observations() -> None:
    d = Debouncer(window_s=2.0)
    feed_all(d, DOCK, [read(SGTIN, 0, 1, -60), read(SGTIN, 0.5, 2, -50)])
    feed_all(d, COLD, [read(SGTIN, 0.6, 4, -65), read(SGTIN, 0.7, 3, -62), read(SGTIN, 0.8, 3)])
    feed_all(d, DOCK, [read(SGTIN2, 0.9, 1)])
    observations = {(o.read_point, o.epc): o for o in d.expire(10)}
    assert set(observations) == {("dock1", SGTIN), ("cold1-door", SGTIN), ("dock1", SGTIN2)}
    dock, cold = observations["dock1", SGTIN], observations["cold1-door", SGTIN]
    assert (dock.count, dock.direction, dock.peak_rssi) == (2, "in", -50)
    assert (cold.count, cold.direction, cold.peak_rssi) == (3, "out", -60)


def test_without_rssi_the_antenna_is_the_first_one() -> None:
    d = Debouncer(window_s=2.0)
    feed_all(d, DOCK, [read(SGTIN, 0, 2, None), read(SGTIN, 0.1, 1, None)])
    (obs,) = d.flush()
    assert (obs.antenna, obs.peak_rssi) == (2, None)


def test_open_passes_are_capped() -> None:
    d = Debouncer(window_s=2.0, max_open=2)
    closed = feed_all(d, BENCH, [read(e, 0, None) for e in (SGTIN, SGTIN2, SSCC)])
    assert [o.epc for o in closed] == [SGTIN] and len(d) == 2


# --- EPC decode and the wire body ---------------------------------------------------------


def test_sscc_and_undecodable_epcs() -> None:
    assert identify(SSCC).sscc == "106141412345678908"
    assert identify(SSCC).id_uri == "urn:epc:id:sscc:0614141.1234567890"
    assert identify(SSCC).gtin is None
    assert identify(BLANK).id_uri is None


def test_observations_are_valid_wire_records() -> None:
    d = Debouncer(window_s=2.0)
    for epc in (SGTIN, SSCC, BLANK):
        feed_all(d, DOCK, [read(epc, 0, 1), read(epc, 0.3, 2)])
    bodies = [wire.encode_body(o) for o in d.flush()]
    payload = wire.assemble_readings("gw1", "site1", list(enumerate(bodies, start=41)))
    channel, envelope = wire.decode(wire.topic("site1", "gw1", "rfid"), payload)
    assert channel == "rfid"
    by_epc = {r.epc: r for r in envelope.records}  # type: ignore[union-attr]
    assert by_epc[SSCC].sscc == "106141412345678908" and by_epc[SSCC].direction == "in"
    assert by_epc[BLANK].id_uri is None and by_epc[BLANK].epc == BLANK
    assert sorted(r.seq for r in envelope.records) == [41, 42, 43]  # type: ignore[union-attr]


# --- reader profiles and feeds ------------------------------------------------------------


def reader(profile: str | None = "p.yaml", *points: ReadPoint, window_s: float = 2.0) -> Reader:
    return Reader(
        id="r1",
        transport={"kind": "http", "port": 0, "token_env": "RFID_TOKEN"},
        profile=profile,
        read_points=points or (DOCK,),
        window_s=window_s,
    )


def feed(profile_file: str, *points: ReadPoint) -> ReaderFeed:
    return ReaderFeed(reader("p.yaml", *points), load_profile(READERS / profile_file))


def test_every_shipped_profile_loads() -> None:
    files = sorted(READERS.glob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        assert load_profile(path).model


def test_example_gateway_with_readers_loads() -> None:
    loaded = load_gateway(READERS / "examples" / "warehouse-dock.yaml")
    profiles = load_reader_profiles(loaded)
    kinds = {r.transport.kind for r in loaded.config.readers}
    assert kinds == {"http", "mqtt", "serial", "simulated"}
    assert profiles["wh-leeds-load2-sim"] is None
    assert profiles["wh-leeds-dock1-fx"].format == "json"  # type: ignore[union-attr]


def test_zebra_fx_events() -> None:
    f = feed("zebra-fx-iot-connector.yaml")
    assert f.payload((FIXTURES / "zebra-fx-tag-events.json").read_bytes(), at(0), 0.0) == []
    observations = {o.epc: o for o in f.expire(5.0)}
    tag, pallet = observations[SGTIN], observations[SSCC]
    assert (tag.count, tag.peak_rssi, tag.antenna, tag.direction) == (2, -54, 2, "in")
    assert (pallet.sscc, pallet.direction) == ("106141412345678908", "in")
    assert f.errors == {}


def test_impinj_r700_events_rssi_in_centi_dbm_and_status_events_counted() -> None:
    f = feed("impinj-r700-webhook.yaml")
    f.payload((FIXTURES / "impinj-r700-events.json").read_bytes(), at(0), 0.0)
    (obs,) = f.flush()
    assert (obs.peak_rssi, obs.antenna, obs.count) == (-55.5, 2, 2)
    assert f.errors == {"not_a_tag_read": 1}


def test_generic_json_object_with_a_list_and_spelling_variants() -> None:
    f = feed("generic-json.yaml")
    body = {
        "reader": "dock-1",
        "tags": [
            {"epc": SGTIN.lower(), "ant": 1, "rssi": -61.5, "ts": 1741076100000},
            {"EPC": SGTIN, "antennaPort": "2", "peakRssi": "-55"},
            {"tagId": "30 34 25 7B F7 19 4E 40 00 00 1A 85", "port": 2},
        ],
    }
    f.payload(json.dumps(body).encode(), at(0), 0.0)
    (obs,) = f.flush()
    assert (obs.epc, obs.count, obs.peak_rssi, obs.direction) == (SGTIN, 3, -55.0, "in")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"\xff\xfe\x00", "bad_json"),
        (b"[42]", "not_a_tag_read"),
        (b'[{"data": {"antenna": 1}}]', "not_a_tag_read"),
        (b'[{"idHex": "not-hex-at-all", "antenna": 1}]', "bad_epc"),
        (b'[{"idHex": "303", "antenna": 1}]', "bad_epc"),
        (b'[{"idHex": 3034, "antenna": 1}]', "bad_epc"),
        (b'[{"idHex": "3034257BF7194E4000001A85", "antenna": "left"}]', "bad_antenna"),
        (b'[{"idHex": "3034257BF7194E4000001A85", "antenna": true}]', "bad_antenna"),
        (b'[{"idHex": "3034257BF7194E4000001A85", "antenna": 1.5}]', "bad_antenna"),
        (b'[{"idHex": "3034257BF7194E4000001A85", "antenna": 1, "peakRssi": "loud"}]', "bad_rssi"),
        (b'[{"idHex": "3034257BF7194E4000001A85", "antenna": 9}]', "unknown_antenna"),
    ],
)
def test_malformed_input_is_counted_not_observed(body: bytes, reason: str) -> None:
    f = feed("zebra-fx-iot-connector.yaml")
    if reason == "bad_json":  # the body as a whole is unusable: the receiver says so (400)
        with pytest.raises(Rejected, match="bad_json"):
            f.payload(body, at(0), 0.0)
    else:
        assert f.payload(body, at(0), 0.0) == []
    assert f.errors == {reason: 1}
    assert f.flush() == [] and f.reads == 0


def test_bad_reads_do_not_spoil_good_ones_in_the_same_body() -> None:
    f = feed("zebra-fx-iot-connector.yaml")
    body = [{"idHex": SGTIN, "antenna": 1}, "garbage", {"idHex": "zz"}, {"idHex": SSCC}]
    f.payload(json.dumps(body).encode(), at(0), 0.0)
    assert {o.epc for o in f.flush()} == {SGTIN, SSCC}  # no antenna: not a portal crossing
    assert f.errors == {"not_a_tag_read": 1, "bad_epc": 1}


def test_ndjson_bodies_count_their_bad_lines() -> None:
    f = feed("zebra-fx-iot-connector.yaml")
    body = b'{"idHex": "%s", "antenna": 1}\n{oops\n{"idHex": "%s", "antenna": 2}\n' % (
        SGTIN.encode(),
        SGTIN.encode(),
    )
    f.payload(body, at(0), 0.0)
    assert f.flush()[0].count == 2 and f.errors == {"bad_json": 1}


def test_undecodable_but_hex_epcs_are_observed_and_counted() -> None:
    f = feed("zebra-fx-iot-connector.yaml")
    f.payload(json.dumps([{"idHex": BLANK, "antenna": 1}]).encode(), at(0), 0.0)
    (obs,) = f.flush()
    assert (obs.epc, obs.id_uri, obs.gtin) == (BLANK, None, None)
    assert f.undecodable == 1 and f.errors == {}


def test_serial_csv_lines() -> None:
    f = feed("serial-csv.yaml", BENCH)
    lines = [f"{SGTIN},1,-52.5", "READY", f"{SGTIN},2", "", f"{SGTIN},x,-50", f"{SSCC},3,-70"]
    f.payload("\n".join(lines).encode(), at(0), 0.0)
    f.payload(b"\xff\xfe,1,-50", at(0.1), 0.1)
    observations = {o.epc: o for o in f.flush()}
    assert observations[SGTIN].count == 1 and observations[SGTIN].peak_rssi == -52.5
    assert observations[SSCC].antenna == 3 and observations[SSCC].read_point == "pick1"
    assert f.errors == {"not_a_tag_read": 2, "bad_antenna": 1, "bad_line": 1}


def test_serial_labelled_lines_by_pattern() -> None:
    f = feed("serial-tagged-line.yaml")
    f.payload(f"EPC:{SGTIN} ANT:1 RSSI:-61\nOK\nEPC:{SGTIN} ANT:2\n".encode(), at(0), 0.0)
    (obs,) = f.flush()
    assert (obs.count, obs.direction, obs.peak_rssi) == (2, "in", -61)
    assert f.errors == {"not_a_tag_read": 1}


def test_reader_time_is_used_when_the_profile_says_so() -> None:
    profile = ReaderProfile(
        model="m", format="json", epc=("epc",), timestamp=("ts",), timestamp_unit="ms",
        time_source="reader",
    )  # fmt: skip
    f = ReaderFeed(reader("p.yaml", BENCH), profile)
    stamp = int(at(3).timestamp() * 1000)
    body = [{"epc": SGTIN, "ts": stamp}, {"epc": SGTIN, "ts": "yesterday"}, {"epc": SGTIN}]
    f.payload(json.dumps(body).encode(), at(100), 0.0)
    (obs,) = f.flush()
    assert obs.first_seen == at(3) and obs.count == 1
    assert f.errors == {"bad_timestamp": 2}


def test_a_simulated_portal_pass_reads_as_its_direction() -> None:
    simulated = {"kind": "simulated", "epcs": [SGTIN]}
    f = ReaderFeed(Reader(id="sim", transport=simulated, read_points=[DOCK]), None)
    reads = portal_pass([SGTIN, SSCC], DOCK, at(0), "in", pass_s=2.0, reads_per_s=25)
    reads += portal_pass([SGTIN2], DOCK, at(0), "out", pass_s=2.0, reads_per_s=25)
    f.tag_reads(reads, 0.0)
    observations = {o.epc: o for o in f.flush()}
    assert {e: o.direction for e, o in observations.items()} == {
        SGTIN: "in",
        SSCC: "in",
        SGTIN2: "out",
    }
    assert all(o.count > 20 for o in observations.values())


# --- config validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"format": "json"}, "needs epc"),
        ({"format": "json", "epc": ["e"], "columns": ["epc"]}, "belong to line profiles"),
        ({"format": "line", "delimiter": ","}, "either columns"),
        ({"format": "line", "delimiter": ",", "columns": ["epc", "tid"]}, "unknown columns"),
        ({"format": "line", "delimiter": ",", "columns": ["antenna"]}, "needs an epc"),
        ({"format": "line", "pattern": "(?P<epc>[0-9A-F]+"}, "not a valid regex"),
        ({"format": "line", "pattern": "(?P<epc>.+),(?P<tid>.+)"}, "unknown groups"),
        ({"format": "json", "epc": ["e"], "time_source": "reader"}, "needs a timestamp"),
        ({"format": "xml", "epc": ["e"]}, "'json' or 'line'"),
    ],
)
def test_bad_profiles_are_explained(profile: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ReaderProfile.model_validate({"model": "m", **profile})


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"outer_antenna": 1}, "go together"),
        ({"outer_antenna": 1, "inner_antenna": 1}, "both 1"),
        ({"outer_antenna": 1, "inner_antenna": 2, "antennas": [1, 3]}, r"\[2\] are not in"),
        ({"business_step": "teleporting"}, "receiving"),
    ],
)
def test_bad_read_points_are_explained(point: dict, message: str) -> None:
    base = {"id": "p", "zone": "z", "business_step": "receiving"}
    with pytest.raises(ValidationError, match=message):
        ReadPoint.model_validate({**base, **point})


def test_readers_sharing_an_antenna_or_missing_a_profile_are_explained() -> None:
    with pytest.raises(ValidationError, match="antenna 2 already belongs to 'dock1'"):
        reader("p.yaml", DOCK, DOCK.model_copy(update={"id": "x", "outer_antenna": 5}))
    with pytest.raises(ValidationError, match="several read points, name the antennas"):
        reader("p.yaml", DOCK, BENCH)
    with pytest.raises(ValidationError, match="http reader needs a reader profile"):
        reader(None)
    with pytest.raises(ValidationError, match="max_pass_s"):
        Reader.model_validate({**reader().model_dump(), "max_pass_s": 1})


def write_gateway(tmp_path: Path, readers: list[dict]) -> Path:
    config = yaml.safe_load((READERS / "examples" / "warehouse-dock.yaml").read_text())
    config["devices"][0]["register_map"] = str(ROOT / "firmware-configs/sensors/xy-md02.yaml")
    config["readers"] = readers
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def http_reader(**changes: object) -> dict:
    point = {"id": "door", "zone": "wh-leeds-cold1", "business_step": "storing"}
    return {
        "id": "r1",
        "transport": {"kind": "http", "port": 8081, "token_env": "RFID_TOKEN"},
        "profile": str(READERS / "serial-csv.yaml"),
        "read_points": [point],
        **changes,
    }


def test_a_read_point_in_an_unknown_zone_names_the_field(tmp_path: Path) -> None:
    bad_point = {"id": "door", "zone": "freezer9", "business_step": "storing"}
    path = write_gateway(tmp_path, [http_reader(read_points=[bad_point])])
    with pytest.raises(ConfigError, match=r"readers.0.read_points.0.zone: 'freezer9' is not one"):
        load_gateway(path)


def test_repeated_ids_and_missing_profiles_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"read point ids must be unique; repeated: \['door'\]"):
        load_gateway(write_gateway(tmp_path, [http_reader(), http_reader(id="r2")]))
    loaded = load_gateway(write_gateway(tmp_path, [http_reader(profile="nope.yaml")]))
    with pytest.raises(ConfigError, match=r"line \d+: readers.0.profile: no such file"):
        load_reader_profiles(loaded)


def test_a_broken_profile_names_its_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("model: m\nformat: line\ndelimiter: ','\ncolumns: [ep]\n")
    loaded = load_gateway(write_gateway(tmp_path, [http_reader(profile="bad.yaml")]))
    with pytest.raises(ConfigError) as info:
        load_reader_profiles(loaded)
    assert "bad.yaml: line 1" in str(info.value) and "unknown columns ['ep']" in str(info.value)
