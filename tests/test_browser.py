"""The dashboard and the playground in a real headless Chromium (Debian's chromium +
chromium-driver; selenium-manager is never used, so nothing is downloaded).

Screenshots go to test-artifacts/ (gitignored) so a human can look at what the browser saw.
"""
from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from app import create_app
from conftest import ROOT, LiveServer
from devtools.player import Player
from flows.sessions import new_token
from workers.queues import DEFAULT, build_worker, queue

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "browser-pass-7q"

webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (requirements-dev.txt)")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("chromium/chromium-driver absent: apt-get install -y chromium chromium-driver",
                allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture
def app(app_config):
    # development: the session cookie may travel over plain http on loopback; the password
    # still makes the dashboard ask for a login.
    return create_app({**app_config, "APP_ENV": "development", "DASHBOARD_PASSWORD": PASSWORD,
                       "DEMO_FLOWS": True})


@pytest.fixture
def live_server(app):
    with LiveServer(app) as server:
        app.config["PLAYGROUND_URL"] = server.url  # the playground posts to its configured URL only
        yield server


def chromium(profile: Path, *extra_flags: str, console_log: bool = False):
    """Debian's headless Chromium with the flags this machine's closed network needs."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", *extra_flags):
        options.add_argument(flag)
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations land here
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "chromium-profile", "--window-size=1280,1000")
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
    funnel = wait(browser,
                  EC.presence_of_element_located((By.CSS_SELECTOR, '.funnel[data-flow="member_check"]')))
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


# --- every shipped flow, played to the end in the browser ---------------------------------------


def fill(driver, name: str, value: str):
    field = driver.find_element(By.ID, f"f-{name}")
    field.clear()
    field.send_keys(value)


def value_of(driver, name: str) -> str:
    return driver.find_element(By.ID, f"f-{name}").get_attribute("value")


def press(driver, action_id: str = "footer"):
    driver.find_element(By.CSS_SELECTOR, f'button[name="action_id"][value="{action_id}"]').click()


def on_screen(driver, screen: str):
    return wait(driver,
                EC.presence_of_element_located((By.CSS_SELECTOR, f'#pg-screen[data-screen="{screen}"]')))


def finished(driver) -> dict:
    done = wait(driver, EC.presence_of_element_located((By.ID, "pg-params")))
    return json.loads(done.text)


def test_play_service_area_a_field_error_keeps_every_other_value(browser, live_server):
    log_in(browser, live_server.url, "/playground/service_area")
    wait(browser, EC.presence_of_element_located((By.ID, "f-postal_code")))
    fill(browser, "postal_code", "10001")
    press(browser)
    on_screen(browser, "DETAILS")
    fill(browser, "name", "Ana Silva")
    fill(browser, "email", "ana@example.com")
    fill(browser, "phone", "415 555 0100")  # no country code
    press(browser)
    error = wait(browser, EC.presence_of_element_located((By.ID, "err-phone")))
    assert "phone" in error.text.lower() or "+" in error.text
    # The same screen again: the WhatsApp client keeps what the user typed, valid fields included.
    assert (value_of(browser, "name"), value_of(browser, "email"), value_of(browser, "phone")) == \
        ("Ana Silva", "ana@example.com", "415 555 0100")
    browser.save_screenshot(str(ARTIFACTS / "playground-service-area-error.png"))
    fill(browser, "phone", "+1 415 555 0100")
    press(browser)
    params = finished(browser)
    assert params["email"] == "ana@example.com" and params["name"] == "Ana Silva"
    assert params["postal_code"] == "10001" and params["coverage"] == "verified"


def test_play_coupon_checkout_expired_then_valid_coupon(browser, live_server):
    log_in(browser, live_server.url, "/playground/coupon_checkout")
    wait(browser, EC.presence_of_element_located((By.ID, "f-coupon")))
    fill(browser, "coupon", "SUMMER23")
    press(browser)
    error = wait(browser, EC.presence_of_element_located((By.ID, "err-coupon")))
    assert error.text == "This coupon has expired"
    assert value_of(browser, "coupon") == "SUMMER23"
    fill(browser, "coupon", "save10")
    press(browser)
    on_screen(browser, "SUMMARY")
    assert "$55.71" in browser.find_element(By.ID, "phone").text
    press(browser)
    params = finished(browser)
    assert (params["coupon"], params["subtotal_minor"], params["total_minor"]) == ("SAVE10", 6190, 5571)


def test_play_stock_order_too_many_then_fewer(browser, live_server):
    log_in(browser, live_server.url, "/playground/stock_order")
    wait(browser, EC.presence_of_element_located((By.ID, "f-sku")))
    fill(browser, "sku", "TEE-M")
    fill(browser, "quantity", "4")
    press(browser)
    error = wait(browser, EC.presence_of_element_located((By.ID, "err-quantity")))
    assert error.text == "Only 3 left"
    assert (value_of(browser, "sku"), value_of(browser, "quantity")) == ("TEE-M", "4")
    fill(browser, "quantity", "2")
    press(browser)
    on_screen(browser, "REVIEW")
    assert "$39.80" in browser.find_element(By.ID, "phone").text
    press(browser)
    params = finished(browser)
    assert params["sku"] == "TEE-M" and str(params["quantity"]) == "2"


def next_weekday(start: date) -> date:
    day = start + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def test_play_appointment_the_day_survives_the_slots_loading(browser, live_server):
    log_in(browser, live_server.url, "/playground/appointment")
    day = next_weekday(date.today()).isoformat()
    picker = wait(browser, EC.presence_of_element_located((By.ID, "f-date")))
    browser.execute_script("arguments[0].value = arguments[1]", picker, day)
    press(browser, "select:date")  # the DatePicker's on-select-action: the endpoint loads the free times
    wait(browser, EC.presence_of_element_located((By.ID, "f-slot")))
    assert value_of(browser, "date") == day  # not blank after the screen refreshed itself
    Select(browser.find_element(By.ID, "f-slot")).select_by_value("09:00")
    press(browser, "select:slot")
    held = wait(browser, EC.text_to_be_present_in_element((By.ID, "phone"), "is held for you"))
    assert held and "Pick a day" not in browser.find_element(By.ID, "phone").text
    assert (value_of(browser, "date"), value_of(browser, "slot")) == (day, "09:00")
    browser.save_screenshot(str(ARTIFACTS / "playground-appointment-held.png"))
    press(browser)
    on_screen(browser, "CONFIRM")
    press(browser)
    assert finished(browser) == {"flow_token": finished(browser)["flow_token"], "date": day, "slot": "09:00"}
