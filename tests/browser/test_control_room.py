"""QA's day in the control room, in Chromium: log in, watch a cooling failure become an
excursion, acknowledge it, see the batch frozen, release it with an electronic signature,
and find that signature in the audit log. Each page is saved as a screenshot."""

from __future__ import annotations

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import func, select

from cloud.adapters.engine import make_engine
from cloud.adapters.orm.accounts import PasswordFailure
from cloud.adapters.orm.alerting import Alert
from cloud.entrypoints.demo_seed import DEMO_PASSWORD, cooling_failure
from tests.browser.conftest import SCENARIO_ZONE as ZONE
from tests.browser.conftest import ControlRoomServer, Page


def zone_card(page: Page, zone: str):  # type: ignore[no-untyped-def]
    ident = json.dumps({"type": "overview-zone", "zone": zone}, separators=(",", ":"))
    return page.driver.find_element(By.XPATH, f"//*[@id='{ident}']")


def log_in(page: Page, username: str) -> None:
    page.open("/logout")
    page.wait("#login-username")
    page.type("#login-username", username)
    page.type("#login-password", DEMO_PASSWORD)
    page.click("#login-submit")
    page.wait("#overview-sites")


def test_every_page_renders_and_viewers_are_offered_no_actions(page: Page) -> None:
    log_in(page, "qa")
    page.open("/zone?zone=wh-leeds-cold1&range=7d")
    page.wait("#zone-source", "min/max kept per bucket")
    page.wait("#zone-excursions", "ALARM")
    page.wait("#zone-batches", "INS-2401")
    page.screenshot("zone")
    page.open("/expiry")
    page.wait("#expiry-board", "VAC-117")
    page.wait("#expiry-picks", "INS-2404")
    page.screenshot("expiry")
    page.open("/transfers")
    page.wait("#transfers-grid", "TR-0002")
    page.wait("#transfers-grid", "1 DISCREPANCY")  # TR-0001 arrived an item short
    assert "truck-07" in page.driver.find_element(By.ID, "transfers-grid").text.lower() or (
        "Reefer compartment" in page.driver.find_element(By.ID, "transfers-grid").text
    )
    page.screenshot("transfers")
    page.open("/trace?q=INS-2401")
    page.wait("#trace-timeline", "Cold room 1")
    page.wait("#trace-exposures", "excursion")
    page.screenshot("trace")
    page.open("/trace?q=GLM-77")  # QA recalls a batch, signing it
    page.wait("#trace-now", "item(s)")
    page.type("#trace-recall-reason", "Supplier notice: sensor lot mislabelled")
    page.type("#trace-recall-user-id", "qa")  # the session's first signing: both components
    page.type("#trace-recall-password", DEMO_PASSWORD)
    page.click("#trace-recall")
    page.wait("#trace-recall-message", "recall")
    page.wait("#trace-result", "RECALLED")

    log_in(page, "viewer")
    page.open("/holds")
    page.wait("#holds-table")
    assert not page.driver.find_elements(By.XPATH, "//button[contains(., 'Release')]")
    page.open("/alerts")
    page.until(lambda d: d.find_elements(By.XPATH, "//button[.='Open']"), "the queue")
    page.driver.find_elements(By.XPATH, "//button[.='Open']")[0].click()
    page.wait("#alerts-ack-by")
    assert not page.driver.find_elements(By.CSS_SELECTOR, '[id*="alerts-action"]')
    assert not page.driver.find_elements(By.CSS_SELECTOR, '[id*="alerts-field"]')


