"""Nobody moves a batch or the record around the rules (issue 16), through the real Flask app
on PostgreSQL: a held batch is released only through its hold, recalled only through a
recall; an admin holds no QA power and cannot become QA alone; tokens go to machines or to
the admin themselves, are scoped and expire, never sign, and the trail names them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cloud.adapters.audit_seals import seal_pending, verify_trail
from cloud.adapters.orm.alerting import Recall
from cloud.adapters.orm.audit import AuditEntry
from cloud.adapters.orm.people import ApiToken, User
from cloud.adapters.orm.quality import Hold
from cloud.adapters.orm.traceability import Batch
from cloud.domain.audit_chain import AuditKey
from cloud.domain.clock import utcnow
from cloud.service_layer.signatures import SignatureRefused, sign
from cloud.service_layer.tokens import token_hash
from tests.integration.api_support import PASSWORD, Api, at, epc, running_api

pytestmark = pytest.mark.integration


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json(force=True)
    assert body["status"] == status and body["detail"]
    return body


def _held_by_the_rules(api: Api, lot: str) -> tuple[int, int]:
    """The batch held as the rules hold it: an open hold, the batch held."""
    db = api.db
    db.info.update(actor="rules", reason="alarm-level excursion")
    batch = db.scalars(select(Batch).where(Batch.lot == lot)).one()
    hold = Hold(batch_id=batch.id, reason="alarm-level excursion", opened_at=utcnow())
    db.add(hold)
    batch.status = "held"
    db.commit()
    return batch.id, hold.id


def _status(api: Api, batch_id: int) -> str:
    api.db.expire_all()
    return api.db.get(Batch, batch_id).status


# --- 1. the hold bypass -------------------------------------------------------------------


def test_a_held_batch_is_released_only_through_its_hold(api: Api) -> None:
    c, qa = api.client, api.as_("qa")
    batch_id, hold_id = _held_by_the_rules(api, "L1")
    url = f"/api/batches/{batch_id}/status"
    release = {"status": "available", "reason": "looks fine", "password": PASSWORD}
    direct = problem(c.post(url, json=release, headers=qa), 409)  # answered 200 before
    assert direct["type"].endswith("workflow-required")
    assert direct["hold_id"] == hold_id
    assert direct["route"] == f"/api/holds/{hold_id}/disposition"
    assert f"hold {hold_id}" in direct["detail"]
    rejected = c.post(url, json={"status": "rejected", "reason": "bad"}, headers=qa)
    assert problem(rejected, 409)["hold_id"] == hold_id
    assert _status(api, batch_id) == "held"
    # the release gate keeps the batch's stock off a truck while its hold is open
    pick = {"id": "SH-9", "order_id": "PO-77", "items": [epc(1)], "at": at(0).isoformat()}
    blocked = problem(c.post("/api/shipments", json=pick, headers=api.as_("operator")), 409)
    assert [(r["code"], r["subject"]) for r in blocked["reasons"]] == [("held", "L1")]
    # the hold's signed disposition is the way
    decided = c.post(
        f"/api/holds/{hold_id}/disposition",
        json={
            "decision": "release",
            "reason": "stability data",
            "password": PASSWORD,
            "username": "qa",
        },
        headers=qa,
    )
    assert decided.status_code == 200, decided.get_data(as_text=True)
    assert _status(api, batch_id) == "available"


def test_a_batch_held_without_a_hold_record_gets_one_to_decide(api: Api) -> None:
    """L2 was marked held before holds were recorded: it is not released directly either;
    holding it again opens the hold QA then decides."""
    c, qa = api.client, api.as_("qa")
    batch_id = api.db.scalars(select(Batch.id).where(Batch.lot == "L2")).one()
    url = f"/api/batches/{batch_id}/status"
    direct = problem(c.post(url, json={"status": "available", "reason": "x"}, headers=qa), 409)
    assert "held with no open hold" in direct["detail"] and direct["route"] == "/api/holds"
    opened = c.post(url, json={"status": "held", "reason": "record the hold"}, headers=qa)
    assert opened.status_code == 200 and opened.json["hold_id"]
    assert api.db.get(Hold, opened.json["hold_id"]).status == "open"


def test_a_batch_is_recalled_only_through_a_recall(api: Api) -> None:
    c, qa = api.client, api.as_("qa")
    batch_id = api.db.scalars(select(Batch.id).where(Batch.lot == "L1")).one()
    url = f"/api/batches/{batch_id}/status"
    direct = problem(c.post(url, json={"status": "recalled", "reason": "x"}, headers=qa), 409)
    assert direct["route"] == "/api/recalls" and "POST /api/recalls" in direct["detail"]
    assert _status(api, batch_id) == "available"
    assert api.db.scalars(select(Recall)).all() == []
    opened = c.post(
        "/api/recalls",
        json={
            "batch_id": batch_id,
            "reason": "supplier notice",
            "password": PASSWORD,
            "username": "qa",
        },
        headers=qa,
    )
    assert opened.status_code == 201 and opened.json["signatures"][0]["username"] == "qa"
    assert _status(api, batch_id) == "recalled"


def test_master_data_cannot_register_a_batch_held_or_recalled(api: Api) -> None:
    body = {"gtin": "09506000134352", "lot": "L9", "expires_on": "2027-01-01", "quantity": 5}
    for status in ("held", "recalled", "rejected"):
        answer = api.client.post(
            "/api/batches", json={**body, "status": status}, headers=api.as_("admin")
        )
        assert "follow their workflows" in str(problem(answer, 422)["errors"])


# --- 2. an admin becomes QA ---------------------------------------------------------------


def test_an_admin_holds_no_qa_power_and_cannot_give_it_to_themselves(api: Api) -> None:
    c, admin = api.client, api.as_("admin")
    batch_id, hold_id = _held_by_the_rules(api, "L1")
    sign_release = {"decision": "release", "reason": "fine", "password": PASSWORD}
    disposition = f"/api/holds/{hold_id}/disposition"
    assert problem(c.post(disposition, json=sign_release, headers=admin), 403)
    own = c.patch("/api/users/admin", json={"role": "qa", "reason": "cover"}, headers=admin)
    assert "their own role" in problem(own, 403)["detail"]
    assert problem(c.post(disposition, json=sign_release, headers=admin), 403)
    recall = {"batch_id": batch_id, "reason": "x", "password": PASSWORD}
    assert problem(c.post("/api/recalls", json=recall, headers=admin), 403)
    status = {"status": "recalled", "reason": "x"}
    assert problem(c.post(f"/api/batches/{batch_id}/status", json=status, headers=admin), 403)
    assert problem(c.post("/api/scans", json={}, headers=admin), 403)  # no operator power
    api.db.expire_all()
    assert api.db.scalars(select(User.role).where(User.username == "admin")).one() == "admin"
    assert _status(api, batch_id) == "held"


def test_nobody_activates_themselves(api: Api) -> None:
    c = api.client
    off = {"active": False, "reason": "leaving"}
    assert problem(c.patch("/api/users/admin", json=off, headers=api.as_("admin")), 403)
    assert c.patch("/api/users/admin2", json=off, headers=api.as_("admin")).status_code == 200
    api.db.expire_all()
    assert not api.db.scalars(select(User.active).where(User.username == "admin2")).one()


def test_a_role_change_takes_effect_when_a_second_admin_confirms_it(api: Api) -> None:
    c, admin, admin2 = api.client, api.as_("admin"), api.as_("admin2")
    batch_id, hold_id = _held_by_the_rules(api, "L1")
    url = "/api/users/operator"
    no_reason = problem(c.patch(url, json={"role": "qa"}, headers=admin), 422)
    assert [e["field"] for e in no_reason["errors"]] == ["reason"]
    changed = c.patch(url, json={"role": "qa", "reason": "joins QA"}, headers=admin)
    assert changed.status_code == 200
    assert (changed.json["role"], changed.json["pending_role"]) == ("operator", "qa")
    # until confirmed: neither QA's power nor the old operator's, a viewer's only
    release = {"decision": "release", "reason": "fine", "password": PASSWORD}
    operator = api.as_("operator")
    pending = problem(
        c.post(f"/api/holds/{hold_id}/disposition", json=release, headers=operator), 403
    )
    assert "until a second admin confirms the role qa" in pending["detail"]
    assert problem(c.post("/api/scans", json={}, headers=operator), 403)
    assert c.get("/api/batches", headers=operator).status_code == 200
    confirm = f"{url}/role-confirmation"
    same = problem(c.post(confirm, json={"reason": "ok"}, headers=admin), 403)
    assert "a second admin must confirm it" in same["detail"]
    assert problem(c.post(confirm, json={}, headers=admin2), 422)
    confirmed = c.post(confirm, json={"reason": "QA lead asked"}, headers=admin2)
    assert confirmed.status_code == 200
    assert (confirmed.json["role"], confirmed.json["pending_role"]) == ("qa", None)
    assert problem(c.post(confirm, json={"reason": "again"}, headers=admin2), 409)
    first_signing = {**release, "username": "operator"}  # the session's first signature
    signed = c.post(f"/api/holds/{hold_id}/disposition", json=first_signing, headers=operator)
    assert signed.status_code == 200 and _status(api, batch_id) == "available"
    trail = api.db.scalars(
        select(AuditEntry)
        .where(AuditEntry.record_table == "users", AuditEntry.action == "update")
        .order_by(AuditEntry.id)
    ).all()
    assert [(e.actor, e.reason, (e.new_values or {}).get("role")) for e in trail] == [
        ("admin", "joins QA", None),
        ("admin2", "QA lead asked", "qa"),
    ]


def test_a_new_account_gets_its_role_from_two_admins(api: Api) -> None:
    """An admin cannot mint a QA account with a password they know and sign with it."""
    c, admin = api.client, api.as_("admin")
    _batch_id, hold_id = _held_by_the_rules(api, "L1")
    new = {"username": "sock", "full_name": "Sock Puppet", "role": "qa", "password": "x" * 12}
    made = c.post("/api/users", json=new, headers=admin)
    assert made.status_code == 201, made.get_data(as_text=True)
    assert (made.json["role"], made.json["pending_role"]) == ("viewer", "qa")
    api.log_in("sock", "x" * 12)
    puppet = api.as_("sock")
    release = {"decision": "release", "reason": "fine", "password": "x" * 12, "username": "sock"}
    assert problem(c.post(f"/api/holds/{hold_id}/disposition", json=release, headers=puppet), 403)


# --- 3. an admin acts as anyone -----------------------------------------------------------


def test_tokens_go_to_machines_or_the_admin_themselves(api: Api) -> None:
    c, admin = api.client, api.as_("admin")
    for_qa = {"username": "qa", "name": "qa's scripts", "scopes": ["read"]}
    refused = problem(c.post("/api/tokens", json=for_qa, headers=admin), 403)
    assert "qa is a person" in refused["detail"]
    no_scope = problem(
        c.post("/api/tokens", json={"username": "scanner", "name": "x"}, headers=admin), 422
    )
    assert [e["field"] for e in no_scope["errors"]] == ["scopes"]
    odd = {"username": "scanner", "name": "x", "scopes": ["everything"]}
    assert problem(c.post("/api/tokens", json=odd, headers=admin), 422)
    forever = {"username": "scanner", "name": "x", "scopes": ["read"], "days": 3650}
    assert [
        e["field"]
        for e in problem(c.post("/api/tokens", json=forever, headers=admin), 422)["errors"]
    ] == ["days"]
    own = c.post(
        "/api/tokens", json={"username": "admin", "name": "mine", "scopes": ["read"]}, headers=admin
    )
    assert own.status_code == 201
    expires = own.json["expires_at"]
    assert expires.startswith(str((utcnow() + timedelta(days=90)).date()))
    # a token never manages people or tokens: no scope carries that
    nope = problem(c.get("/api/users", headers=api.bearer("admin")), 403)
    assert nope["type"].endswith("scope-missing")
    minted = {"username": "scanner", "name": "y", "scopes": ["read"]}
    assert problem(c.post("/api/tokens", json=minted, headers=api.bearer("admin")), 403)


def test_a_person_token_issued_by_someone_else_opens_nothing(api: Api) -> None:
    """A token made before tokens were restricted (issued by an admin for qa) is refused."""
    db = api.db
    db.info.update(actor="test-setup")
    qa, admin = (
        db.scalars(select(User).where(User.username == name)).one() for name in ("qa", "admin")
    )
    db.add(
        ApiToken(
            user_id=qa.id,
            name="old",
            token_hash=token_hash("cct_old-qa-token"),
            hint="cct_old-qa",
            scopes="read movements",
            expires_at=utcnow() + timedelta(days=30),
            issued_by=admin.id,
        )
    )
    db.commit()
    assert problem(api.client.get("/api/batches", headers=api.bearer("cct_old-qa-token")), 401)


def test_a_scoped_token_acts_within_its_scopes_and_the_trail_names_it(api: Api) -> None:
    c, scanner = api.client, api.bearer("scanner")
    token_id = api.db.scalars(select(ApiToken.id).where(ApiToken.name == "dock scanner 3")).one()
    plan = {"id": "TR-5", "origin_site_id": "wh-a", "destination_site_id": "wh-b"}
    made = c.post(
        "/api/transfers", json={**plan, "items": [epc(1)], "at": at(0).isoformat()}, headers=scanner
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    entry = api.db.scalars(select(AuditEntry).where(AuditEntry.record_table == "transfers")).one()
    assert entry.actor == f"scanner via token {token_id} (issued by admin)"
    # outside its scopes: default deny, naming the scope
    product = {"gtin": "04001234567891", "name": "x"}
    denied = problem(c.post("/api/products", json=product, headers=scanner), 403)
    assert denied["type"].endswith("forbidden")  # the machine is an operator
    alert = problem(c.post("/api/alerts/1/acknowledge", json={}, headers=scanner), 403)
    assert alert["type"].endswith("scope-missing") and "no token may" in alert["detail"]
    # the admin's own token carries master data only
    master = c.post("/api/products", json=product, headers=api.bearer("admin"))
    assert master.status_code == 201, master.get_data(as_text=True)
    key = AuditKey(b"duties-test-audit-key-0123456789abcdef")
    seal_pending(api.db.get_bind(), key)
    report = verify_trail(api.db.get_bind(), key)
    assert report.intact and report.checked > 0


def test_signatures_are_refused_over_tokens(api: Api) -> None:
    c = api.client
    _batch_id, hold_id = _held_by_the_rules(api, "L1")
    release = {"decision": "release", "reason": "fine", "password": PASSWORD}
    for token in ("scanner", "admin"):
        over_token = c.post(
            f"/api/holds/{hold_id}/disposition", json=release, headers=api.bearer(token)
        )
        body = problem(over_token, 403)
        assert body["type"].endswith("signature-refused")
        assert "a bearer token cannot sign" in body["detail"]
    recall = {"batch_id": 1, "reason": "x", "password": PASSWORD}
    assert (
        "cannot sign"
        in problem(c.post("/api/recalls", json=recall, headers=api.bearer("scanner")), 403)[
            "detail"
        ]
    )
    # and wherever `sign` is called: a session flagged as a token's, or a machine user
    db = api.db
    qa = db.scalars(select(User).where(User.username == "qa")).one()
    hold = db.get(Hold, hold_id)
    db.info.update(actor="qa", via="token")
    with pytest.raises(SignatureRefused, match="a bearer token cannot sign"):
        sign(db, qa, PASSWORD, hold, "release", "fine")
    db.info.pop("via")
    machine = db.scalars(select(User).where(User.username == "scanner")).one()
    db.info["actor"] = "scanner"
    with pytest.raises(SignatureRefused, match="machines never sign"):
        sign(db, machine, "machine-never-logs-in", hold, "release", "fine")
    db.rollback()


def test_expired_tokens_and_machine_logins_are_refused(api: Api) -> None:
    c = api.client
    db = api.db
    db.info.update(actor="test-setup", reason="age the token")
    token = db.scalars(select(ApiToken).where(ApiToken.name == "dock scanner 3")).one()
    token.expires_at = utcnow() - timedelta(minutes=1)
    db.commit()
    expired = problem(c.get("/api/batches", headers=api.bearer("scanner")), 401)
    assert "expired" in expired["detail"]
    login = c.post(
        "/api/session", json={"username": "scanner", "password": "machine-never-logs-in"}
    )
    assert problem(login, 401)
