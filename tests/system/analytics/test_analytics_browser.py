"""The dashboard page in headless Chromium: it loads, connects its WebSocket and shows
numbers that change while messages flow (skipped only when Chromium is not installed)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from test_analytics_live import Publisher
from analytics_helpers import wait_for

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [pytest.mark.infra, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium test: /usr/bin/chromium is "
                                 "missing (apt-get install -y chromium chromium-driver)")]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    profile = tempfile.mkdtemp(prefix="nl-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        import shutil
        shutil.rmtree(profile, ignore_errors=True)


def test_dashboard_page_shows_live_numbers(env, browser):
    svc = env.service()
    browser.get(svc.url + "/")
    assert browser.title == "nineslab analytics"
    text = lambda element_id: browser.find_element("id", element_id).text
    wait_for(lambda: text("conn") == "connected", "page connected", timeout=15)
    with Publisher(env.nats, failed_every=None, prefix="page"):
        first = wait_for(lambda: text("total") not in ("–", "0") and text("total"), "a total shown", timeout=20)
        wait_for(lambda: text("total") != first, "the total changes", timeout=20)
        wait_for(lambda: text("mps") not in ("–", "0.0"), "messages/s shown", timeout=20)
        assert text("p99").endswith("ms") and int(text("active")) > 0
    drawn = browser.execute_script(
        "const c = document.getElementById('chart_mps'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4)"
        " if (d[i]) n++; return n;")
    assert drawn > 100   # the chart has a line on it
