"""The Content-Security-Policy in real headless Chromium: the dashboard and the playground render
with their styles and report no violation; an inline style without the nonce is refused (the
check can fail); and no other page can frame ours.
"""
from __future__ import annotations

import pytest

from flask import Flask

from app import create_app
from conftest import LiveServer
from test_browser import PASSWORD, chromium, log_in, wait  # skips without Chromium

from selenium.webdriver.common.by import By  # noqa: E402  (after the skip above)
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

ACCENT = "rgba(11, 110, 79, 1)"  # --accent in base.html, the header's background


@pytest.fixture
def app(app_config):
    return create_app({**app_config, "APP_ENV": "development", "DASHBOARD_PASSWORD": PASSWORD})


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "chromium-profile", console_log=True)
    yield driver
    driver.quit()


def violations(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def test_pages_render_styled_without_violations(browser, live_server, app):
    app.config["PLAYGROUND_URL"] = live_server.url
    log_in(browser, live_server.url, "/dashboard")
    wait(browser, EC.presence_of_element_located((By.ID, "funnels")))
    header = browser.find_element(By.TAG_NAME, "header")
    assert header.value_of_css_property("background-color") == ACCENT  # the nonce'd <style> applied
    browser.get(live_server.url + "/playground/member_check")
    field = wait(browser, EC.presence_of_element_located((By.ID, "f-member_id")))
    field.send_keys("NOPE42")
    browser.find_element(By.ID, "pg-footer").click()
    wait(browser, EC.presence_of_element_located((By.ID, "err-member_id")))
    phone = browser.find_element(By.ID, "phone")
    assert phone.value_of_css_property("border-top-left-radius") == "18px"  # play.html's own <style>
    assert violations(browser) == []

    # The control: a style without the nonce is refused, and reported where we look.
    browser.execute_script("const s = document.createElement('style');"
                           "s.textContent = 'header { background: red !important; }';"
                           "document.head.appendChild(s);")
    assert header_color(browser) == ACCENT
    assert any("style" in v for v in violations(browser))


def header_color(browser) -> str:
    return browser.find_element(By.TAG_NAME, "header").value_of_css_property("background-color")


def test_no_page_can_frame_the_dashboard(browser, live_server):
    # Another site (another loopback origin, no policy of its own) puts our login page in a frame.
    other = Flask("other_site")
    other.add_url_rule("/", view_func=lambda: '<iframe id="victim" '
                                              f'src="{live_server.url}/dashboard/login"></iframe>')
    with LiveServer(other) as site:
        browser.get(site.url + "/")
        refused = wait(browser, lambda d: [v for v in violations(d) if "frame-ancestors" in v] or None)
        assert live_server.url in refused[0]
        browser.switch_to.frame("victim")
        assert browser.execute_script("return document.location.href").startswith("chrome-error://")
        assert browser.find_elements(By.ID, "password") == []
