"""One command in a child process under /usr/bin/time: wall seconds, CPU seconds, peak memory and its output."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path


def timed(command: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """Run `command`; its wall and CPU seconds, peak RSS in MB and stdout. Raises with its output when it fails."""
    with tempfile.TemporaryDirectory(prefix="bench-time-") as folder:
        report = Path(folder) / "time.txt"
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M %U %S", "-o", str(report), *command], env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)[:300]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        peak_kb, user, system = report.read_text().strip().splitlines()[-1].split()
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(float(user) + float(system), 1),
        "peak_mb": round(int(peak_kb) / 1024),
        "stdout": result.stdout.strip(),
    }
