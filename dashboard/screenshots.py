"""Screenshots of every dashboard page for the docs: `python -m dashboard.screenshots [--out docs/dashboard]`.

Serves the dashboard on the serving copy under $DATA_DIR (run `make demo` first), opens each page in headless
Chromium and saves docs/dashboard/<page>.png. Fails, naming the page, when a page shows an exception or an empty chart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboard import browser
from dashboard.source import SERVING_FILE, data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard"), help="folder for the PNG files")
    parser.add_argument("--width", type=int, default=1400, help="browser window width in pixels")
    args = parser.parse_args(argv)
    reason = browser.missing_browser()
    if reason:
        print(f"Cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    root = data_dir()
    if not (root / SERVING_FILE).exists():
        print(f"No serving copy at {root / SERVING_FILE}: run `make demo` first.", file=sys.stderr)
        return 1
    problems = []
    with browser.running_app(root) as url, browser.chromium(width=args.width) as driver:
        for path, title in browser.PAGES.items():
            driver.set_window_size(args.width, 1000)
            report = browser.open_page(driver, f"{url}/{path}")
            name = path or "overview"
            target = args.out / f"{name}.png"
            browser.full_page_screenshot(driver, target)
            print(f"{title}: {target} ({len(report.chart_marks)} charts, {len(report.notes)} notes)")
            if report.exceptions or report.empty_charts or report.dialogs:
                problems.append(f"{title}: {report}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
