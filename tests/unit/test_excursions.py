"""Excursion rules on plain values: delays, deadbands, levels, freezing, cumulative rules,
gaps, untrusted readings, suppression windows and late data in any order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.domain.evidence import CALIBRATION_OVERDUE, usable
from cloud.domain.excursions import (
    GAP_RULE,
    Episode,
    EpisodeKey,
    ExcursionDetector,
    Sample,
    Suppression,
)
from cloud.domain.late_data import evaluate_zone, latest
from cloud.domain.monitoring import PRESETS, Cumulative, Limit, Profile

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
FRIDGE = PRESETS["2-8C"]


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def series(values: list[float | None], *, sensor: str = "s1", ok: bool = True) -> list[Sample]:
    """One sample a minute from T0."""
    return [Sample(sensor, minutes(i), v, ok) for i, v in enumerate(values)]


def run(profile: Profile, samples: list[Sample], **kw: object) -> list[Episode]:
    return latest(ExcursionDetector(profile, **kw).feed(samples))  # type: ignore[arg-type]


def by_rule(episodes: list[Episode]) -> dict[str, Episode]:
    return {e.rule: e for e in episodes}


SIMPLE = Profile(
    name="simple",
    limits=(Limit(level="alarm", kind="high", limit=8.0, delay_min=10, deadband=0.5),),
    max_gap_min=15,
    gap_alarm_min=60,
)


def test_a_short_run_beyond_the_limit_does_not_count() -> None:
    assert run(SIMPLE, series([5] * 5 + [9] * 9 + [5] * 5)) == []


def test_a_run_counts_after_its_delay_and_starts_when_it_left_the_range() -> None:
    detector = ExcursionDetector(SIMPLE)
    opened = detector.feed(series([5] * 5 + [9] * 11))
    assert len(opened) == 1
    episode = opened[0]
    assert (episode.kind, episode.level, episode.started_at) == ("high", "alarm", minutes(5))
    assert episode.is_open and episode.peak == 9 and episode.limit == 8.0


def test_the_deadband_keeps_it_open_until_well_inside() -> None:
    values = [5] * 2 + [9] * 12 + [7.8, 7.9, 7.6, 7.4, 5]  # 7.8/7.9/7.6 within 0.5 of 8
    (episode,) = run(SIMPLE, series(values))
    assert episode.started_at == minutes(2)
    assert episode.ended_at == minutes(17)  # 7.4 is the first reading <= 7.5


def test_the_presets_have_two_levels_and_both_report() -> None:
    values = [5] * 2 + [9] * 70 + [5]
    episodes = by_rule(run(FRIDGE, series(values)))
    assert episodes["warning high > 8 for 10 min"].level == "warning"
    assert episodes["alarm high > 8 for 60 min"].level == "alarm"
    assert all(e.ended_at == minutes(72) for e in episodes.values())
    assert "alarm high > 12 for 15 min" not in episodes


def test_low_limit_and_freezing_counts_at_once() -> None:
    values = [5] * 3 + [0.0] + [5] * 3
    episodes = by_rule(run(FRIDGE, series(values)))
    freezing = episodes["alarm freezing <= 0"]
    assert (freezing.kind, freezing.level) == ("freezing", "alarm")
    assert (freezing.started_at, freezing.ended_at, freezing.peak) == (minutes(3), minutes(4), 0.0)
    assert "warning low < 2 for 10 min" not in episodes  # one minute is under its delay


def test_cumulative_rule_counts_time_summed_over_its_window() -> None:
    # Thirty 25-minute runs at 10.5 C, none reaching the 60-minute alarm delay:
    # 600 minutes accumulated after the 24th run.
    values: list[float | None] = []
    for _ in range(30):
        values += [10.5] * 25 + [5.0] * 35
    episodes = run(FRIDGE, series(values))
    cumulative = [e for e in episodes if e.kind == "cumulative"]
    assert cumulative, [e.rule for e in episodes]
    first = min(cumulative, key=lambda e: e.started_at)
    assert first.level == "alarm" and first.limit == 10.0
    # The 600th minute out ends the 24th run: the indicator trips at that instant.
    assert first.started_at == first.ended_at == minutes(23 * 60 + 25)
    # From then on, every run beyond the limit inside the window is a cumulative excursion.
    assert minutes(24 * 60) in {e.started_at for e in cumulative}
    assert not any(e.rule == "alarm high > 8 for 60 min" for e in episodes)


def test_cumulative_freezing_rule() -> None:
    rule = Cumulative(level="alarm", direction="below", limit=-0.5, allowed_min=60, window_min=600)
    profile = Profile(name="c", cumulative=(rule,), max_gap_min=15, gap_alarm_min=60)
    values = ([-1.0] * 20 + [3.0] * 20) * 4
    episodes = sorted(run(profile, series(values)), key=lambda e: e.started_at)
    # 60 minutes below -0.5 at the end of the third run; the fourth run is beyond the allowance.
    assert [(e.started_at, e.ended_at) for e in episodes] == [
        (minutes(100), minutes(100)),
        (minutes(120), minutes(140)),
    ]
    assert all(e.peak == -1.0 and e.kind == "cumulative" for e in episodes)


def test_a_monitoring_gap_is_unknown_conditions_with_its_level_by_length() -> None:
    samples = series([5, 5]) + [Sample("s1", minutes(30), 5, True)]
    samples += [Sample("s1", minutes(200), 5, True)]
    gaps = [e for e in run(FRIDGE, samples) if e.rule == GAP_RULE]
    assert [(g.started_at, g.ended_at, g.level) for g in gaps] == [
        (minutes(1), minutes(30), "warning"),
        (minutes(30), minutes(200), "warning"),  # a gap is one episode a level it reached
        (minutes(30), minutes(200), "alarm"),
    ]


def test_the_clock_opens_a_gap_when_data_stops_and_escalates_it() -> None:
    detector = ExcursionDetector(FRIDGE)
    detector.feed(series([5, 5, 5]))
    assert detector.tick(minutes(10)) == []
    (opened,) = detector.tick(minutes(20))
    assert (opened.kind, opened.level, opened.is_open) == ("unknown_conditions", "warning", True)
    assert detector.tick(minutes(30)) == []
    (alarm,) = detector.tick(minutes(70))  # the alarm is an episode of its own, same start
    assert (alarm.level, alarm.started_at, alarm.is_open) == ("alarm", opened.started_at, True)
    assert alarm.key == ("2-8C", GAP_RULE, "alarm", minutes(2)) != opened.key
    assert detector.tick(minutes(80)) == []
    closed = detector.feed([Sample("s1", minutes(90), 5, True)])
    assert [e.key for e in closed] == [opened.key, alarm.key]
    assert all(e.ended_at == minutes(90) and e.suppressed_reason is None for e in closed)


def test_a_backlog_closes_a_live_gap_as_recovered() -> None:
    detector = ExcursionDetector(FRIDGE)
    detector.feed(series([5, 5]))
    (opened,) = detector.tick(minutes(40))
    (closed,) = detector.feed([Sample("s1", minutes(2), 5, True)])
    assert closed.key == opened.key and closed.suppressed_reason is not None


def test_a_backlog_shorter_than_the_alarm_keeps_the_live_alarm_as_recovered() -> None:
    detector = ExcursionDetector(FRIDGE)
    detector.feed(series([5, 5]))
    warning, alarm = detector.tick(minutes(70))
    closed = detector.feed([Sample("s1", minutes(31), 5, True)])  # silent 30 min, in truth
    assert [(e.key, e.ended_at) for e in closed] == [
        (warning.key, minutes(31)),
        (alarm.key, minutes(31)),
    ]
    assert closed[0].suppressed_reason is None and closed[1].suppressed_reason is not None


def test_a_state_kept_with_one_gap_level_still_closes_it() -> None:
    detector = ExcursionDetector(FRIDGE)
    detector.feed(series([5, 5]))
    state = detector.snapshot() | {"gap": {"level": "warning"}}  # as kept before 0020
    resumed = ExcursionDetector(FRIDGE, state=state)
    assert [e.level for e in resumed.tick(minutes(70))] == ["alarm"]
    closed = resumed.feed([Sample("s1", minutes(80), 5, True)])
    assert [(e.level, e.ended_at) for e in closed] == [
        ("warning", minutes(80)),
        ("alarm", minutes(80)),
    ]


def test_bad_quality_never_proves_good_conditions() -> None:
    values = [5] * 2 + [9] * 12
    samples = series(values) + [
        Sample("s1", minutes(14 + i), 5.0, False)
        for i in range(20)  # calibration overdue
    ]
    detector = ExcursionDetector(SIMPLE)
    episodes = latest(detector.feed(samples))
    (high,) = [e for e in episodes if e.kind == "high"]
    assert high.is_open  # in range on an untrusted sensor: not back in range
    gap = [e for e in episodes if e.kind == "unknown_conditions"]
    assert gap == []  # not yet: the next valid reading decides the gap
    (closed, gap_ep) = sorted(
        detector.feed([Sample("s1", minutes(40), 5.0, True)]), key=lambda e: e.rule
    )
    assert closed.ended_at == minutes(40)
    assert gap_ep.rule == GAP_RULE and gap_ep.started_at == minutes(13)


def test_a_bad_reading_out_of_range_is_no_evidence_and_its_silence_is_a_gap() -> None:
    """Decision 0027: a reading flagged timeout, sensor fault, out of range... carries no
    value: it opens no excursion and is no peak; the zone is of unknown conditions."""
    samples = series([5, 5]) + [Sample("s1", minutes(2 + i), 9.0, False) for i in range(30)]
    samples.append(Sample("s1", minutes(32), 5.0, True))
    episodes = run(SIMPLE, samples)
    assert [e.kind for e in episodes] == ["unknown_conditions"]
    (gap,) = episodes
    assert (gap.started_at, gap.ended_at, gap.level) == (minutes(1), minutes(32), "warning")


def test_a_sensor_past_its_calibration_due_date_opens_and_closes_like_any_other() -> None:
    """Decision 0027: evidence from an overdue sensor is used (and marked elsewhere)."""
    overdue = [
        Sample("s1", minutes(i), v, True, None, True)
        for i, v in enumerate([5.0] * 2 + [9.0, 9.5, 10.0] + [9.0] * 12 + [5.0] * 3)
    ]
    (episode,) = run(SIMPLE, overdue)
    assert (episode.started_at, episode.ended_at) == (minutes(2), minutes(17))
    assert episode.peak == 10.0


def test_the_worst_sensor_stands_for_the_zone() -> None:
    door = series([5] * 3 + [9] * 12, sensor="door")
    back = series([4] * 15, sensor="back")
    (episode,) = run(SIMPLE, door + back)
    assert episode.started_at == minutes(3)


def test_a_suppression_window_records_what_it_absorbs() -> None:
    window = Suppression(
        started_at=minutes(0), ended_at=minutes(30), reason="receiving at dock 2", grace_min=20
    )
    values = [5] * 2 + [9] * 15 + [5]  # 15 min: over the 10-min delay, under 10 + 20
    (episode,) = run(SIMPLE, series(values), suppressions=[window])
    assert episode.suppressed_reason == "receiving at dock 2"
    assert (episode.started_at, episode.ended_at) == (minutes(2), minutes(17))
    longer = [5] * 2 + [9] * 35 + [5]
    (counted,) = run(SIMPLE, series(longer), suppressions=[window])
    assert counted.suppressed_reason is None and counted.ended_at == minutes(37)


def test_state_survives_a_snapshot_between_batches() -> None:
    values = [5] * 3 + [9] * 30 + [5] * 3
    samples = series(values)
    whole = run(SIMPLE, samples)
    detector = ExcursionDetector(SIMPLE)
    pieces: list[Episode] = []
    for i in range(0, len(samples), 7):
        detector = ExcursionDetector(SIMPLE, state=detector.snapshot())
        pieces += detector.feed(samples[i : i + 7])
    assert latest(pieces) == whole


def test_a_sample_before_the_watermark_is_refused_by_the_detector() -> None:
    detector = ExcursionDetector(SIMPLE)
    detector.feed(series([5, 5, 5]))
    try:
        detector.feed([Sample("s1", minutes(1), 5, True)])
    except ValueError as exc:
        assert "watermark" in str(exc)
    else:
        raise AssertionError("a late sample was accepted")


class ListHistory:
    """Stored samples and episodes kept in lists, as the service keeps them in tables."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.episodes: dict[EpisodeKey, Episode] = {}

    def samples_since(self, start: datetime) -> list[Sample]:
        return sorted((s for s in self.samples if s.taken_at >= start), key=lambda s: s.taken_at)

    def last_ok_before(self, t: datetime) -> datetime | None:
        return max((s.taken_at for s in self.samples if s.ok and s.taken_at < t), default=None)

    def episodes_since(self, t: datetime) -> list[Episode]:
        return [
            e
            for e in self.episodes.values()
            if e.ended_at is None or e.ended_at >= t or e.started_at >= t
        ]


