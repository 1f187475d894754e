"""Real collector servers on loopback ports for the tests: in a thread, or as a `python -m collector` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import uvicorn

from collector import CollectorSettings, create_app
from collector.server import uvicorn_config

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"collector exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"collector at {url} did not come up in {timeout}s")


class ThreadServer:
    """uvicorn serving `create_app(settings)` on a thread of this process, configured as `python -m collector`
    configures it (protocol, timeouts, connection cap); leaving the block shuts it down."""

    def __init__(self, settings: CollectorSettings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        self.server = uvicorn.Server(
            uvicorn_config(self.app, settings, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def collector(self):
        return self.app.state.collector

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_healthy(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "collector thread did not stop"


class ProcessServer:
    """`python -m collector` in its own process, configured through the environment like in production."""

    def __init__(self, data_dir: Path, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATA_DIR": str(data_dir), "COLLECTOR_PORT": str(self.port), **env}
        self.process: subprocess.Popen | None = None

    def start(self) -> ProcessServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "collector"], cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        wait_healthy(self.url, process=self.process)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> list[dict]:
        """Send `sig`, wait for the exit, and return the JSON log lines."""
        assert self.process is not None
        self.process.send_signal(sig)
        _, stderr = self.process.communicate(timeout=timeout)
        return [orjson.loads(line) for line in stderr.splitlines() if line.startswith(b"{")]

    def __enter__(self) -> ProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


def landed_lines(data_dir: Path) -> list[dict]:
    """Every line of every file the collector rotated into the landing folder, in file order."""
    lines = []
    for path in sorted((data_dir / "landing" / "collector").glob("*")):
        raw = path.read_bytes()
        assert raw.endswith(b"\n"), f"{path.name} ends without a newline"
        lines.extend(orjson.loads(line) for line in raw.splitlines())
    return lines