def test_excursion_to_signed_release(page: Page, control_room: ControlRoomServer) -> None:
    page.open("/logout")
    page.open("/holds")
    page.wait("#login-username")  # not logged in: sent to the login page
    page.screenshot("login")
    page.type("#login-username", "qa")
    page.type("#login-password", "wrong password")
    page.click("#login-submit")
    page.wait("#login-message", "Wrong username or password")
    log_in(page, "qa")
    page.wait("#shell-user", "Quinn Quality")

    # Live: a cooling failure in Bristol shows up on the overview without a reload.
    page.until(lambda _: "UNKNOWN" in zone_card(page, ZONE).text, "Bristol silent at first")
    marker = page.driver.execute_script("return window.performance.timeOrigin")
    cooling_failure(control_room.database_url, ZONE, minutes=90)  # its data, arriving late
    page.until(lambda _: "ALARM" in zone_card(page, ZONE).text, "the excursion on the overview")
    assert "open excursion" in zone_card(page, ZONE).text
    assert page.driver.execute_script("return window.performance.timeOrigin") == marker
    page.screenshot("overview")
    page.driver.set_window_size(1366, 768)  # a laptop: the cards reflow, nothing is cut off
    page.until(lambda _: zone_card(page, ZONE).is_displayed(), "the card on a laptop screen")
    width = page.driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 1366, f"the overview scrolls sideways on a laptop ({width} px)"
    page.screenshot("overview-laptop")
    page.driver.set_window_size(1920, 1080)

    # The QA queue: acknowledge the new excursion's alert.
    page.open("/alerts")
    row = f"//tr[contains(@id, 'alerts-row-')][contains(., '{ZONE}')]"
    page.until(lambda d: d.find_elements(By.XPATH, row), "the excursion's alert in the queue")
    page.driver.find_element(By.XPATH, row + "//button").click()
    acknowledge = '[id*="acknowledge"]'
    page.click(acknowledge)
    page.wait("#alerts-ack-by", "Acknowledged by Quinn Quality")
    page.screenshot("alerts")

    # The exposed batch is frozen; QA releases it with a signature.
    page.open("/holds")
    page.wait("#holds-grid", "VAC-119")
    holds = "//tr[contains(@class, 'hold-of-VAC-119')]"
    before = len(page.driver.find_elements(By.XPATH, holds))
    page.driver.find_element(By.XPATH, holds + "//button[contains(., 'Release')]").click()
    page.wait("#holds-dialog-meaning", "Meaning: Release")
    page.type("#holds-reason", "Exposure assessed against stability data: within limits")
    page.type("#holds-password", DEMO_PASSWORD)
    page.click("#holds-sign")  # the session's first signing needs the user ID as well
    page.wait("#holds-dialog-error", "needs your user ID")
    page.type("#holds-user-id", "qa")
    page.type("#holds-password", "not my password")
    page.click("#holds-sign")
    page.wait("#holds-dialog-error", "Not signed")
    page.type("#holds-password", DEMO_PASSWORD)
    page.screenshot("holds-signature")
    page.click("#holds-sign")
    page.wait("#holds-done", "VAC-119 released")
    page.until(
        lambda d: len(d.find_elements(By.XPATH, holds)) == before - 1, "the released hold gone"
    )
    page.screenshot("holds")

    # The signature is in the audit trail, and the chain is intact.
    page.open("/audit")
    page.wait("#audit-integrity", "CHAIN INTACT")
    page.click("#audit-signed input")
    page.wait("#audit-grid", "Meaning: Release")
    grid = page.driver.find_element(By.ID, "audit-grid").text
    assert "Signed by: Quinn Quality (QA) (qa)" in grid
    assert "Exposure assessed against stability data" in grid
    page.screenshot("audit")


def test_a_locked_account_and_its_unlock_by_an_admin(
    page: Page, control_room: ControlRoomServer
) -> None:
    engine = make_engine(control_room.database_url)

    def failures() -> int:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(PasswordFailure)) or 0

    page.open("/logout")
    page.wait("#login-username")
    page.type("#login-username", "operator")
    for n in range(5):  # five wrong passwords lock the account
        page.wait("#login-password").send_keys(Keys.CONTROL, "a")  # replace what React keeps
        page.wait("#login-password").send_keys(f"guess number {n}")
        page.click("#login-submit")
        page.wait("#login-message", "Wrong username or password")
        page.until(lambda _, n=n: failures() == n + 1, "the wrong password counted")
    page.wait("#login-password").send_keys(Keys.CONTROL, "a")
    page.wait("#login-password").send_keys(DEMO_PASSWORD)
    page.click("#login-submit")
    page.wait("#login-message", "locked")
    assert not page.driver.find_elements(By.ID, "overview-sites")  # the right one is refused
    page.screenshot("login-locked")

    with engine.connect() as connection:  # the admins were alerted
        titles = connection.scalars(select(Alert.title).where(Alert.kind == "account_locked"))
        assert [t.split(" after")[0] for t in titles] == ["Account operator locked"]
    engine.dispose()

    log_in(page, "admin")
    page.open("/accounts")
    page.wait("#accounts-row-operator", "locked")
    page.type("#accounts-user", "operator")
    page.type("#accounts-reason", "Confirmed by phone: the operator mistyped after a shift change")
    page.screenshot("accounts-locked")
    page.click("#accounts-unlock")
    page.wait("#accounts-outcome", "operator unlocked")
    page.until(
        lambda d: "locked" not in d.find_element(By.ID, "accounts-row-operator").text,
        "the account shown unlocked",
    )
    page.screenshot("accounts-unlocked")

    log_in(page, "operator")
    page.wait("#shell-user", "Olly Operator")
