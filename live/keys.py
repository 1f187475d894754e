"""The Redis keys of the live state, all under one prefix (LIVE_KEY_PREFIX). docs/live.md lists them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Key names for one prefix. A subject is a user id or an anonymous id: the id an event's state is kept under."""

    prefix: str = "live"

    def profile(self, subject: str) -> str:
        """HASH: last seen, last event, last product viewed, last order (times in ms and message ids)."""
        return f"{self.prefix}:s:{subject}"

    def events(self, subject: str) -> str:
        """ZSET: message id -> event time (ms), the last day plus a session gap of events (the windows, sessions)."""
        return f"{self.prefix}:e:{subject}"

    def cart(self, subject: str) -> str:
        """HASH: product id -> 'added ms|message id|quantity|price' of its latest product_added."""
        return f"{self.prefix}:c:{subject}"

    def removed(self, subject: str) -> str:
        """HASH: product id -> ms of its latest product_removed."""
        return f"{self.prefix}:r:{subject}"

    def anonymous_ids(self, user_id: str) -> str:
        """SET: the anonymous ids events have named together with this user id (their state is the user's too)."""
        return f"{self.prefix}:ids:{user_id}"

    def user_of(self, anonymous_id: str) -> str:
        """STRING: the user id an anonymous id was named with last."""
        return f"{self.prefix}:link:{anonymous_id}"

    def subject_keys(self, subject: str) -> list[str]:
        """Every key of one subject's own state."""
        return [self.profile(subject), self.events(subject), self.cart(subject), self.removed(subject)]

    @property
    def offsets(self) -> str:
        """HASH: spool file name -> bytes of it applied (moved in the same transaction as the state they changed)."""
        return f"{self.prefix}:offsets"

    @property
    def applied(self) -> str:
        """INTEGER: events applied since the state was empty (one per spool line used: the exactly-once witness)."""
        return f"{self.prefix}:applied"

    @property
    def pattern(self) -> str:
        """Every key of this prefix (for SCAN)."""
        return f"{self.prefix}:*"
