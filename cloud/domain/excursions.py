"""Excursion episodes of one zone, detected incrementally from the times readings were taken.

`ExcursionDetector` consumes a zone's samples in time order and reports every episode whose
record changed (opened, closed, escalated). Its state is plain JSON (`snapshot`), so the
service persists it per zone and the next batch carries on where the last one stopped.
A batch holding samples at or before the detector's watermark (late data out of order) is
re-evaluated by `cloud.domain.late_data.evaluate_zone`: it replays only the affected span,
from early enough to rebuild every rule's state, and reconciles the result with the stored
episodes.

Rules, in the zone's worst-case value (every sensor's newest reading, while fresh):
- a limit counts once beyond it continuously for its delay (plus the grace of a suppression
  window the run started in); it ends at the first reading back inside by the deadband;
- freezing (at or below the profile's freeze limit) counts at once;
- cumulative rules sum the minutes at or beyond their limit over a sliding window;
- no valid reading for longer than the profile allows is "unknown conditions";
- a sample is `ok` when it is evidence (`cloud.domain.evidence.usable`: a value of `ok`
  quality or from a sensor past its calibration due date, decision 0027); a sample with any
  other quality flag carries no value for the rules: it never opens, extends, peaks or ends
  an episode, and never fills a monitoring gap (a sensor sending only such readings goes
  silent, and the gap is "unknown conditions").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import attrgetter, eq, not_, sub
from typing import Any, NamedTuple

from cloud.domain.monitoring import Cumulative, Profile

GAP_RULE = "unknown conditions"
STATE_VERSION = 1
GAP_LEVELS = ("warning", "alarm")
RECOVERED = "conditions recovered from the gateway's backlog"

EpisodeKey = tuple[str, str, str, datetime]  # profile, rule, level, started_at


class Sample(NamedTuple):
    """One reading of the zone's quantity; `ok`: the reading is evidence (its quality is `ok`
    or `calibration_overdue`, see `cloud.domain.evidence.usable`); a sample that is not has
    its value ignored."""

    sensor: str
    taken_at: datetime
    value: float | None
    ok: bool
    received_at: datetime | None = None
    overdue: bool = False  # from a sensor past its calibration due date (still evidence)


@dataclass(frozen=True, kw_only=True)
class Suppression:
    """A window in which a run that starts gets `grace_min` more before it counts."""

    started_at: datetime
    ended_at: datetime
    reason: str
    grace_min: float


@dataclass(frozen=True, kw_only=True)
class Episode:
    """An excursion as the rules see it; (profile, rule, level, started_at) is its identity
    in a zone: the profiles of a zone (temperature, humidity) and the levels of one rule (a
    monitoring gap's warning and alarm) each have episodes of their own (decision 0020)."""

    profile: str
    rule: str
    kind: str
    level: str
    started_at: datetime
    ended_at: datetime | None
    peak: float | None
    limit: float | None
    suppressed_reason: str | None = None
    trigger: datetime | None = field(default=None, compare=False)  # received_at that decided it

    @property
    def key(self) -> EpisodeKey:
        return (self.profile, self.rule, self.level, self.started_at)

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


_BY_TIME_AND_SENSOR = attrgetter("taken_at", "sensor")
_TAKEN_AT = attrgetter("taken_at")


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class _Check:
    """A limit or the freeze limit, reduced to what a run needs."""

    rule: str
    kind: str
    level: str
    limit: float
    delay_s: float
    high: bool  # judged on the zone's highest value (else its lowest)
    beyond: Callable[[float], bool]
    back_inside: Callable[[float], bool]


# id(profile) -> (profile, its checks, its quiet values): a detector is made for each zone of
# each batch, and hashing a profile (a tree of frozen dataclasses) for a cache costs more than
# the rest of making the detector; the profile is kept in the entry so its id stays its own.
_MADE: dict[
    int,
    tuple[Profile, tuple[list[_Check], list[tuple[Cumulative, str, bool]]], dict[float, bool]],
] = {}


def _made_for(
    profile: Profile,
) -> tuple[list[_Check], list[tuple[Cumulative, str, bool]], dict[float, bool]]:
    """The profile's checks and cumulative rules, and its cache of values beyond no limit."""
    entry = _MADE.get(id(profile))
    if entry is None or entry[0] is not profile:
        if len(_MADE) >= 256:
            _MADE.clear()
        entry = _MADE[id(profile)] = (profile, _checks(profile), {})
    (checks, cumulative), quiet = entry[1], entry[2]
    return checks, cumulative, quiet


def _checks(profile: Profile) -> tuple[list[_Check], list[tuple[Cumulative, str, bool]]]:
    """The profile's limits as checks, and its cumulative rules with their names."""
    cumulative = [(c, c.rule, c.direction == "above") for c in profile.cumulative]
    checks = [
        _Check(
            rule=lim.rule,
            kind=profile.excursion_kind or lim.kind,
            level=lim.level,
            limit=lim.limit,
            delay_s=lim.delay_min * 60,
            high=lim.kind == "high",
            beyond=lim.beyond,
            back_inside=lim.back_inside,
        )
        for lim in profile.limits
    ]
    if profile.freeze_limit is not None:
        freeze = profile.freeze_limit
        checks.append(
            _Check(
                rule=f"alarm freezing <= {freeze:g}",
                kind="freezing",
                level="alarm",
                limit=freeze,
                delay_s=0.0,
                high=False,
                beyond=lambda v: v <= freeze,
                back_inside=lambda v: v > freeze,
            )
        )
    return checks, cumulative


class ExcursionDetector:
    """The episodes of one zone and profile; feed samples in time order, persist `snapshot`."""

    def __init__(
        self,
        profile: Profile,
        suppressions: Sequence[Suppression] = (),
        state: dict[str, Any] | None = None,
    ):
        self.profile = profile
        self.gap_s = profile.max_gap_min * 60
        self.gap_alarm_s = profile.gap_alarm_min * 60
        self.checks, cumulative_rules, self._quiet_values = _made_for(profile)
        self.suppressions = sorted(
            (s.started_at.timestamp(), s.ended_at.timestamp(), s.reason, s.grace_min * 60)
            for s in suppressions
        )
        state = state if state and state.get("version") == STATE_VERSION else {}
        self.watermark_s: float | None = state.get("watermark")
        self.last_ok: float | None = state.get("last_ok")
        self.gap: dict[str, Any] | None = state.get("gap")
        self.sensors: dict[str, list[Any]] = state.get("sensors", {})
        runs = state.get("runs", {})
        self.runs: dict[str, dict[str, Any]] = {c.rule: runs.get(c.rule, {}) for c in self.checks}
        cumul = state.get("cumulative", {})
        self.cumulative = {
            name: cumul.get(name) or {"spans": [], "sum": 0.0} for _, name, _ in cumulative_rules
        }
        # (rule, name, its accumulator, judged on the highest value) computed once: hot path
        self.cumulative_rules = [
            (c, name, self.cumulative[name], above) for c, name, above in cumulative_rules
        ]
        self.check_runs = [(c, self.runs[c.rule]) for c in self.checks]
        self._update_calm()

    # --- persistence ----------------------------------------------------------------------

    @property
    def watermark(self) -> datetime | None:
        return None if self.watermark_s is None else _dt(self.watermark_s)

    def snapshot(self) -> dict[str, Any]:
        """The detector's state as JSON-ready data."""
        return {
            "version": STATE_VERSION,
            "watermark": self.watermark_s,
            "last_ok": self.last_ok,
            "gap": self.gap,
            "sensors": self.sensors,
            "runs": {k: v for k, v in self.runs.items() if v},
            "cumulative": self.cumulative,
        }

    # --- evaluation -----------------------------------------------------------------------

    def feed(self, samples: Iterable[Sample]) -> list[Episode]:
        """Evaluate samples newer than the watermark; returns every episode that changed."""
        ordered = sorted(samples, key=_BY_TIME_AND_SENSOR)
        if not ordered:
            return []
        sensors, takens, values, oks, *_ = zip(*ordered, strict=True)
        ts = list(map(datetime.timestamp, takens))
        if self.watermark_s is not None and ts[0] <= self.watermark_s:
            raise ValueError(
                f"sample at {ordered[0].taken_at.isoformat()} is not after the watermark "
                f"{_dt(self.watermark_s).isoformat()}: use evaluate_zone for late data"
            )
        calm = self._calm_samples(sensors, ts, values, oks)
        changed: list[Episode] = []
        n, i = len(ordered), 0
        while i < n:
            t = ts[i]
            if calm is not None and calm[i] and self._calm_from(sensors[i], t):
                try:  # every calm sample up to the next one that is not, in one step
                    end = calm.index(False, i)
                except ValueError:
                    end = n
                self._calm_to(sensors[i], ts[end - 1], values[end - 1])
                i = end
                continue
            j = i + 1
            while j < n and ts[j] == t:
                j += 1
            if j == i + 1 and self._calm_step(t, ordered[i]):
                i = j
                continue
            changed.extend(self._step(t, ordered[i:j]))
            i = j
        return changed

    def _calm_samples(
        self,
        sensors: Sequence[str],
        ts: list[float],
        values: Sequence[float | None],
        oks: Sequence[bool],
    ) -> list[bool] | None:
        """Which samples `_calm_step` would take as they stand, whatever comes before them:
        of the zone's one sensor, valid, within every limit, alone at their time and soon
        enough after the sample before. Made by the builtins over whole columns (a batch of
        a calm zone costs a few passes in C, not a Python call per sample); None when the
        zone has more than one sensor, where the shortcut never applies."""
        if len(self.sensors) != 1:
            return None
        (sensor,) = self.sensors
        loud = {v for v in set(values) if not self._quiet(v)}
        before = list(map(sub, ts, [ts[0] - 1.0, *ts[:-1]]))  # the first: checked when taken
        alone = [*map((0.0).__lt__, before[1:]), True]  # no sample after at the same time
        soon = map(float(self.gap_s).__ge__, before)
        return list(
            map(
                all,
                zip(
                    map(eq, sensors, repeat(sensor)),
                    oks,
                    map(not_, map(loud.__contains__, values)),
                    soon,
                    alone,
                    strict=True,
                ),
            )
        )

    def _calm_from(self, sensor: str, t: float) -> bool:
        """Whether the detector's state lets `_calm_step` take a calm sample at t."""
        return (
            self._calm
            and self.gap is None
            and self.last_ok is not None
            and t - self.last_ok <= self.gap_s
            and len(self.sensors) == 1
            and sensor in self.sensors
        )

    def _calm_to(self, sensor: str, t: float, value: float | None) -> None:
        """What `_calm_step` leaves after a run of calm samples, the last at t."""
        self.sensors[sensor] = [t, value, True]
        self.last_ok = t
        for _, _, acc, _ in self.cumulative_rules:
            acc["last_t"] = t
        self.watermark_s = t

    def _quiet(self, v: float | None) -> bool:
        """A value beyond no limit and no cumulative rule's limit (None never is)."""
        if v is None:
            return False
        quiet = self._quiet_values.get(v)
        if quiet is None:
            quiet = not any(c.beyond(v) for c in self.checks) and not any(
                r.beyond(v) for r, _, _, _ in self.cumulative_rules
            )
            if len(self._quiet_values) > 4096:
                self._quiet_values.clear()
            self._quiet_values[v] = quiet
        return quiet

    def _calm_step(self, t: float, s: Sample) -> bool:
        """The common case in one step: a zone of one sensor, nothing open or running, and a
        valid reading within every limit and soon enough after the last one. It changes
        what `_step` would (the sensor, the last valid reading, the watermark) and nothing
        else; False, having changed nothing, when any of that does not hold."""
        if not s.ok or not self._calm_from(s.sensor, t) or not self._quiet(s.value):
            return False
        self._calm_to(s.sensor, t, s.value)
        return True

    def _update_calm(self) -> None:
        self._calm = not any(self.runs.values()) and not any(
            acc.get("last_beyond") or acc.get("open") is not None
            for _, _, acc, _ in self.cumulative_rules
        )

    def _step(self, t: float, group: list[Sample]) -> list[Episode]:
        trigger = None
        fresh_ok = False
        sensors = self.sensors
        for s in group:
            # a reading that is not evidence says nothing of the zone's value
            sensors[s.sensor] = [t, s.value if s.ok else None, s.ok]
            if s.received_at is not None and (trigger is None or s.received_at > trigger):
                trigger = s.received_at
            fresh_ok = fresh_ok or (s.ok and s.value is not None)
        out: list[Episode] = []
        if fresh_ok:
            self._gap_ends(t, trigger, out)
        if len(sensors) == 1:  # one sensor: it is the one just read
            hi = lo = group[-1].value if group[-1].ok else None
            have_ok = fresh_ok
        else:
            hi, lo, have_ok = self._zone_values(t)
        for check, run in self.check_runs:
            value = hi if check.high else lo
            if value is not None and (run or check.beyond(value)):
                self._run(check, run, t, value, have_ok, trigger, out)
        for rule, name, acc, above in self.cumulative_rules:
            value = hi if above else lo
            beyond = value is not None and rule.beyond(value)
            if beyond or acc.get("last_beyond") or acc.get("open") is not None:
                self._accumulate(rule, name, acc, t, value, beyond, have_ok, trigger, out)
            else:
                acc["last_t"] = t  # quiet: nothing accrues, nothing opens or closes
        self.watermark_s = t
        self._update_calm()
        return out

    def _zone_values(self, t: float) -> tuple[float | None, float | None, bool]:
        """The zone's highest and lowest fresh values, and whether a valid reading is among them."""
        hi = lo = None
        have_ok = False
        for sensor, (st, value, ok) in list(self.sensors.items()):
            if t - st > self.gap_s:
                del self.sensors[sensor]  # stale: says nothing about the zone now
                continue
            if value is None:
                continue
            hi = value if hi is None or value > hi else hi
            lo = value if lo is None or value < lo else lo
            have_ok = have_ok or ok
        return hi, lo, have_ok

    def _grace(self, since: float) -> tuple[float, str | None]:
        for start, end, reason, grace in self.suppressions:
            if start <= since <= end:
                return grace, reason
        return 0.0, None

    def _run(
        self,
        c: _Check,
        run: dict[str, Any],
        t: float,
        value: float,
        have_ok: bool,
        trigger: Any,
        out: list[Episode],
    ) -> None:
        if c.beyond(value):
            if not run:
                run.update(since=t, last=t, peak=value, counted=False)
            else:
                run["last"] = t
                run["peak"] = max(run["peak"], value) if c.high else min(run["peak"], value)
            if run["counted"]:  # open: its peak (and its exposures) follow the zone
                out.append(self._episode(c, run, None, None, trigger))
            else:
                grace, _ = self._grace(run["since"])
                if t - run["since"] >= c.delay_s + grace:
                    run["counted"] = True
                    out.append(self._episode(c, run, None, None, trigger))
            return
        if not run or not have_ok:
            return  # a reading that cannot be trusted does not prove the zone is back
        if run["counted"]:
            if c.back_inside(value):
                out.append(self._episode(c, run, t, None, trigger))
                run.clear()
            else:  # in the deadband: still open, and its exposures go on
                out.append(self._episode(c, run, None, None, trigger))
            return
        grace, reason = self._grace(run["since"])
        if reason is not None and run["last"] - run["since"] >= c.delay_s:
            out.append(self._episode(c, run, t, reason, trigger))  # absorbed, and recorded
        run.clear()

    def _episode(
        self, c: _Check, run: dict[str, Any], end: float | None, reason: str | None, trigger: Any
    ) -> Episode:
        return Episode(
            profile=self.profile.name,
            rule=c.rule,
            kind=c.kind,
            level=c.level,
            started_at=_dt(run["since"]),
            ended_at=None if end is None else _dt(end),
            peak=run["peak"],
            limit=c.limit,
            suppressed_reason=reason,
            trigger=trigger,
        )

    def _accumulate(
        self,
        rule: Cumulative,
        name: str,
        acc: dict[str, Any],
        t: float,
        value: float | None,
        beyond: bool,
        have_ok: bool,
        trigger: Any,
        out: list[Episode],
    ) -> None:
        spans: list[list[float]] = acc["spans"]
        last_t, last_beyond = acc.get("last_t"), acc.get("last_beyond", False)
        if last_t is not None and last_beyond:
            end = min(t, last_t + self.gap_s)  # time without data is not counted as out
            if spans and spans[-1][1] == last_t:
                spans[-1][1] = end
            else:
                spans.append([last_t, end])
            acc["sum"] += end - last_t
        horizon = t - rule.window_min * 60
        while spans and spans[0][1] <= horizon:
            acc["sum"] -= spans[0][1] - spans[0][0]
            spans.pop(0)
        total = acc["sum"] - (max(0.0, horizon - spans[0][0]) if spans else 0.0)
        allowed = rule.allowed_min * 60
        if acc.get("open") is not None:
            if beyond:
                acc["peak"] = (
                    max(acc["peak"], value)
                    if rule.direction == "above"
                    else min(acc["peak"], value)
                )
                out.append(self._cumulative_episode(rule, name, acc, None, trigger))
            elif have_ok and value is not None:
                out.append(self._cumulative_episode(rule, name, acc, t, trigger))
                acc["open"] = None
        elif last_beyond and total >= allowed:
            crossed = max(spans[-1][1] - (total - allowed), acc.get("run_start", last_t))
            acc["open"], acc["peak"] = crossed, acc.get("run_peak", value)
            if beyond:
                acc["peak"] = (
                    max(acc["peak"], value)
                    if rule.direction == "above"
                    else min(acc["peak"], value)
                )
            out.append(self._cumulative_episode(rule, name, acc, None, trigger))
            if not beyond and have_ok and value is not None:
                out.append(self._cumulative_episode(rule, name, acc, t, trigger))
                acc["open"] = None
        if beyond and value is not None:  # only a value is ever beyond a limit
            if not last_beyond:
                acc["run_start"], acc["run_peak"] = t, value
            else:
                run_peak = acc.get("run_peak", value)
                acc["run_peak"] = (
                    max(run_peak, value) if rule.direction == "above" else min(run_peak, value)
                )
        acc["last_t"], acc["last_beyond"] = t, beyond

    def _cumulative_episode(
        self, rule: Cumulative, name: str, acc: dict[str, Any], end: float | None, trigger: Any
    ) -> Episode:
        return Episode(
            profile=self.profile.name,
            rule=name,
            kind="cumulative",
            level=rule.level,
            started_at=_dt(acc["open"]),
            ended_at=None if end is None else _dt(end),
            peak=acc["peak"],
            limit=rule.limit,
            trigger=trigger,
        )

    # --- monitoring gaps ------------------------------------------------------------------
    # A gap is one episode a level: its warning once silent for max_gap_min, its alarm once
    # silent for gap_alarm_min, both from the last valid reading to the next (decision 0020).

    def _gap_levels(self, seconds: float) -> list[str]:
        """The levels a silence this long reaches."""
        reached = {"warning": seconds > self.gap_s, "alarm": seconds > self.gap_alarm_s}
        return [level for level in GAP_LEVELS if reached[level]]

    @staticmethod
    def _opened(gap: dict[str, Any] | None) -> list[str]:
        """The levels of the open gap (a state kept before levels were episodes has one)."""
        if gap is None:
            return []
        return list(gap.get("levels") or [gap["level"]])

    def _gap_ends(self, t: float, trigger: Any, out: list[Episode]) -> None:
        last, opened = self.last_ok, self._opened(self.gap)
        self.last_ok, self.gap = t, None
        if last is None:
            return
        reached = self._gap_levels(t - last)
        for level in GAP_LEVELS:
            if level in reached:
                out.append(self._gap_episode(last, t, level, None, trigger))
            elif level in opened:  # opened by the clock; the backlog shows a shorter silence
                out.append(self._gap_episode(last, t, level, RECOVERED, trigger))

    def _gap_episode(
        self, since: float, end: float | None, level: str, reason: str | None, trigger: Any
    ) -> Episode:
        return Episode(
            profile=self.profile.name,
            rule=GAP_RULE,
            kind="unknown_conditions",
            level=level,
            started_at=_dt(since),
            ended_at=None if end is None else _dt(end),
            peak=None,
            limit=self.profile.max_gap_min,
            suppressed_reason=reason,
            trigger=trigger,
        )

    def tick(self, now: datetime) -> list[Episode]:
        """Open the unknown-conditions episode of each level a silence reached (the clock)."""
        if self.last_ok is None:
            return []
        opened = self._opened(self.gap)
        new = [
            level
            for level in self._gap_levels(now.timestamp() - self.last_ok)
            if level not in opened
        ]
        if not new:
            return []
        self.gap = {"levels": opened + new}
        return [self._gap_episode(self.last_ok, None, level, None, None) for level in new]

    def adopt_open_gap(self, episode: Episode) -> bool:
        """Carry over a live-opened gap that replayed data has not closed."""
        if (
            episode.rule == GAP_RULE
            and episode.profile == self.profile.name
            and episode.is_open
            and self.last_ok is not None
            and episode.started_at == _dt(self.last_ok)
        ):
            opened = self._opened(self.gap)
            if episode.level not in opened:
                self.gap = {"levels": [lv for lv in GAP_LEVELS if lv in {*opened, episode.level}]}
            return True
        return False
