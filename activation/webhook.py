"""Signed webhook POSTs with retries and exponential backoff (standard library only).

Signature: header `X-Activation-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the shared
secret, the scheme Stripe and others use: the timestamp lets a receiver refuse replays, the HMAC proves the
sender knows the secret and that the body is unchanged. `verify_signature` is what a receiver runs.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

SIGNATURE_HEADER = "X-Activation-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
MAX_RESPONSE_CHARS = 2000


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The signature header value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    body: bytes, header: str | None, secret: str, *, tolerance_seconds: float | None = 300, now: float | None = None
) -> bool:
    """True when `header` is a valid signature of `body` under `secret` (and, with a tolerance, recent)."""
    if not header:
        return False
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if tolerance_seconds is not None and abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = sign(body, secret, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


@dataclass
class Attempt:
    """One POST: when, what came back (status None when no HTTP answer), and what it said."""

    attempted_at: datetime
    status: int | None
    response: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class PostResult:
    """All attempts of one payload; ok when the last one succeeded."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]


@dataclass
class WebhookClient:
    """POSTs JSON bodies to one URL, signed, retrying connection errors and 408/425/429/5xx with backoff
    `backoff_seconds * 2**n` (capped at `max_backoff_seconds`); other statuses fail at once."""

    url: str
    secret: str
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must start with http:// or https://, got {self.url!r}")
        if not self.secret:
            raise ValueError("a webhook needs a shared secret to sign with (ACTIVATION_WEBHOOK_SECRET)")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def post(self, body: bytes, idempotency_key: str) -> PostResult:
        """Send `body` until it is accepted, a non-retryable status comes back or the attempts run out."""
        result = PostResult()
        for number in range(self.max_attempts):
            if number:
                self.sleep(min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (number - 1)))
            attempt = self._once(body, idempotency_key)
            result.attempts.append(attempt)
            if attempt.ok or (attempt.status is not None and attempt.status not in RETRYABLE_STATUS):
                break
        return result

    def _once(self, body: bytes, idempotency_key: str) -> Attempt:
        now = datetime.now(UTC)
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(body, self.secret, int(now.timestamp())),
                IDEMPOTENCY_HEADER: idempotency_key,
                "User-Agent": "engagement-warehouse-activation/1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                text = response.read(MAX_RESPONSE_CHARS).decode("utf-8", "replace")
                return Attempt(now, response.status, text)
        except urllib.error.HTTPError as error:
            text = error.read(MAX_RESPONSE_CHARS).decode("utf-8", "replace") if error.fp else ""
            return Attempt(now, error.code, text)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            return Attempt(now, None, f"{type(error).__name__}: {reason}"[:MAX_RESPONSE_CHARS])
