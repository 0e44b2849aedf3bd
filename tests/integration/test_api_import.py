"""Master-data import from CSV: every row validated, errors reported per line and field,
and a file with any error imports nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cloud.adapters.orm.traceability import Batch, Item, Product
from tests.integration.api_support import Api, running_api

pytestmark = pytest.mark.integration
CSV = Path(__file__).resolve().parent.parent / "fixtures" / "csv"


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


def post(api: Api, kind: str, name: str, role: str = "admin") -> object:
    return api.client.post(
        f"/api/import/{kind}",
        data=(CSV / name).read_bytes(),
        content_type="text/csv",
        headers=api.as_(role),
    )


def add_the_other_products(api: Api) -> None:
    """products.csv without the vaccine the seeded world already holds."""
    lines = (CSV / "products.csv").read_text().splitlines(keepends=True)
    body = "".join(line for line in lines if not line.startswith("09506000134352"))
    made = api.client.post(
        "/api/import/products", data=body, content_type="text/csv", headers=api.as_("admin")
    )
    assert made.status_code == 201 and made.json["imported"] == 2


def counts(api: Api) -> tuple[int, int, int]:
    api.db.expire_all()
    return tuple(  # type: ignore[return-value]
        api.db.scalar(select(func.count()).select_from(model)) for model in (Product, Batch, Item)
    )


def test_products_batches_and_items_import_in_order(api: Api) -> None:
    # The seeded world already holds the vaccine product; import into a world without it.
    before = counts(api)
    products = post(api, "products", "products.csv")
    assert products.status_code == 422
    assert products.json["errors"] == [
        {"line": 2, "field": "gtin", "message": "product 09506000134352 exists"}
    ]
    assert counts(api) == before
    add_the_other_products(api)
    batches = post(api, "batches", "batches.csv")
    assert batches.status_code == 201 and batches.json == {"kind": "batches", "imported": 4}
    items = post(api, "items", "items.csv")
    assert items.status_code == 201 and items.json["imported"] == 7
    assert counts(api) == (before[0] + 2, before[1] + 4, before[2] + 7)
    insulin = api.db.scalars(select(Batch).where(Batch.lot == "INS24-117")).one()
    assert insulin.status == "available"  # a blank status takes the default
    pen = api.db.scalars(select(Item).where(Item.serial == "5001")).one()
    assert pen.batch_id == insulin.id and pen.epc == "3014F4374837754000001389"
    again = post(api, "items", "items.csv")
    assert again.status_code == 422 and len(again.json["errors"]) == 13  # 7 serials, 6 EPCs


def test_a_file_with_any_bad_row_imports_nothing(api: Api) -> None:
    before = counts(api)
    refused = post(api, "products", "products_with_errors.csv")
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    assert refused.json["type"] == "urn:coldchain:problem:import-refused"
    assert [(e["line"], e["field"]) for e in refused.json["errors"]] == [
        (3, "gtin"),
        (4, "(row)"),
        (5, "name"),
        (5, "freeze_sensitive"),
    ]
    assert "check digit should be 7" in refused.json["errors"][0]["message"]
    assert "low 25.0 is not below high 15.0" in refused.json["errors"][1]["message"]
    assert counts(api) == before  # line 2 was valid, and still not imported


def test_item_rows_are_checked_against_batches_and_each_other(api: Api) -> None:
    add_the_other_products(api)
    assert post(api, "batches", "batches.csv").status_code == 201
    before = counts(api)
    refused = post(api, "items", "items_with_errors.csv")
    assert refused.status_code == 422
    assert [(e["line"], e["field"]) for e in refused.json["errors"]] == [(5, "epc")]
    fixed = (CSV / "items_with_errors.csv").read_text().replace("NOT-AN-EPC", "")
    second = api.client.post(
        "/api/import/items", data=fixed, content_type="text/csv", headers=api.as_("admin")
    )
    assert [(e["line"], e["field"], e["message"]) for e in second.json["errors"]] == [
        (4, "serial", "repeats line 2"),
        (3, "lot", "no batch FK9999 of 09506000134352"),
    ]
    assert counts(api) == before


def test_header_problems_name_the_columns(api: Api) -> None:
    refused = post(api, "batches", "batches_unknown_column.csv")
    assert refused.status_code == 422
    assert refused.json["errors"] == [
        {"line": 1, "field": "expiry", "message": "unknown column"},
        {"line": 1, "field": "expires_on", "message": "missing column"},
    ]


def test_only_admins_import_csv(api: Api) -> None:
    assert post(api, "products", "products.csv", role="qa").status_code == 403
    as_json = api.client.post("/api/import/products", json={}, headers=api.as_("admin"))
    assert as_json.status_code == 415
    assert api.client.post("/api/import/zones", headers=api.as_("admin")).status_code == 404


def send(api: Api, kind: str, body: str | bytes) -> object:
    return api.client.post(
        f"/api/import/{kind}", data=body, content_type="text/csv", headers=api.as_("admin")
    )


HEADER = "gtin,name,low,high,freeze_sensitive,humidity_max,stability_budget_min,shelf_life_days\n"
# Six products; the name on line 3 opens a quote it never closes.
UNBALANCED = HEADER + (
    "04001234567891,Insulin glargine pen,2,8,true,65,1440,730\n"
    '07612345670010,"Paracetamol 500 mg tablets, 20,15,25,false,65,,1095\n'
    "00012345600012,Saline 0.9%,15,25,false,,,1095\n"
    "00012345600029,Frozen plasma,-25,-15,false,,,365\n"
    '00012345600036,"Water, sterile",15,25,false,,,1095\n'
    "00012345600043,Gauze,15,25,false,,,1825\n"
)


def test_an_unbalanced_quote_is_refused_at_the_line_it_opens(api: Api) -> None:
    """It used to swallow the lines after it: 6 rows sent, 3 imported, one with another
    row's limits."""
    before = counts(api)
    refused = send(api, "products", UNBALANCED)
    assert refused.status_code == 422, refused.json
    [error] = refused.json["errors"]
    assert error["line"] == 3 and error["field"] == "(file)"
    assert "quote is not closed" in error["message"], error
    assert counts(api) == before


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (HEADER + "04001234567891,Insulin\x00pen,2,8,true,65,1440,730\n", 2, "U+0000"),
        (HEADER + "04001234567891,Insulin\x1bpen,2,8,true,65,1440,730\n", 2, "U+001B"),
        (HEADER + "04001234567891," + "x" * 10_000_000 + ",2,8,true,,,730\n", 2, "longer than"),
        (HEADER + '04001234567891,"Insulin" pen,2,8,true,,,730\n', 2, "expected after"),
        (HEADER + "04001234567891,Pen,2,8,true,,,730,extra\n", 2, "more than the 8"),
    ],
    ids=["nul", "escape", "10-MB-field", "stray-quote", "extra-cell"],
)
def test_malformed_files_are_refused_with_the_line(
    api: Api, body: str, line: int, words: str
) -> None:
    before = counts(api)
    refused = send(api, "products", body.encode())
    assert refused.status_code in (413, 422), refused.data[:300]
    if refused.status_code == 422:
        assert [e["line"] for e in refused.json["errors"]] == [line]
        assert words in refused.json["errors"][0]["message"], refused.json
    assert counts(api) == before


def test_not_utf8_is_refused(api: Api) -> None:
    refused = send(
        api, "products", (HEADER + "04001234567891,Caf\xe9,2,8,true,,,730\n").encode("latin-1")
    )
    assert refused.status_code == 400 and "not UTF-8" in refused.json["detail"]


def gtin(n: int) -> str:
    body = f"{n:013d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def test_large_files_import_whole(api: Api) -> None:
    """65,536 products and 10,001 batches: past the parameter limits that made them 500."""
    before = counts(api)
    products = "gtin,name,low,high\n" + "".join(
        f"{gtin(10_000_000 + n)},Product {n},2,8\n" for n in range(65_536)
    )
    made = send(api, "products", products)
    assert made.status_code == 201 and made.json["imported"] == 65_536, made.json
    batches = "gtin,lot,expires_on,quantity\n" + "".join(
        f"{gtin(10_000_000 + n % 100)},L{n},2030-01-31,10\n" for n in range(10_001)
    )
    made = send(api, "batches", batches)
    assert made.status_code == 201 and made.json["imported"] == 10_001, made.json
    assert counts(api)[:2] == (before[0] + 65_536, before[1] + 10_001)
