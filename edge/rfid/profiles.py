"""Reader profiles: how one reader model writes its tag reads, as data in firmware-configs/readers.

A profile is either `json` (a body holding one read, a list of reads, or an object with the
list at `records`; each field is found at the first of several dotted paths that exists) or
`line` (one read per line, split at a delimiter into named columns, or matched by a regex
with named groups).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.config import ConfigError, LoadedGateway, _compose, _line_of, _validate

FIELDS = ("epc", "antenna", "rssi", "timestamp")
SKIP = "-"  # a column that is not used


class ReaderProfile(BaseModel):
    """One reader model's output format, validated once at load."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    notes: str = ""
    format: Literal["json", "line"]
    # json: candidate dotted paths per field, first present wins
    records: str | None = Field(default=None, description="Path to the list of reads in a body")
    epc: tuple[str, ...] = ()
    antenna: tuple[str, ...] = ()
    rssi: tuple[str, ...] = ()
    timestamp: tuple[str, ...] = ()
    # line: either delimiter + columns, or a regex with named groups
    delimiter: str | None = None
    columns: tuple[str, ...] = ()
    pattern: str | None = None
    encoding: str = "utf-8"
    # both
    rssi_scale: float = Field(default=1.0, description="e.g. 0.01 for centi-dBm")
    timestamp_unit: Literal["iso", "s", "ms", "us"] = "iso"
    time_source: Literal["gateway", "reader"] = "gateway"

    @model_validator(mode="after")
    def _consistent(self) -> ReaderProfile:
        if self.format == "json":
            self._json_only()
        else:
            self._line_only()
        if self.time_source == "reader" and "timestamp" not in self.provides:
            raise ValueError("time_source reader needs a timestamp field")
        return self

    def _json_only(self) -> None:
        if not self.epc:
            raise ValueError("a json profile needs epc: [paths where the EPC may be]")
        if self.delimiter or self.columns or self.pattern:
            raise ValueError("delimiter, columns and pattern belong to line profiles")

    def _line_only(self) -> None:
        if self.records or self.epc or self.antenna or self.rssi or self.timestamp:
            raise ValueError("records, epc, antenna, rssi, timestamp paths belong to json profiles")
        if (self.pattern is None) == (not self.columns):
            raise ValueError("a line profile needs either columns (with delimiter) or pattern")
        if self.columns:
            if not self.delimiter:
                raise ValueError("columns need a delimiter")
            unknown = [c for c in self.columns if c not in (*FIELDS, SKIP)]
            if unknown:
                raise ValueError(f"unknown columns {unknown}; use {[*FIELDS]} or {SKIP!r}")
        if self.pattern is not None:
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from None
            unknown = sorted(set(compiled.groupindex) - set(FIELDS))
            if unknown:
                raise ValueError(f"pattern has unknown groups {unknown}; use {[*FIELDS]}")
        if "epc" not in self.provides:
            raise ValueError("a line profile needs an epc column or group")

    @property
    def provides(self) -> frozenset[str]:
        """The fields this profile can extract."""
        if self.format == "json":
            return frozenset(f for f in FIELDS if getattr(self, f))
        if self.pattern is not None:
            return frozenset(re.compile(self.pattern).groupindex)
        return frozenset(self.columns) - {SKIP}


def load_profile(path: str | Path) -> ReaderProfile:
    """Load and validate one reader profile file."""
    return _validate(Path(path), ReaderProfile)


def load_reader_profiles(loaded: LoadedGateway) -> dict[str, ReaderProfile | None]:
    """Each reader's profile (None for simulated readers), resolved next to the gateway config."""
    profiles: dict[str, ReaderProfile | None] = {}
    cache: dict[Path, ReaderProfile] = {}
    for i, reader in enumerate(loaded.config.readers):
        if reader.profile is None:
            profiles[reader.id] = None
            continue
        path = (loaded.path.parent / reader.profile).resolve()
        if not path.is_file():
            line = _line_of(_compose(loaded.path), ("readers", i, "profile"))
            raise ConfigError(
                loaded.path, [f"line {line}: readers.{i}.profile: no such file {str(path)!r}"]
            )
        if path not in cache:
            cache[path] = load_profile(path)
        profiles[reader.id] = cache[path]
    return profiles
