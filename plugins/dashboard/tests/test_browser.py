"""The dashboard in a real browser: headless Chromium, driven through chromedriver with
selenium, against a real ``ferrogw serve`` with the admin API and SQLite storage.

Skipped, saying why, when the browser, its driver, selenium, ``ferro-admin`` or
``ferro-storage-sqlite`` is missing."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
FERROGW = str(Path(sys.executable).with_name("ferrogw"))
ADMIN_KEY = "dashboard-browser-admin-key-0123456789"
WAIT = 15  # seconds any one thing may take to show in the page


def _missing() -> str | None:
    """Why the test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} is not installed (set CHROMIUM / CHROMEDRIVER to use others)"
    for dist in ("selenium", "ferro-admin", "ferro-storage-sqlite"):
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            return f"{dist} is not installed (pip install {dist})"
    return None


MISSING = _missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

if MISSING is None:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait


# --- the gateway ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def admin_call(url: str, key: str, method: str = "GET", body: object = None) -> tuple[int, object]:
    """Call the admin API directly: (status, JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """``ferrogw serve`` with the echo provider, the admin API and every store in one SQLite
    file, the bootstrap admin key set; its base URL. Stopped at the end of the module."""
    folder = tmp_path_factory.mktemp("gateway")
    store = {"backend": "sqlite", "dsn": str(folder / "ferro.db")}
    config = {"providers": {"echo": {"type": "echo"}}, "targets": [{"virtual_key": "echo"}],
              "storage": {"keys": store, "config": store, "request_logs": store}}
    (folder / "gateway.json").write_text(json.dumps(config))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [FERROGW, "serve", "--config", str(folder / "gateway.json"), "--port", str(port)],
            stdout=out, stderr=out, env={**os.environ, "ADMIN_BOOTSTRAP_KEY": ADMIN_KEY})
    try:
        _wait_answering(process, url, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_answering(process: subprocess.Popen, url: str, log: Path) -> None:
    for _ in range(150):
        if process.poll() is not None:
            raise AssertionError(f"ferrogw exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), \
                urllib.request.urlopen(url + "/health/live", timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"ferrogw did not start:\n{log.read_text()}")


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--no-first-run",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The dashboard in ``driver``, with bounded waits for what a user would look at."""

    def __init__(self, driver, url: str) -> None:
        self.driver = driver
        self.url = url

    def open(self) -> Page:
        """A fresh page with no key remembered."""
        self.driver.get(self.url + "/dashboard")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(self.url + "/dashboard")
        self.visible("login-form")
        return self

    def until(self, condition, message: str):
        """``condition(driver)`` once truthy; tried again while the elements it holds are
        being re-rendered (each reload of a table replaces its rows)."""
        return WebDriverWait(self.driver, WAIT, ignored_exceptions=[StaleElementReferenceException]
                             ).until(condition, message)

    def find(self, testid: str):
        return self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def visible(self, testid: str):
        return self.until(
            expected_conditions.visibility_of_element_located(
                (By.CSS_SELECTOR, f'[data-testid="{testid}"]')), f"{testid} never showed")

    def sign_in(self, key: str) -> None:
        field = self.visible("api-key")
        field.clear()
        field.send_keys(key)
        self.find("login-submit").click()

    def rows(self, testid: str):
        return self.driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def key_row(self, key_id: str):
        return self.until(lambda d: d.find_element(By.CSS_SELECTOR, self.key_row_css(key_id)),
                          f"no row for key {key_id}")

    @staticmethod
    def key_row_css(key_id: str) -> str:
        return f'[data-testid="key-row"][data-key-id="{key_id}"]'

    def text_of(self, testid: str, expected: str) -> None:
        """Wait until the element's text contains ``expected``."""
        self.until(expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, f'[data-testid="{testid}"]'), expected),
            f"{testid} never said {expected!r}")


@pytest.fixture
def page(browser, gateway):
    return Page(browser, gateway).open()


# --- the tests -----------------------------------------------------------------------------


def test_an_invalid_key_is_refused_and_asked_for_again(page):
    page.sign_in("fgw_not-a-key-the-gateway-knows-aaaaaaaaaaaaaaaaaaaaa")
    page.text_of("login-error", "Invalid key")
    assert page.find("api-key").is_displayed()
    assert not page.find("keys-table").is_displayed()
    assert page.driver.execute_script("return sessionStorage.length") == 0


def test_an_admin_sees_providers_and_keys_creates_a_key_once_and_revokes_it(page, gateway):
    page.sign_in(ADMIN_KEY)
    page.visible("provider-row")
    provider = page.rows("provider-row")[0]
    assert provider.get_attribute("data-name") == "echo"
    assert "available" in provider.text
    page.text_of("signed-in-as", "admin")
    assert len(page.rows("key-row")) >= 1  # the bootstrap key
    assert ADMIN_KEY not in page.driver.current_url
    assert page.driver.execute_script("return localStorage.length") == 0

    # a name that would run script if it reached the page as HTML
    name = '<img src=x onerror="window.pwned=1">'
    page.visible("key-name").send_keys(name)
    page.find("scope-read_only").click()
    page.find("key-create").click()
    secret = page.visible("new-key-secret").text
    assert secret.startswith("fgw_")
    assert page.find("new-key-name").text == name
    assert page.driver.page_source.count(secret) == 1  # shown once, in the copy panel
    assert admin_call(gateway + "/admin/keys", secret)[0] == 200  # the secret shown is real

    _, keys = admin_call(gateway + "/admin/keys", ADMIN_KEY)
    created = next(k for k in keys if k["key"] == f"{secret[:8]}...{secret[-4:]}")
    row = page.key_row(created["id"])
    assert row.find_element(By.CSS_SELECTOR, '[data-testid="key-name"]').text == name
    assert row.get_attribute("data-status") == "active"
    assert page.driver.execute_script("return window.pwned") is None

    page.find("new-key-dismiss").click()
    page.until(lambda d: secret not in d.page_source, "the secret stayed on the page")

    row_css = page.key_row_css(created["id"])
    page.until(lambda d: d.find_element(By.CSS_SELECTOR, f'{row_css} [data-testid="key-revoke"]').click()
               or True, "no revoke button")
    page.until(expected_conditions.alert_is_present(), "no confirmation asked").accept()
    page.until(lambda d: d.find_element(By.CSS_SELECTOR, row_css).get_attribute("data-status")
               == "revoked", "the key never showed as revoked")
    assert admin_call(gateway + "/admin/keys", secret)[0] == 401


def test_a_read_only_key_sees_everything_but_the_write_controls(page, gateway):
    status, created = admin_call(gateway + "/admin/keys", ADMIN_KEY, "POST",
                                 {"name": "viewer", "scopes": ["read_only"]})
    assert status == 201, created
    page.sign_in(created["key"])
    page.text_of("signed-in-as", "viewer")
    page.visible("read-only-notice")
    page.key_row(created["id"])
    assert not page.find("key-create-form").is_displayed()
    assert not [b for b in page.rows("key-revoke") if b.is_displayed()]
