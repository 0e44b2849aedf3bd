"""Sites (warehouses, trucks, customers' premises): list, read, register, change."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import available_timezones

from flask import Blueprint
from pydantic import Field, field_validator

from cloud.adapters.orm.readings import Site
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.pagination import Page
from cloud.entrypoints.api.problems import parse_body, parse_query
from cloud.entrypoints.api.records import Records
from cloud.views import records

bp = Blueprint("sites", __name__, url_prefix="/api/sites")
SiteKind = Literal["warehouse", "truck", "customer"]


def _zone_name(value: str | None) -> str | None:
    if value is not None and value not in available_timezones():
        raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin")
    return value


class NewSite(Body):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    kind: SiteKind
    timezone: str = "UTC"

    _tz = field_validator("timezone")(_zone_name)


class SiteChange(Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    kind: SiteKind | None = None
    timezone: str | None = None

    _tz = field_validator("timezone")(_zone_name)


class SiteFilter(Page):
    kind: SiteKind | None = None


def site_json(s: Site) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "kind": s.kind, "timezone": s.timezone}


SITES = Records(Site, "site", site_json)


@bp.get("")
@endpoint("read", query=SiteFilter)
def list_sites() -> Any:
    """Sites by id; filter by kind."""
    given = parse_query(SiteFilter)
    return SITES.listing(records.sites(given.kind), given)


@bp.post("")
@endpoint("master-data", body=NewSite, status=201)
def create_site() -> Any:
    """Register a site."""
    return SITES.create(parse_body(NewSite))


@bp.get("/<site_id>")
@endpoint("read")
def get_site(site_id: str) -> Any:
    """One site."""
    return SITES.show(site_id)


@bp.patch("/<site_id>")
@endpoint("master-data", body=SiteChange)
def change_site(site_id: str) -> Any:
    """Change a site's name, kind or time zone (the fields given)."""
    return SITES.change(site_id, parse_body(SiteChange))
