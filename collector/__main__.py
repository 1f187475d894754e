"""`python -m collector`: serve the collector on COLLECTOR_HOST:COLLECTOR_PORT (default 127.0.0.1:8090)."""

from __future__ import annotations

import argparse
import logging
import logging.config
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from collector.app import create_app
from collector.logs import log_config
from collector.server import uvicorn_config
from settings import CollectorSettings, SettingError


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; shutdown rotates the spool into the landing folder. 1 when it could not start."""
    parser = argparse.ArgumentParser(prog="python -m collector", description=__doc__)
    parser.add_argument("--host", help="bind address (default: $COLLECTOR_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $COLLECTOR_PORT or 8090)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--access-log", action="store_true", help="log every request (costs throughput)")
    args = parser.parse_args(argv)
    config = log_config(args.log_level.upper())
    if args.access_log:
        config["loggers"]["uvicorn.access"]["level"] = "INFO"
    logging.config.dictConfig(config)
    try:
        settings = CollectorSettings.from_env()
    except SettingError as error:
        logging.getLogger("collector").error(str(error))
        return 2
    # one process serves in-process; several run under uvicorn's supervisor, each building the app from the env
    server_config = uvicorn_config(
        create_app(settings) if settings.workers == 1 else "collector.app:create_app",
        settings,
        factory=settings.workers > 1,
        workers=settings.workers,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=config,
        access_log=args.access_log,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(server_config)
    if settings.workers > 1:
        Multiprocess(server_config, sockets=[server_config.bind_socket()]).run()
    else:
        server.run()
        if not server.started:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