def evaluate_in_chunks(profile: Profile, chunks: list[list[Sample]]) -> list[Episode]:
    history, state = ListHistory(), None
    for chunk in chunks:
        history.samples.extend(chunk)  # committed before the rules run
        outcome = evaluate_zone(profile, (), state, chunk, history)
        for e in outcome.changed:
            history.episodes[e.key] = e
        for e in outcome.withdrawn:
            del history.episodes[e.key]
        state = outcome.state
    return sorted(history.episodes.values(), key=lambda e: e.key)


def test_a_truck_backlog_raises_what_it_would_have_raised_live() -> None:
    values = [5.0] * 60 + [11.0] * 90 + [5.0] * 60
    samples = series(values)
    live = evaluate_in_chunks(FRIDGE, [samples[i : i + 5] for i in range(0, len(samples), 5)])
    offline = evaluate_in_chunks(FRIDGE, [samples[:30], samples[30:]])
    assert live == offline
    alarm = next(e for e in offline if e.rule == "alarm high > 8 for 60 min")
    assert (alarm.started_at, alarm.ended_at) == (minutes(60), minutes(150))


def test_late_data_out_of_order_replays_only_the_affected_span() -> None:
    values = [5.0] * 30 + [11.0] * 70 + [5.0] * 30
    samples = series(values)
    outcome_chunks = [samples[100:], samples[:50], samples[50:100]]
    assert evaluate_in_chunks(FRIDGE, outcome_chunks) == evaluate_in_chunks(FRIDGE, [samples])


