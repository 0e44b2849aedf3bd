"""Browser tier: the control room served for real and driven in headless Chromium.

Debian's chromium and chromium-driver are installed by tests/services.sh, make test's first
step; a missing browser fails these tests (nothing is skipped). Screenshots land in
tests/artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import BaseWSGIServer, make_server

from cloud.adapters.broker import free_port
from cloud.adapters.engine import make_engine
from cloud.adapters.migrate import upgrade
from cloud.entrypoints.demo_seed import (
    current_readings,
    demo_configs,
    mark_as_demo,
    seed,
    write_and_evaluate,
)
from dashboard.app import create_app

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
WAIT_S = 20
IGNORED = (NoSuchElementException, StaleElementReferenceException)  # pages redraw while waited on
SCENARIO_ZONE = "wh-bristol-cold1"  # no excursion in the demo's history: the test makes one
FAILURE_AFTER = timedelta(minutes=92)


@dataclass
class ControlRoomServer:
    url: str
    database_url: str
    server: BaseWSGIServer


@pytest.fixture(scope="module")
def control_room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlRoomServer]:
    """The demo data (a week of history with yesterday's failure) behind a live control room."""
    path = tmp_path_factory.mktemp("control-room") / "coldchain.sqlite"
    database_url = f"sqlite:///{path}"
    upgrade(database_url)
    mark_as_demo(database_url)
    now = datetime.now(UTC)
    # The scenario's zone goes quiet before its cooling fails, so the failure is its newest data.
    seed(database_url, now, quiet={SCENARIO_ZONE: now - FAILURE_AFTER})
    engine = make_engine(database_url)
    write_and_evaluate(engine, current_readings(demo_configs(), now, skip={SCENARIO_ZONE}))
    engine.dispose()
    app = create_app(database_url, refresh_ms=1000, secret_key="browser-tests")
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="control-room", daemon=True)
    thread.start()
    yield ControlRoomServer(f"http://127.0.0.1:{port}", database_url, server)
    server.shutdown()
    thread.join(timeout=10)


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(
            "Chromium and chromedriver are needed (apt-get install chromium chromium-driver; "
            "make test installs them)"
        )
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    binary, driver = _chromium()
    options = Options()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1920,1080",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(30)
    yield chrome
    chrome.quit()


class Page:
    """Small helpers over the driver: wait for text, click, type, screenshot."""

    def __init__(self, driver: WebDriver, base: str):
        self.driver = driver
        self.base = base

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def wait(self, css: str, text: str | None = None, timeout: float = WAIT_S):  # type: ignore[no-untyped-def]
        wait = WebDriverWait(self.driver, timeout, ignored_exceptions=IGNORED)
        if text is None:
            return wait.until(
                expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
            )
        wait.until(expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def click(self, css: str) -> None:
        element = self.wait(css)
        WebDriverWait(self.driver, WAIT_S, ignored_exceptions=IGNORED).until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css))
        )
        element.click()

    def type(self, css: str, text: str) -> None:
        element = self.wait(css)
        element.clear()
        element.send_keys(text)

    def until(self, predicate: Callable[[WebDriver], object], what: str, timeout: float = WAIT_S):  # type: ignore[no-untyped-def]
        return WebDriverWait(self.driver, timeout, ignored_exceptions=IGNORED).until(
            predicate, message=what
        )

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture(scope="module")
def page(browser: WebDriver, control_room: ControlRoomServer) -> Page:
    return Page(browser, control_room.url)
