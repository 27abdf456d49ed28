"""Headless Chromium for the report's browser tests and its screenshot (dev tooling).

Uses Debian's ``chromium`` and ``chromedriver`` (``make browser`` installs them) through
Selenium; nothing is downloaded at run time.

    python -m parity.report.browser screenshot reports/parity.html docs/report.png
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1500,1100")


def executables() -> tuple[str | None, str | None]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    return chromium, shutil.which("chromedriver")


def driver(width: int = 1500, height: int = 1100):
    """A headless Chromium WebDriver that records the page's console messages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = executables()
    if not (chromium and chromedriver):
        raise RuntimeError("chromium and chromedriver are needed: `make browser` installs Debian's packages")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=opts)


def viewport(d, width: int, height: int) -> None:
    """Make the page's viewport exactly width x height CSS pixels (the window's size includes
    the browser's own frame), as on a screen of that size."""
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def screenshot(html: Path, png: Path, width: int = 1366, height: int = 768) -> None:
    """The report's first screen on a 1366x768 screen: the status, the verdict badges and what
    is not ok, with the first failure's drill-down open in place (when everything is ok: the
    declarations that accept what is not PASS, opened)."""
    d = driver(width, height)
    try:
        viewport(d, width, height)
        d.get(Path(html).resolve().as_uri())
        d.execute_script("""
            var open = document.querySelector("#not-ok button.open");
            if (open) open.click();
            else if (document.getElementById("accepted")) document.getElementById("accepted").open = true;
            window.scrollTo(0, 0);
        """)
        Path(png).parent.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(png))
    finally:
        d.quit()


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "screenshot":
        raise SystemExit("usage: python -m parity.report.browser screenshot REPORT.html OUT.png")
    screenshot(Path(sys.argv[2]), Path(sys.argv[3]))
    print(f"wrote {sys.argv[3]}")
