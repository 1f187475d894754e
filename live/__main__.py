"""`python -m live consume [--replay] [--once]`: tail the collector's spool into Redis (Ctrl-C stops it);
`python -m live api`: serve the profile API on LIVE_API_HOST:LIVE_API_PORT;
`python -m live profile USER_ID`: print a user's live profile as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time

from redis import Redis
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError

from live.consumer import Consumer
from live.definitions import load_definitions
from live.keys import Keys
from live.profiles import ProfileReader
from settings import load

REDIS_START_SECONDS = 10  # a Redis started beside the consumer (make dev) gets this long to accept connections
REDIS_LOADING_SECONDS = 600  # and this long to load its append-only file (a large live state takes a while)


def wait_for_redis(redis: Redis) -> None:
    """Return once Redis answers; RedisConnectionError when it refuses connections for REDIS_START_SECONDS or is
    still loading its data after REDIS_LOADING_SECONDS."""
    started = time.monotonic()
    said = False
    while True:
        try:
            redis.ping()
            return
        except BusyLoadingError:
            if time.monotonic() - started > REDIS_LOADING_SECONDS:
                raise
            if not said:
                logging.getLogger("live").info("Redis is loading its data; waiting for it")
                said = True
        except RedisConnectionError:
            if time.monotonic() - started > REDIS_START_SECONDS:
                raise
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m live", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    consume = commands.add_parser("consume", help="tail the collector's spool into the live state")
    consume.add_argument("--replay", action="store_true", help="delete the live state first and read every file")
    consume.add_argument("--once", action="store_true", help="apply what the files hold now, then stop")
    commands.add_parser("api", help="serve the profile API (LIVE_API_HOST, LIVE_API_PORT)")
    profile = commands.add_parser("profile", help="print a user's live profile")
    profile.add_argument("user_id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load()
    if args.command == "api":
        import uvicorn

        from live.api import create_api

        # uvloop and httptools (uvicorn's fast loop and parser); no line per request (like the collector's default)
        uvicorn.run(
            create_api(settings.live), host=settings.live.api_host, port=settings.live.api_port, loop="uvloop",
            http="httptools", access_log=False,
        )  # fmt: skip
        return 0
    if args.command == "profile":
        segments = tuple(s.name for s in load_definitions(settings.live.definitions_file).segments)
        reader = ProfileReader(
            Redis.from_url(settings.live.redis_url), Keys(settings.live.key_prefix),
            int(settings.live.session_gap_minutes * 60_000), segments,
        )  # fmt: skip
        print(json.dumps(reader.read(args.user_id), indent=2))
        return 0
    try:
        wait_for_redis(Redis.from_url(settings.live.redis_url))
        consumer = Consumer(settings)
    except RedisConnectionError:
        logging.getLogger("live").warning(
            "no Redis answers at LIVE_REDIS_URL: the live path is off (install redis-server; docs/live.md)"
        )
        return 1
    if args.replay:
        consumer.replay()
    if args.once:
        while consumer.poll():
            consumer.maintain()
        consumer.maintain()
        print(json.dumps(consumer.stats.__dict__))
        return 0
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    consumer.run(should_stop=lambda: stopping)
    return 0


if __name__ == "__main__":
    sys.exit(main())
