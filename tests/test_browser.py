"""The dashboard and the playground in a real headless Chromium (Debian's chromium +
chromium-driver; selenium-manager is never used, so nothing is downloaded).

Screenshots go to test-artifacts/ (gitignored) so a human can look at what the browser saw.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app import create_app
from conftest import ROOT
from flows.player import Player
from flows.sessions import new_token
from workers.queues import DEFAULT, build_worker, queue

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "browser-pass-7q"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt)")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("chromium/chromium-driver absent: apt-get install -y chromium chromium-driver",
                allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def app(app_config):
    # development: the session cookie may travel over plain http on loopback; the password
    # still makes the dashboard ask for a login.
    return create_app({**app_config, "APP_ENV": "development", "DASHBOARD_PASSWORD": PASSWORD})


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def wait(driver, condition, timeout=10):
    return WebDriverWait(driver, timeout).until(condition)


def log_in(driver, base: str, path: str):
    driver.get(base + path)
    wait(driver, EC.presence_of_element_located((By.ID, "password"))).send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait(driver, EC.url_contains(path))


def flaky(flag_key: str) -> str:
    from rq import get_current_job

    if not get_current_job().connection.exists(flag_key):
        raise RuntimeError("stand-in failure")
    return "ok"


def test_login_see_the_funnel_and_requeue_a_failed_job(browser, live_server, flow_client, app, redis_client):
    flow = app.extensions["flows"].get("member_check")
    for member_id in ("MEM123", "VIP999", "NOPE42"):
        steps = list(Player(flow.definition, flow_client(), new_token(), {"member_id": member_id}).run())
    assert steps[-1].note.startswith("stuck")  # the unknown ID never gets past the lookup
    q = queue(redis_client, DEFAULT)
    job = q.enqueue(f"{__name__}.flaky", "flag:browser", job_timeout=30, failure_ttl=600)
    build_worker(redis_client).work(burst=True)
    assert job.id in q.failed_job_registry.get_job_ids()

    log_in(browser, live_server.url, "/dashboard")
    funnel = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, '.funnel[data-flow="member_check"]')))
    value = {el.get_attribute("data-step"): el.text.split()[0]
             for el in funnel.find_elements(By.CSS_SELECTOR, "text.funnel-value")}
    assert value == {"Sent": "0", "Opened": "3", "Screen MEMBER_LOOKUP": "3", "Screen CONFIRM": "2",
                     "Completed": "2"}
    assert "data_exchange" in browser.find_element(By.ID, "latency").text
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

    row = browser.find_element(By.CSS_SELECTOR, f'tr.failed-job[data-job="{job.id}"]')
    row.find_element(By.CSS_SELECTOR, "button.requeue").click()
    banner = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".banner.ok")))
    assert "back in its queue" in banner.text
    assert job.id in q.job_ids and job.id not in q.failed_job_registry.get_job_ids()
    browser.save_screenshot(str(ARTIFACTS / "dashboard-requeued.png"))

    browser.set_window_size(390, 844)  # a phone
    browser.get(live_server.url + "/dashboard")
    wait(browser, EC.presence_of_element_located((By.ID, "funnels")))
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 400
    browser.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))


def test_play_member_check_error_then_confirmation_then_completion(browser, live_server, app):
    app.config["PLAYGROUND_URL"] = live_server.url  # the playground posts to its configured URL only
    log_in(browser, live_server.url, "/playground/member_check")
    field = wait(browser, EC.presence_of_element_located((By.ID, "f-member_id")))
    field.send_keys("NOPE42")
    browser.find_element(By.ID, "pg-footer").click()
    error = wait(browser, EC.presence_of_element_located((By.ID, "err-member_id")))
    assert error.text == "We couldn't find that member ID"
    assert "Check your card" in browser.find_element(By.ID, "pg-snackbar").text
    browser.save_screenshot(str(ARTIFACTS / "playground-error.png"))

    field = browser.find_element(By.ID, "f-member_id")
    field.clear()
    field.send_keys("MEM123")
    browser.find_element(By.ID, "pg-footer").click()
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, '#pg-screen[data-screen="CONFIRM"]')))
    assert "Ana Silva" in browser.find_element(By.ID, "phone").text
    browser.save_screenshot(str(ARTIFACTS / "playground-confirm.png"))

    browser.find_element(By.ID, "pg-footer").click()
    done = wait(browser, EC.presence_of_element_located((By.ID, "pg-params")))
    assert '"member_id": "MEM123"' in done.text
    latencies = browser.find_elements(By.CSS_SELECTOR, "#exchanges .latency")
    assert len(latencies) == 4 and all(x.text.endswith(" ms") for x in latencies)
    browser.save_screenshot(str(ARTIFACTS / "playground-done.png"))
