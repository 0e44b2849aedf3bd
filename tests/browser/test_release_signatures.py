"""Release signatures in Chromium: a high-risk hold released by two QA (the first reviews,
the second approves; the batch is available only after the second), and QA's release for
shipment of a transfer of insulin, whose dialog shows each batch's temperature evidence
(stability budget left, MKT, open excursions) before signing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.people import Signature
from cloud.adapters.orm.quality import Excursion
from cloud.adapters.orm.traceability import Batch, Product
from cloud.entrypoints.demo_seed import DEMO_PASSWORD, VACCINE
from tests.browser.conftest import ControlRoomServer, Page

HOLD = "//tr[contains(@class, 'hold-of-VAC-118')]"


@pytest.fixture
def db(control_room: ControlRoomServer) -> Iterator[Session]:
    engine = make_engine(control_room.database_url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def log_in(page: Page, username: str) -> None:
    page.open("/logout")
    page.wait("#login-username")
    page.type("#login-username", username)
    page.type("#login-password", DEMO_PASSWORD)
    page.click("#login-submit")
    page.wait("#overview-sites")


def status_of(db: Session, lot: str) -> str:
    db.expire_all()
    return db.scalars(select(Batch.status).where(Batch.lot == lot)).one()


def sign_in_dialog(page: Page, username: str, reason: str) -> None:
    """Sign in the hold dialog: each login session here signs for the first time, which
    takes the user ID as well as the password."""
    page.type("#holds-reason", reason)
    page.type("#holds-user-id", username)
    page.type("#holds-password", DEMO_PASSWORD)
    page.click("#holds-sign")


def test_two_qa_release_a_high_risk_hold(page: Page, db: Session) -> None:
    # The vaccine becomes high risk (an admin's audited change): its holds take two QA.
    db.info.update(actor="admin", reason="stability data: narrow margin")
    product = db.get(Product, VACCINE.gtin)
    assert product is not None
    product.risk_class = "high"
    db.commit()
    assert status_of(db, "VAC-118") == "held"

    log_in(page, "qa")
    page.open("/holds")
    page.wait("#holds-grid", "VAC-118")
    row = page.driver.find_element(By.XPATH, HOLD)
    assert "Two QA signatures: product risk class high" in row.text
    assert not row.find_elements(By.XPATH, ".//button[contains(., 'Release')]")
    row.find_element(By.XPATH, ".//button[contains(., 'Review')]").click()
    page.wait("#holds-dialog-meaning", "Meaning: Review")
    sign_in_dialog(page, "qa", "Exposure and stability data reviewed")
    page.wait("#holds-done", "VAC-118 reviewed, awaiting approval by another QA")
    page.until(
        lambda d: (
            "Reviewed by Quinn Quality (QA), awaiting approval"
            in d.find_element(By.XPATH, HOLD).text
        ),
        "the review shown on the hold",
    )
    row = page.driver.find_element(By.XPATH, HOLD)
    assert "You reviewed it: another QA approves" in row.text  # not twice by the same QA
    assert not row.find_elements(By.XPATH, ".//button[contains(., 'Approve')]")
    assert status_of(db, "VAC-118") == "held"  # one signature releases nothing
    page.screenshot("holds-reviewed")

    log_in(page, "qa2")
    page.open("/holds")
    page.wait("#holds-grid", "VAC-118")
    row = page.driver.find_element(By.XPATH, HOLD)
    assert "Review: Quinn Quality (QA) (qa)" in row.text  # the signature listed on the hold
    row.find_element(By.XPATH, ".//button[contains(., 'Approve release')]").click()
    page.wait("#holds-dialog-meaning", "Meaning: Approval")
    page.screenshot("holds-approval")
    sign_in_dialog(page, "qa2", "Second review: within stability data")
    page.wait("#holds-done", "VAC-118 released")
    page.until(lambda d: not d.find_elements(By.XPATH, HOLD), "the released hold gone")
    assert status_of(db, "VAC-118") == "available"
    meanings = db.scalars(
        select(Signature.meaning, Signature.username)
        .where(Signature.record_table == "holds")
        .order_by(Signature.id)
    ).all()
    assert meanings == ["review", "approval"]


def test_qa_releases_a_transfer_for_shipment_seeing_the_evidence(page: Page, db: Session) -> None:
    # An excursion is open where the insulin waits (warning level: it holds nothing).
    db.info["actor"] = "rules"
    excursion = Excursion(
        zone_id="wh-bristol-cold1",
        profile_id="cold_room_2_8",
        rule="warning high > 8 for 10 min",
        kind="high",
        level="warning",
        started_at=datetime.now(UTC) - timedelta(minutes=20),
        state="open",
        detected_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    db.add(excursion)
    db.commit()

    log_in(page, "qa")
    page.open("/transfers")
    row = "#transfers-row-TR-0004"
    page.wait(row, "QA RELEASE NEEDED")
    page.click(row + " button")
    page.wait("#transfers-evidence-grid", "INS-2404")
    evidence = page.driver.find_element(By.CSS_SELECTOR, ".evidence-of-INS-2404").text
    assert "2.0 h\nof 2.0 h" in evidence  # stability budget left, of the product's budget
    assert re.search(r"\d\.\d\d \u00b0C", evidence)  # its MKT
    assert f"warning high in wh-bristol-cold1 (#{excursion.id})" in evidence
    page.wait("#transfers-dialog", "Meaning: Shipment release")
    page.screenshot("transfers-release")
    page.type("#transfers-reason", "Evidence reviewed: fit to load")
    page.type("#transfers-user-id", "qa")  # the session's first signature: the user ID too
    page.type("#transfers-password", "not my password")
    page.click("#transfers-sign")
    page.wait("#transfers-dialog-error", "Not signed")
    page.type("#transfers-password", DEMO_PASSWORD)
    page.click("#transfers-sign")
    page.wait("#transfers-done", "transfer TR-0004 released for shipment")
    page.wait(row, "RELEASED")
    page.wait(row, "by Quinn Quality (QA)")
    signed = db.scalars(
        select(Signature).where(Signature.record_table == "shipping_releases")
    ).all()
    assert [(s.meaning, s.username) for s in signed][-1] == ("shipment_release", "qa")
