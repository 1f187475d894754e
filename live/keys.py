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
    def dirty(self) -> str:
        """SET: subjects with events applied since their segments were last evaluated."""
        return f"{self.prefix}:dirty"

    @property
    def active(self) -> str:
        """ZSET: subject -> its newest event time (ms): whom a change of batch traits re-evaluates."""
        return f"{self.prefix}:active"

    @property
    def carts_due(self) -> str:
        """ZSET: subject -> when its cart counts as abandoned (last product added + the trigger's wait, ms)."""
        return f"{self.prefix}:carts_due"

    def members(self, segment: str) -> str:
        """HASH: the live segment's members -> when they entered (ms, event time)."""
        return f"{self.prefix}:m:{segment}"

    def member_index(self, segment: str) -> str:
        """ZSET (every score 0): the live segment's members in id order, for paging (ZRANGE BYLEX)."""
        return f"{self.prefix}:mi:{segment}"

    @property
    def until(self) -> str:
        """ZSET: '<segment>\x1f<user>' -> when that membership stops holding unless an event comes (ms)."""
        return f"{self.prefix}:until"

    @property
    def transitions(self) -> str:
        """STREAM: segment entries and exits and abandoned carts, in order (what triggers deliver)."""
        return f"{self.prefix}:transitions"

    def traits(self, user_id: str) -> str:
        """HASH: the user's batch traits from the serving copy (rfm_segment, cluster_name, ...) and its version."""
        return f"{self.prefix}:t:{user_id}"

    def recommendations(self, user_id: str) -> str:
        """STRING: JSON [source, model version, [[product id, score], ...]] of the user's recommendations from the
        serving copy (apart from its traits hash, whose small fields Redis then keeps compact)."""
        return f"{self.prefix}:rec:{user_id}"

    @property
    def traits_version(self) -> str:
        """STRING: the published_at of the serving copy the traits come from."""
        return f"{self.prefix}:traits_version"

    @property
    def popular(self) -> str:
        """HASH: segment -> JSON list of its most popular product ids (ml.popular_products); version and
        model_version fields."""
        return f"{self.prefix}:popular"

    @property
    def delivered(self) -> str:
        """ZSET: delivery key -> when its webhook POST was accepted (ms): no trigger entry is posted twice."""
        return f"{self.prefix}:delivered"

    @property
    def pattern(self) -> str:
        """Every key of this prefix (for SCAN)."""
        return f"{self.prefix}:*"
