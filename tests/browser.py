"""A real browser for the report tests: Debian's headless Chromium driven by selenium.

`make browser` (run by `make test`, so by CI) installs ``chromium`` and ``chromium-driver`` when
they are missing. A machine without them fails the browser tests with that instruction: the
feature is never skipped silently.
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver",)
INSTALL = "run `make browser` (apt-get install chromium chromium-driver)"

# Reads, inside the page: every figure element's size, whether any planted script ran, the
# visible text, and the URLs of every resource the page loaded.
PROBE = """
const figures = [...document.querySelectorAll('[data-figure]')].map(e => {
  const r = e.getBoundingClientRect();
  return {name: e.getAttribute('data-figure'), kind: e.tagName.toLowerCase(),
          width: r.width, height: r.height, ready: e.getAttribute('data-ready')};
});
const resources = performance.getEntriesByType('resource').map(e => e.name);
const svgText = [...document.querySelectorAll('svg text')].map(t => t.textContent);
return {figures, resources, pwned: window.__pwned === true, text: document.body.innerText,
        plots: document.querySelectorAll('.js-plotly-plot').length, svgText};
"""


def _which(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def available() -> tuple[str, str]:
    """The chromium and chromedriver executables; fails with the install instruction."""
    browser, driver = _which(CHROMIUM), _which(DRIVER)
    if browser is None or driver is None:
        raise AssertionError(f"Chromium and its driver are needed for this test: {INSTALL}.")
    return browser, driver


@dataclass
class PageVisit:
    """What the browser saw of one page."""

    console: list[dict] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    plots: int = 0
    pwned: bool = False
    text: str = ""
    svg_text: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def errors(self) -> list[dict]:
        """Console messages at error level (and uncaught exceptions)."""
        return [m for m in self.console if m.get("level") in ("SEVERE", "ERROR")]


class Browser:
    """One headless Chromium for a test module; :meth:`visit` opens a file from disk."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        browser, driver = available()
        options = webdriver.ChromeOptions()
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            # A page from disk must work with the network gone: no request may leave it.
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ):
            options.add_argument(flag)
        options.binary_location = browser
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(driver), options=options)

    def visit(self, page: Path, screenshot: Path | None = None) -> PageVisit:
        """Open ``page`` (a file), wait for its scripts, and read what it shows."""
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.get(Path(page).resolve().as_uri())
        # The page marks <body data-ready> once every interactive figure is drawn (a
        # condition the page sets itself, not a sleep).
        WebDriverWait(self.driver, 60).until(
            lambda d: d.execute_script("return document.body.dataset.ready === 'yes'")
        )
        seen = self.driver.execute_script(PROBE)
        visit = PageVisit(
            console=self.driver.get_log("browser"),
            figures=seen["figures"],
            resources=seen["resources"],
            plots=seen["plots"],
            pwned=seen["pwned"],
            text=seen["text"],
            svg_text=seen["svgText"],
        )
        if screenshot is not None:
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"captureBeyondViewport": True, "format": "png"}
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            visit.screenshot = screenshot
        return visit

    def close(self) -> None:
        self.driver.quit()


def describe(visit: PageVisit) -> str:
    """A short account for assertion messages."""
    return json.dumps({"errors": visit.errors, "resources": visit.resources[:5]}, indent=1)