values_strategy = st.lists(
    st.one_of(st.floats(-2, 14, allow_nan=False), st.none()), min_size=20, max_size=160
)


@settings(max_examples=60, deadline=None)
@given(
    values=values_strategy,
    cuts=st.lists(st.integers(0, 160), max_size=5),
    order=st.randoms(use_true_random=False),
    bad=st.sets(st.integers(0, 160), max_size=10),
    skips=st.sets(st.integers(0, 160), max_size=40),
)
def test_late_data_in_any_order_gives_the_same_episodes(
    values: list[float | None], cuts: list[int], order: object, bad: set[int], skips: set[int]
) -> None:
    samples = [
        Sample("s1", minutes(i), v, i not in bad and v is not None)
        for i, v in enumerate(values)
        if i not in skips  # holes in the data: gaps
    ]
    bounds = sorted({0, len(samples), *(c for c in cuts if c < len(samples))})
    chunks = [samples[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    shuffled = list(chunks)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    in_order = evaluate_in_chunks(FRIDGE, [samples])
    assert evaluate_in_chunks(FRIDGE, shuffled) == in_order


def test_episode_identity_is_profile_rule_level_and_start() -> None:
    (episode,) = run(SIMPLE, series([9] * 12))
    assert episode.key == ("simple", "alarm high > 8 for 10 min", "alarm", minutes(0))
    assert replace(episode, trigger=minutes(99)) == episode


def test_humidity_profile_reports_humidity_excursions() -> None:
    values = [50.0] * 3 + [65.0] * 35 + [57.0]
    (episode,) = run(PRESETS["humidity"], series(values))
    assert (episode.kind, episode.level, episode.rule) == (
        "humidity",
        "warning",
        "warning high > 60 for 30 min",
    )
    assert (episode.started_at, episode.ended_at) == (minutes(3), minutes(38))


class StepByStep(ExcursionDetector):
    """The detector without its shortcuts for calm readings: every sample takes the full step."""

    def _calm_samples(self, *columns: Any) -> None:
        return None

    def _calm_step(self, t: float, s: Sample) -> bool:
        return False


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.one_of(st.sampled_from([5.0, 5.0, 5.0, 9.0, 13.0, -1.0]), st.none()),
            st.sampled_from([1] * 12 + [0, 5, 20, 45, 120]),  # minutes since the one before
            st.sampled_from(["s1"] * 19 + ["s2"]),
            st.sampled_from([True] * 19 + [False]),  # quality ok
        ),
        min_size=1,
        max_size=200,
    ),
    cuts=st.lists(st.integers(0, 200), max_size=8),
)
def test_the_calm_shortcut_changes_nothing_the_full_step_would_not(
    steps: list[tuple[float | None, int, str, bool]], cuts: list[int]
) -> None:
    samples, at = [], 0
    for value, after, sensor, ok in steps:
        at += after
        samples.append(Sample(sensor, minutes(at), value, ok and value is not None))
    bounds = sorted({0, len(samples), *(c for c in cuts if c < len(samples))})
    chunks = [samples[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    chunks = [c for c in chunks if c[0].taken_at != c[-1].taken_at or len(chunks) == 1]
    fast_state = slow_state = None
    for chunk in chunks:  # a snapshot between batches, as the service keeps it
        fast = ExcursionDetector(FRIDGE, state=fast_state)
        slow = StepByStep(FRIDGE, state=slow_state)
        if fast.watermark is not None and chunk[0].taken_at <= fast.watermark:
            continue  # a chunk cut inside one minute: late data, not this test's subject
        assert fast.feed(chunk) == slow.feed(chunk)
        fast_state, slow_state = fast.snapshot(), slow.snapshot()
        assert fast_state == slow_state


def test_a_calm_run_stops_at_a_gap_and_at_two_readings_of_one_time() -> None:
    # the detector knows its one sensor from the batch before: the next batch's calm readings
    # are taken as a run, which must end where the full step has something to say
    at = [0, 1, 2, 3, 30, 31, 32, 32, 33, 34]
    samples = [Sample("s1", minutes(m), 5.0, True) for m in at]
    samples[7] = Sample("s1", minutes(32), 13.0, True)  # a second reading at 32: it counts
    fast, slow = ExcursionDetector(FRIDGE), StepByStep(FRIDGE)
    assert fast.feed(samples[:1]) == slow.feed(samples[:1]) == []
    episodes = fast.feed(samples[1:])
    assert episodes == slow.feed(samples[1:])
    assert [(e.rule, e.started_at, e.ended_at) for e in episodes] == [
        ("unknown conditions", minutes(3), minutes(30))
    ]
    assert fast.snapshot() == slow.snapshot()
    assert fast.snapshot()["sensors"]["s1"][1] == 5.0
    # a calm reading and a freezing one taken at one time are one step: the freezing
    # excursion's trigger is the later arrival of the two, the calm one's
    later, earlier = minutes(40), minutes(39)
    both = [
        Sample("s1", minutes(35), 5.0, True, later),
        Sample("s1", minutes(35), -1.0, True, earlier),
    ]
    frozen = fast.feed(both)
    assert frozen == slow.feed(both)
    assert [(e.kind, e.trigger) for e in frozen] == [("freezing", later)]


def test_the_calm_shortcut_leaves_a_zone_of_two_sensors_to_the_full_step() -> None:
    # s2 reads once, then only s1: the full step drops s2 once stale, and so must the detector
    samples = [Sample("s1", minutes(0), 5.0, True), Sample("s2", minutes(0), 5.0, True)]
    samples += [Sample("s1", minutes(m), 5.0, True) for m in range(1, 40)]
    fast, slow = ExcursionDetector(FRIDGE), StepByStep(FRIDGE)
    assert fast.feed(samples) == slow.feed(samples) == []
    assert fast.snapshot() == slow.snapshot()
    assert list(fast.snapshot()["sensors"]) == ["s1"]


# --- several profiles on one zone ----------------------------------------------------------

TWO_TEMPERATURES = replace(SIMPLE, name="tight")  # a second temperature profile on the zone
ZONE_PROFILES = (FRIDGE, TWO_TEMPERATURES, PRESETS["humidity"])


class ZoneRecord:
    """One zone's stored samples (by quantity) and its episodes in one table, keyed as the
    excursions table is: what a profile reads back is its own, as the service reads it."""

    def __init__(self) -> None:
        self.samples: dict[str, list[Sample]] = {"temperature": [], "humidity": []}
        self.episodes: dict[EpisodeKey, Episode] = {}

    def of(self, profile: Profile) -> ListHistory:
        history = ListHistory()
        history.samples = self.samples[profile.quantity]
        history.episodes = {k: e for k, e in self.episodes.items() if e.profile == profile.name}
        return history


def evaluate_zone_in_chunks(chunks: list[dict[str, list[Sample]]]) -> list[Episode]:
    record, states = ZoneRecord(), {p.name: None for p in ZONE_PROFILES}
    for chunk in chunks:
        for quantity, samples in chunk.items():
            record.samples[quantity].extend(samples)  # committed before the rules run
        for profile in ZONE_PROFILES:
            samples = chunk[profile.quantity]
            outcome = evaluate_zone(profile, (), states[profile.name], samples, record.of(profile))
            for e in outcome.changed:
                record.episodes[e.key] = e
            for e in outcome.withdrawn:
                del record.episodes[e.key]
            states[profile.name] = outcome.state  # type: ignore[assignment]
    return sorted(record.episodes.values(), key=lambda e: e.key)


def single_pass(samples: dict[str, list[Sample]]) -> list[Episode]:
    """Every profile's episodes from one detector fed everything: a list, so no key hides one."""
    found = [e for p in ZONE_PROFILES for e in run(p, samples[p.quantity])]
    return sorted(found, key=lambda e: e.key)


def peak_of_readings(episode: Episode, samples: list[Sample]) -> float:
    """The extreme of the raw readings that are evidence (of `ok` quality or calibration
    overdue) over the episode's span (to the data's end if open)."""
    end = episode.ended_at or max(s.taken_at for s in samples)
    values = [
        s.value
        for s in samples
        if s.ok and s.value is not None and episode.started_at <= s.taken_at <= end
    ]
    return max(values) if " > " in episode.rule else min(values)


def ramps(low: float, high: float) -> st.SearchStrategy[list[float | None]]:
    """Values in runs that climb or fall (long enough to count, with peaks that move), some
    of them missing."""
    segment = st.tuples(
        st.floats(low, high, allow_nan=False),
        st.floats(-0.4, 0.4, allow_nan=False),
        st.integers(1, 50),
    )

    def flatten(segments: list[tuple[float, float, int]]) -> list[float | None]:
        return [v + slope * k for v, slope, n in segments for k in range(n)][:160]

    return st.lists(segment, min_size=1, max_size=8).map(flatten)


# quality flags of a gateway (edge/wire.Quality) other than ok: calibration overdue is
# evidence, the others are not
FLAGS = (
    CALIBRATION_OVERDUE,
    CALIBRATION_OVERDUE,
    CALIBRATION_OVERDUE,
    "timeout",
    "modbus_exception",
    "out_of_range",
    "stale",
    "sensor_fault",
    "invalid_value",
    "clock_unsynchronised",
)


@settings(max_examples=300, deadline=None)  # enough to find a bad flag at a run's extreme
@given(
    temperatures=ramps(-2, 16),
    humidities=ramps(40, 85),
    missing=st.sets(st.integers(0, 160), max_size=8),
    cuts=st.lists(st.integers(0, 160), max_size=5),
    order=st.randoms(use_true_random=False),
    flags=st.dictionaries(st.integers(0, 160), st.sampled_from(FLAGS), max_size=40),
    skips=st.sets(st.integers(0, 160), max_size=60),
)
def test_several_profiles_in_chunks_give_a_single_passs_episodes_and_true_peaks(
    temperatures: list[float | None],
    humidities: list[float | None],
    missing: set[int],
    cuts: list[int],
    order: object,
    flags: dict[int, str],
    skips: set[int],
) -> None:
    temperatures = [None if i in missing else v for i, v in enumerate(temperatures)]
    humidities = (humidities * 160)[: len(temperatures)]
    minutes_kept = [i for i in range(len(temperatures)) if i not in skips]  # holes: gaps

    def flagged(i: int, value: float | None, quality: str) -> Sample:
        """A reading as the service makes it of its quality flag (decision 0027)."""
        return Sample(
            "s1", minutes(i), value, usable(quality, value), None, quality == CALIBRATION_OVERDUE
        )

    samples = {
        "temperature": [flagged(i, temperatures[i], flags.get(i, "ok")) for i in minutes_kept],
        "humidity": [  # the same sensor: its flag says the same of both quantities
            flagged(i, humidities[i], flags.get(i, "ok")) for i in minutes_kept
        ],
    }
    bounds = sorted({0, len(minutes_kept), *(c for c in cuts if c < len(minutes_kept))})
    chunks = [
        {q: column[a:b] for q, column in samples.items()}
        for a, b in zip(bounds, bounds[1:], strict=False)
        if b > a
    ]
    expected = single_pass(samples)
    assert evaluate_zone_in_chunks(chunks) == expected  # in order: the incremental path
    order.shuffle(chunks)  # type: ignore[attr-defined]
    assert evaluate_zone_in_chunks(chunks) == expected  # out of order: replays too
    for e in expected:
        if e.kind != "unknown_conditions" and e.kind != "cumulative":
            quantity = "humidity" if e.profile == "humidity" else "temperature"
            assert e.peak == peak_of_readings(e, samples[quantity]), e


def test_a_temperature_and_a_humidity_gap_of_one_start_are_two_episodes() -> None:
    samples = {
        q: [Sample("s1", minutes(m), v, True) for m in (0, 1, 150)]
        for q, v in (("temperature", 5.0), ("humidity", 50.0))
    }
    gaps = [(e.profile, e.level) for e in single_pass(samples) if e.rule == GAP_RULE]
    assert gaps == [
        ("2-8C", "alarm"),
        ("2-8C", "warning"),
        ("humidity", "warning"),  # 149 min: under the humidity profile's 240 for an alarm
        ("tight", "alarm"),
        ("tight", "warning"),
    ]
    assert evaluate_zone_in_chunks([samples]) == single_pass(samples)
