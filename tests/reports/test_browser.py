"""The HTML report in a real headless Chromium: no console errors, every image loads, no
network request is needed, and the first screen is not blank.

Skips (with the reason) only when /usr/bin/chromium is missing; CI installs it with
``apt-get install -y chromium chromium-driver``. Selenium is pointed at
/usr/bin/chromedriver so it never downloads a driver.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium is missing (apt-get install -y chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not CHROMEDRIVER.exists():
        pytest.fail(f"{CHROMIUM} is installed but {CHROMEDRIVER} is not: apt-get install -y chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.parametrize("name", ["current", "half"])
def test_report_renders_without_errors_and_every_image_loads(browser, built, name, tmp_path):
    from PIL import Image, ImageStat

    report = built[name]["report.html"]
    browser.get_log("browser")          # drop anything from a previous page
    browser.get_log("performance")
    browser.get(report.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"

    severe = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert severe == [], severe

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
    expected = sum(1 for k in built[name] if k.startswith("plot:"))
    assert len(images) == expected and expected > 0
    broken = [alt for alt, complete, w, h in images if not complete or w == 0 or h == 0]
    assert broken == []

    # nothing was fetched from the network (chrome:// internals of a fresh tab aside)
    fetched = []
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            if url.split(":", 1)[0].lower() in ("http", "https", "ws", "wss", "ftp"):
                fetched.append(url)
    assert fetched == []

    shot = tmp_path / "first-screen.png"
    assert browser.save_screenshot(str(shot))
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("L")
    stddev = ImageStat.Stat(image).stddev[0]
    assert stddev > 10, f"the first screen looks blank (pixel stddev {stddev:.1f})"
    verdict = browser.find_element("id", "verdict")
    assert verdict.is_displayed() and verdict.location["y"] < 300
