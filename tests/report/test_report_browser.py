"""report.html checked as a person would: opened in a real headless Chromium (the system's, installed by
`make setup`), with no console errors, every plot rendered at a non-zero size, and the funnel the page shows
equal to the manifest's counts. TOKENMILL_UPDATE_SCREENSHOT=1 also writes docs/img/report.png (the
report's first screen, shown in the README)."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import ROOT
from tokenmill.report.html import render

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and os.path.exists(p)), None)
DRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and os.path.exists(p)), None)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and DRIVER, "Chromium and chromedriver are missing: `make setup` installs them (apt)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


PAGE_FACTS = """
const images = Array.from(document.images).map(i => {
  const r = i.getBoundingClientRect();
  return {alt: i.alt, complete: i.complete, natural: i.naturalWidth, width: r.width, height: r.height};
});
const funnel = Array.from(document.querySelectorAll('table.funnel tbody tr')).map(
  tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent));
return {images: images, funnel: funnel, title: document.title};
"""


@pytest.mark.parametrize("run_fixture", ["sample_run", "fineweb_run", "dedup_run"])
def test_report_in_a_real_browser(run_fixture, request, browser, tmp_path):
    value = request.getfixturevalue(run_fixture)
    out, result = (value[1], value[2]) if run_fixture == "fineweb_run" else value
    manifest = result.manifest
    page = tmp_path / "report.html"
    page.write_text(render(manifest, str(out)), encoding="utf-8")
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(page.as_uri())
    facts = browser.execute_script(PAGE_FACTS)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert facts["title"] == f"tokenmill: {manifest['name']}"
    assert len(facts["images"]) >= 2
    for img in facts["images"]:
        assert img["complete"] and img["natural"] > 0 and img["width"] > 0 and img["height"] > 0, img
    shown = [[row[0], *(int(x.replace(",", "")) for x in row[3:6])] for row in facts["funnel"]]
    assert shown == [[s["stage"], s["rows_in"], sum(s["removed"].values()), s["rows_out"]] for s in manifest["stages"]]
    if run_fixture == "fineweb_run":
        browser.save_screenshot(str(tmp_path / "first_screen.png"))
        assert (tmp_path / "first_screen.png").stat().st_size > 10_000
        if os.environ.get("TOKENMILL_UPDATE_SCREENSHOT") == "1":
            shutil.copy(tmp_path / "first_screen.png", ROOT / "docs" / "img" / "report.png")
