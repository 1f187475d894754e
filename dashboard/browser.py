"""Drive the running dashboard in headless Chromium: the browser test and the screenshots use this.

Uses Debian's chromium and chromium-driver (nothing is downloaded): CHROMIUM_BINARY and CHROMEDRIVER override
/usr/bin/chromium and /usr/bin/chromedriver. Selenium is a dev dependency, imported only here.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from settings import child_environment
from settings import load as load_settings

if TYPE_CHECKING:  # selenium is a dev dependency, imported lazily below
    from selenium.webdriver.remote.webdriver import WebDriver

APP = Path(__file__).resolve().parent / "app.py"
# url path (the default page is served at the root) -> title
PAGES = {
    "": "Overview",
    "retention": "Retention",
    "lifecycle": "Lifecycle & stickiness",
    "segments": "Segments",
    "churn": "Churn",
    "funnels": "Funnels",
    "paths": "Paths",
    "experiments": "Experiments",
    "data_health": "Data health",
}
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
# Data marks drawn in each chart's SVG: children of role-mark groups (not axes, legends, or the layers charts.py
# names "reference", such as a zero line drawn whatever the data). -1: the chart has no SVG yet.
COUNT_MARKS_JS = """
return Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"]')).map(chart => {
  const svg = chart.querySelector('svg');
  if (!svg) { return -1; }
  return Array.from(svg.querySelectorAll('g.role-mark'))
    .filter(g => !g.getAttribute('class').includes('reference'))
    .reduce((n, g) => n + g.children.length, 0);
});
"""
RUNNING_JS = """
const widget = document.querySelector('[data-testid="stStatusWidget"]');
return widget !== null && widget.offsetParent !== null;
"""


def chromium_paths() -> tuple[Path, Path]:
    """(browser binary, driver): the settings CHROMIUM_BINARY / CHROMEDRIVER, Debian's paths by default."""
    tools = load_settings().tools
    return tools.chromium_binary, tools.chromedriver


def missing_browser() -> str | None:
    """Why the browser cannot run here (None when it can)."""
    binary, driver = chromium_paths()
    missing = [str(path) for path in (binary, driver) if not path.exists()]
    if missing:
        return (
            f"{' and '.join(missing)} not found: install Debian's browser and driver with "
            "`sudo apt-get install chromium chromium-driver` (or set CHROMIUM_BINARY and CHROMEDRIVER)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: `make install` installs the dev extra"
    return None


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_command(port: int) -> list[str]:
    """The command that serves the dashboard (what `make dashboard` runs)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.address",
        "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode",
        "viewer",
    ]  # fmt: skip


@contextmanager
def running_app(data_dir: Path, port: int | None = None, timeout: float = 60) -> Iterator[str]:
    """Start the dashboard on a free port for data_dir; yield its base URL; stop it after."""
    port = port or free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this statement; closed in the finally below
    process = subprocess.Popen(
        app_command(port), env=child_environment(DATA_DIR=str(data_dir)), stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the dashboard exited with {process.returncode}:\n{log.read().decode()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the dashboard did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def chromium(width: int = 1400, height: int = 1000, downloads: Path | None = None) -> Iterator[WebDriver]:
    """A headless Chromium driven through Debian's chromedriver, with a throwaway profile (downloads: where files
    the pages offer are saved)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium_paths()
    with tempfile.TemporaryDirectory(prefix="dashboard-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(binary)
        for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        if downloads is not None:
            options.add_experimental_option(
                "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
            )
        driver = webdriver.Chrome(service=Service(str(driver_path)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


@dataclass
class PageReport:
    """What one page showed in the browser."""

    url: str
    title: str = ""
    exceptions: list[str] = field(default_factory=list)
    chart_marks: list[int] = field(default_factory=list)  # per chart; -1: no SVG drawn
    notes: list[str] = field(default_factory=list)  # st.info texts (missing or empty tables)
    dialogs: list[str] = field(default_factory=list)  # e.g. Streamlit's "Page not found"

    @property
    def empty_charts(self) -> int:
        return sum(1 for marks in self.chart_marks if marks < 1)


def open_page(driver: WebDriver, url: str, timeout: float = 45) -> PageReport:
    """Load a page, wait until Streamlit has finished running it and its charts are drawn, and report."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, timeout, poll_frequency=0.25)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "h1"))

    def settled(d: WebDriver) -> bool:
        if d.execute_script(RUNNING_JS):
            return False
        marks = d.execute_script(COUNT_MARKS_JS)
        return all(m >= 0 for m in marks)

    wait.until(settled)
    time.sleep(0.5)  # vega draws asynchronously; one more look once the script has stopped
    wait.until(settled)
    report = PageReport(url=url, title=driver.find_element(By.CSS_SELECTOR, "h1").text)
    report.exceptions = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')]
    report.chart_marks = list(driver.execute_script(COUNT_MARKS_JS))
    report.dialogs = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[role="dialog"]')]
    report.notes = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentInfo"]')]
    return report


def full_page_screenshot(driver: WebDriver, path: Path) -> None:
    """Save the whole page (not only the window) as PNG by growing the window to the content's height."""
    height = driver.execute_script(
        "const main = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        "return Math.max(main.scrollHeight, document.body.scrollHeight);"
    )
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, min(int(height) + 120, 8000))
    time.sleep(0.8)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
