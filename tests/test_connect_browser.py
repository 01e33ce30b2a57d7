"""The real browser: headless Chromium signs in on the Salesforce sandbox's page.

Chromium opens the authorize URL the console produced, the admin logs in and presses Allow
(or Deny), Salesforce redirects to the console's loopback callback server, and the console
ends connected with its tokens in the real Secret Service keyring (or with nothing stored).

Chromium trusts the sandbox's CA through an NSS database in a throwaway HOME (certutil from
libnss3-tools), so certificate checks stay on. Run with
`sh tests/with-keyring.sh .venv/bin/pytest tests/test_connect_browser.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest

from lc_console import secrets, settings
from lc_console.salesforce import tokens
from lc_console.services import connect
from lc_console.services.connect import ConnectError, SalesforceConnected

pytestmark = [pytest.mark.browser, pytest.mark.secret_service, pytest.mark.slow]

PROFILE = "browser-test"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(autouse=True)
def fresh_managers() -> Iterator[None]:
    tokens._managers.clear()
    yield
    tokens._managers.clear()


@pytest.fixture
def real_keyring(secret_service: Any) -> Iterator[Any]:
    yield secret_service
    secrets.delete_all(PROFILE)


@pytest.fixture
def chrome(tmp_path: Path, salesforce_sandbox: Any) -> Iterator[Any]:
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.access(tool, os.X_OK):
            pytest.skip(f"needs {tool} (make sysdeps installs chromium and chromium-driver)")
    if not shutil.which("certutil"):
        pytest.skip("needs certutil (make sysdeps installs libnss3-tools)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    home = tmp_path / "chrome-home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True,
                   capture_output=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,",
                    "-n", "lc-console sandbox CA", "-i", salesforce_sandbox.ca_file],
                   check=True, capture_output=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--password-store=basic",
                f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        options.add_argument(arg)
    # The browser keeps off the test's D-Bus session: that is where the keyring under test is.
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    service = Service(CHROMEDRIVER, env={**env, "HOME": str(home)})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def start(sb: Any) -> connect.WebLogin:
    cfg = settings.Settings()
    cfg.tls.ca_bundle = sb.ca_file
    settings.save(PROFILE, cfg)
    plan = connect.plan_salesforce(PROFILE, env=sb.url, client_id=sb.client_id, timeout=60)
    return connect.start_web_login(plan)


def wait_in_background(login: connect.WebLogin) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = login.wait()
        except ConnectError as exc:
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


def sign_in(driver: Any, url: str, user: Any, button: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 30)
    wait.until(ec.presence_of_element_located((By.ID, "login_form")))
    assert "Log in to Salesforce" in driver.title
    if button == "allow":
        driver.find_element(By.ID, "username").send_keys(user.username)
        driver.find_element(By.ID, "password").send_keys(user.password)
    driver.find_element(By.ID, button).click()
    result = wait.until(ec.presence_of_element_located((By.ID, "lc-result")))
    return str(result.get_attribute("data-outcome"))


def test_chromium_signs_in_and_the_console_connects(
        real_keyring: Any, salesforce_sandbox: Any, chrome: Any) -> None:
    sb = salesforce_sandbox
    login = start(sb)
    t, out = wait_in_background(login)
    outcome = sign_in(chrome, login.authorize_url, sb.admin, "allow")
    t.join(30)
    assert outcome == "success"
    assert chrome.current_url.startswith("http://localhost:1717/OAuth/Callback?code=")
    assert "error" not in out, out.get("error")
    result: SalesforceConnected = out["result"]
    assert result.org.username == sb.admin.username
    # the tokens are in the real Secret Service, under the console's service name
    assert isinstance(keyring.get_keyring(), type(real_keyring))
    refresh = keyring.get_password("lc-console", f"{PROFILE}:salesforce.refresh_token")
    access = keyring.get_password("lc-console", f"{PROFILE}:salesforce.access_token")
    assert refresh and access
    assert settings.load(PROFILE).salesforce.instance_url == sb.url
    # and they work
    manager = tokens.manager_for(PROFILE)
    assert manager.salesforce().query("SELECT Id FROM Organization")["totalSize"] == 1


def test_chromium_deny_stores_nothing(
        real_keyring: Any, salesforce_sandbox: Any, chrome: Any) -> None:
    sb = salesforce_sandbox
    login = start(sb)
    t, out = wait_in_background(login)
    outcome = sign_in(chrome, login.authorize_url, sb.admin, "deny")
    t.join(30)
    assert outcome == "denied"
    assert "result" not in out
    assert out["error"].message.title == "You pressed Deny in Salesforce."
    assert keyring.get_password("lc-console", f"{PROFILE}:salesforce.refresh_token") is None
    assert keyring.get_password("lc-console", f"{PROFILE}:salesforce.access_token") is None
    assert settings.load(PROFILE).salesforce.instance_url == ""
