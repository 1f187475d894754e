"""What the generator plants: personas, channels, countries, the experiment, defects and file layout."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Persona:
    """Behaviour of one kind of user; rates are means before per-user lognormal noise.

    Every profile below holds from a user's first session on (the signup session already draws its events, pages,
    features, device and hours from them), as real users show their habits from their first visit: what tells
    personas apart is the mix of what they do, not only how long they stay.
    """

    active_days_per_week: float  # the activity rate: chance of a visit on a day, times 7
    extra_sessions: float  # Poisson mean of further sessions on an active day
    events_per_session: float  # mean of regular events in a session (at least one)
    lifetime_days: float  # mean of the exponential time to churn at the persona's base activity rate
    order_prob: float  # chance that a session ends with an order
    order_value: float  # mean order value in USD
    coupon_prob: float  # chance that an order uses a coupon
    refund_prob: float  # chance that an order is refunded later
    decays: bool  # activity fades linearly towards the churn date
    # Weights of session event kinds: page, Product Viewed, Product Added, Feature Used, Search Performed.
    mix: tuple[float, float, float, float, float]
    feature_weights: tuple[float, ...]  # over FEATURES
    plan_weights: tuple[float, float, float]  # over PLANS
    device_weights: tuple[float, float, float]  # over DEVICES
    page_weights: tuple[float, ...]  # over PAGES (signed-in page and screen views)
    hours: str  # key of HOUR_PROFILES: when in the day (UTC) the persona's sessions start


PERSONAS: dict[str, Persona] = {
    "power_user": Persona(
        active_days_per_week=5.0, extra_sessions=0.8, events_per_session=7.0, lifetime_days=240.0,
        order_prob=0.10, order_value=90.0, coupon_prob=0.05, refund_prob=0.03, decays=False,
        mix=(0.18, 0.10, 0.04, 0.55, 0.13), feature_weights=(0.10, 0.30, 0.05, 0.05, 0.50),
        plan_weights=(0.2, 0.5, 0.3), device_weights=(0.85, 0.12, 0.03),
        page_weights=(1.0, 0.5, 2.0, 5.0, 0.5, 0.3, 1.0), hours="working",
    ),
    "casual_browser": Persona(
        active_days_per_week=1.3, extra_sessions=0.2, events_per_session=4.0, lifetime_days=60.0,
        order_prob=0.03, order_value=45.0, coupon_prob=0.05, refund_prob=0.05, decays=False,
        mix=(0.62, 0.18, 0.03, 0.07, 0.10), feature_weights=(0.65, 0.05, 0.10, 0.15, 0.05),
        plan_weights=(0.8, 0.2, 0.0), device_weights=(0.15, 0.75, 0.10),
        page_weights=(4.0, 0.8, 1.5, 0.3, 4.0, 0.2, 0.4), hours="evening",
    ),
    "discount_seeker": Persona(
        active_days_per_week=2.0, extra_sessions=0.3, events_per_session=5.0, lifetime_days=90.0,
        order_prob=0.12, order_value=35.0, coupon_prob=0.80, refund_prob=0.08, decays=False,
        mix=(0.20, 0.40, 0.15, 0.05, 0.20), feature_weights=(0.20, 0.05, 0.05, 0.65, 0.05),
        plan_weights=(0.7, 0.3, 0.0), device_weights=(0.10, 0.75, 0.15),
        page_weights=(1.0, 4.0, 0.5, 0.2, 0.5, 3.0, 0.5), hours="lunch_and_night",
    ),
    "one_and_done": Persona(
        active_days_per_week=0.5, extra_sessions=0.1, events_per_session=5.0, lifetime_days=2.0,
        order_prob=0.45, order_value=60.0, coupon_prob=0.10, refund_prob=0.10, decays=False,
        mix=(0.35, 0.30, 0.25, 0.02, 0.08), feature_weights=(0.40, 0.20, 0.20, 0.10, 0.10),
        plan_weights=(0.9, 0.1, 0.0), device_weights=(0.70, 0.05, 0.25),
        page_weights=(3.0, 1.5, 0.5, 0.2, 0.2, 4.0, 0.3), hours="afternoon",
    ),
    "slow_churner": Persona(
        active_days_per_week=3.5, extra_sessions=0.4, events_per_session=5.0, lifetime_days=120.0,
        order_prob=0.05, order_value=55.0, coupon_prob=0.10, refund_prob=0.05, decays=True,
        mix=(0.40, 0.10, 0.04, 0.36, 0.10), feature_weights=(0.15, 0.10, 0.55, 0.10, 0.10),
        plan_weights=(0.5, 0.4, 0.1), device_weights=(0.65, 0.20, 0.15),
        page_weights=(0.8, 0.5, 0.8, 1.5, 0.3, 0.2, 4.0), hours="morning",
    ),
}  # fmt: skip

DEFAULT_PERSONA_SHARES = {
    "power_user": 0.15,
    "casual_browser": 0.35,
    "discount_seeker": 0.15,
    "one_and_done": 0.20,
    "slow_churner": 0.15,
}

# name -> (share of signups, multiplier on expected lifetime)
CHANNELS = {
    "organic": (0.35, 1.0),
    "paid_search": (0.20, 0.85),
    "paid_social": (0.20, 0.6),
    "email": (0.10, 1.15),
    "referral": (0.15, 1.4),
}
COUNTRIES = {
    "US": (0.35, 1.0),
    "GB": (0.12, 1.1),
    "DE": (0.12, 1.2),
    "FR": (0.10, 0.95),
    "IN": (0.18, 0.7),
    "BR": (0.13, 0.8),
}
# First-touch campaign per channel: the medium names the channel; (source, campaign name) pairs vary.
CAMPAIGN_MEDIUM = {
    "organic": "organic",
    "paid_search": "cpc",
    "paid_social": "paid_social",
    "email": "email",
    "referral": "referral",
}
CAMPAIGNS = {
    "organic": (("google", "(organic)"), ("bing", "(organic)"), ("duckduckgo", "(organic)")),
    "paid_search": (("google", "brand_search"), ("google", "generic_search"), ("bing", "brand_search")),
    "paid_social": (("facebook", "spring_promo"), ("instagram", "retargeting"), ("linkedin", "b2b_launch")),
    "email": (("newsletter", "weekly_digest"), ("newsletter", "product_launch"), ("partners", "co_promo")),
    "referral": (("partner_blog", "partner_program"), ("friend_invite", "invite_friend"), ("g2", "reviews")),
}
LOCALES = {"US": "en-US", "GB": "en-GB", "DE": "de-DE", "FR": "fr-FR", "IN": "en-IN", "BR": "pt-BR"}
# Offset (minutes) that some rows of a country's users carry in `timestamp`; the instant stays the same.
COUNTRY_OFFSETS = {"US": -300, "GB": 60, "DE": 120, "FR": 120, "IN": 330, "BR": -180}

DEVICES = ("desktop", "mobile", "tablet")
OPERATING_SYSTEMS = ("macOS", "Windows", "Linux", "iOS", "Android", "iPadOS")
OS_BY_DEVICE = {
    "desktop": (0.45, 0.45, 0.10, 0.0, 0.0, 0.0),
    "mobile": (0.0, 0.0, 0.0, 0.5, 0.5, 0.0),
    "tablet": (0.0, 0.0, 0.0, 0.0, 0.3, 0.7),
}

PLANS = ("free", "pro", "team")
FEATURES = ("dashboards", "export", "alerts", "sharing", "api")
PAGES = ("Home", "Pricing", "Features", "Docs", "Blog", "Checkout", "Account")
# Pages anonymous visitors can see before signing up (1) or not (0); among them a persona browses by its page_weights
SIGNUP_PAGES = (1, 1, 1, 0, 1, 0, 0)
SEARCH_QUERIES = ("pricing", "export csv", "api keys", "dashboard templates", "alerts setup", "integrations")
COUPONS = ("SAVE10", "WELCOME15", "FLASH20", "LOYAL25")
COUPON_DISCOUNT = (0.10, 0.15, 0.20, 0.25)
EMAIL_NAMES = ("weekly_digest", "product_update", "win_back", "promo")
EMAIL_WEIGHTS = (4.0, 2.0, 1.0, 2.0)
VARIANTS = ("control", "treatment")
# The 2x2 factorial experiment: cell = tour + 2 * badge; variant names are the levels joined by "+" in factor order.
FACTORS = ("tour", "badge")
FACTORIAL_VARIANTS = ("tour_off+badge_off", "tour_on+badge_off", "tour_off+badge_on", "tour_on+badge_on")
PRODUCTS = 200
# Planted item preferences (what a recommender should find): each persona, in the order of PERSONAS, favours its own
# block of PREFERRED_BLOCK products (persona i: products PREFERRED_FIRST + i * PREFERRED_BLOCK onwards, 0-based),
# weighted PREFERENCE_BOOST times their popularity, in what it views, adds and orders.
PREFERRED_FIRST = 20
PREFERRED_BLOCK = 30
PREFERENCE_BOOST = 40.0

# Signups and visits by weekday (Monday first); the hour (UTC) a signup or session starts follows its persona.
WEEKDAY_WEIGHTS = (1.15, 1.2, 1.15, 1.1, 1.0, 0.7, 0.7)
HOUR_PROFILES: dict[str, tuple[float, ...]] = {
    "working": (0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 3.0, 3.5, 3.5, 3.2,
                2.5, 3.2, 3.5, 3.5, 3.0, 2.0, 1.0, 0.6, 0.5, 0.4, 0.3, 0.2),
    "evening": (1.0, 0.5, 0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.6,
                0.8, 0.6, 0.6, 0.7, 1.0, 1.8, 3.0, 3.8, 4.0, 3.8, 3.0, 2.0),
    "lunch_and_night": (1.5, 1.0, 0.4, 0.2, 0.1, 0.1, 0.2, 0.4, 0.6, 0.8, 1.5, 3.0,
                        3.8, 3.0, 1.2, 0.6, 0.6, 0.8, 1.0, 1.5, 2.2, 3.0, 3.2, 2.5),
    "afternoon": (0.4, 0.3, 0.2, 0.2, 0.2, 0.3, 0.5, 0.8, 1.2, 1.5, 1.8, 2.0,
                  2.2, 2.5, 2.8, 3.0, 3.0, 2.8, 2.4, 2.0, 1.5, 1.0, 0.7, 0.5),
    "morning": (0.2, 0.1, 0.1, 0.2, 0.5, 1.5, 3.0, 4.0, 4.0, 3.2, 2.0, 1.2,
                0.8, 0.6, 0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.5, 0.4, 0.3, 0.2),
}  # fmt: skip

# Kinds of defective rows -> share of all defective rows. Duplicates load once; every other kind is rejected.
DEFAULT_DIRTY_MIX = {
    "duplicate": 0.40,
    "missing_message_id": 0.10,
    "missing_user_ids": 0.10,
    "bad_timestamp": 0.10,
    "future_timestamp": 0.10,
    "track_without_event": 0.10,
    "unknown_type": 0.10,
}
# File formats of a "mix" run -> share of files.
DEFAULT_FORMAT_MIX = {"jsonl.gz": 0.55, "jsonl": 0.15, "csv": 0.08, "csv.gz": 0.12, "parquet": 0.10}
FORMATS = ("jsonl.gz", "jsonl", "csv", "csv.gz", "parquet")

DEFAULT_END = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that shapes one generated data set; the same config and seed give the same files."""

    users: int = 3000
    seed: int = 42
    months: int = 6
    end: datetime = DEFAULT_END
    persona_shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PERSONA_SHARES))
    activity_sigma: float = 0.6  # lognormal noise on each user's activity rate
    signup_growth: float = 2.0  # daily signups at the end over those at the start
    email_per_week: float = 0.5  # "Email Sent" per user and week until the end (also after churn)
    # Experiment
    experiment_id: str = "checkout_redesign"
    experiment_weeks: int = 8  # starts this many weeks before the end
    conversion_window_days: int = 7
    p_control: float = 0.12
    lift: float = 0.15  # true relative lift of treatment over control
    repeat_exposure_prob: float = 0.35  # later sessions that show the experiment again
    # Users with an order in the pre-period (these many days before the exposure) convert this many times as often
    # as the others, the average rate staying p_control / p_treatment (unless a buyer's chance would pass 1): the
    # correlation CUPED feeds on.
    pre_period_days: int = 28
    pre_buyer_rate_ratio: float = 8.0
    # 2x2 factorial experiment on the A/B test's exposed users (same exposure session), goal "Plan Upgraded" within
    # the same window; conversion log-odds = base + tour + badge + interaction (each effect where its factors are on)
    factorial_id: str = "onboarding_2x2"
    factorial_base_log_odds: float = -2.0
    factorial_effects: tuple[float, float, float] = (0.6, 0.3, -0.4)  # tour, badge, tour:badge (log-odds)
    # Arrival and defects
    late_share: float = 0.02  # good events that arrive 1-5 days late
    dirty_share: float = 0.01  # defective rows as a share of all rows written
    dirty_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DIRTY_MIX))
    duplicate_later_share: float = 0.5  # duplicates placed in a later file rather than next to the original
    offset_share: float = 0.25  # timestamps written with the user's local UTC offset instead of "Z"
    # Files
    file_rows: int = 250_000
    file_format: str = "mix"  # mix | jsonl | jsonl.gz | csv | csv.gz | parquet
    format_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FORMAT_MIX))
    camel_share: float = 0.25  # files written with Segment's camelCase export names
    chunk_users: int = 20_000  # users simulated at a time (bounds memory; part of the random stream)

    def __post_init__(self) -> None:  # noqa: C901 - older than the complexity rule; split when next changed
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        if self.users < 1 or self.months < 1 or self.file_rows < 1 or self.chunk_users < 1:
            raise ValueError("users, months, file_rows and chunk_users must be positive")
        unknown = set(self.persona_shares) - set(PERSONAS)
        if unknown or not self.persona_shares or sum(self.persona_shares.values()) <= 0:
            raise ValueError(f"persona_shares must weight personas among {sorted(PERSONAS)}")
        if set(self.dirty_mix) - set(DEFAULT_DIRTY_MIX):
            raise ValueError(f"dirty_mix kinds must be among {sorted(DEFAULT_DIRTY_MIX)}")
        if self.file_format != "mix" and self.file_format not in FORMATS:
            raise ValueError(f"file_format must be 'mix' or one of {FORMATS}")
        if set(self.format_mix) - set(FORMATS):
            raise ValueError(f"format_mix keys must be among {FORMATS}")
        shares = ("late_share", "camel_share", "offset_share", "duplicate_later_share")
        for name in (*shares, "repeat_exposure_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a share between 0 and 1")
        if not 0 <= self.dirty_share < 0.5:
            raise ValueError("dirty_share must be at least 0 and below 0.5")
        if not 0 < self.p_control * (1 + self.lift) <= 1 or self.p_control <= 0:
            raise ValueError("p_control and p_control * (1 + lift) must be probabilities")
        if self.pre_buyer_rate_ratio < 1:
            raise ValueError("pre_buyer_rate_ratio must be at least 1")
        if self.pre_period_days < 1:
            raise ValueError("pre_period_days must be positive")
        if len(self.factorial_effects) != 3:
            raise ValueError("factorial_effects must be three log-odds: tour, badge and their interaction")
        if self.factorial_id == self.experiment_id:
            raise ValueError("factorial_id must differ from experiment_id")
        if self.experiment_weeks * 7 <= self.conversion_window_days:
            raise ValueError("the experiment must run longer than its conversion window")

    @property
    def p_treatment(self) -> float:
        """True conversion rate of the treatment variant."""
        return self.p_control * (1 + self.lift)

    @property
    def end_ms(self) -> int:
        """The end as milliseconds since the epoch."""
        return int(self.end.timestamp() * 1000)

    @property
    def start_ms(self) -> int:
        """Midnight UTC of the first signup day: the day after the end's date, `months` earlier."""
        end = self.end.astimezone(UTC)
        month = end.month - self.months
        year = end.year + (month - 1) // 12
        month = (month - 1) % 12 + 1
        start = datetime(year, month, 1, tzinfo=UTC)
        # The same day of month as the end (clamped to the month's length), then the next midnight.
        next_month = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        days_in_month = (next_month - start).days
        start = start.replace(day=min(end.day, days_in_month))
        return int(start.timestamp() * 1000) + DAY_MS

    @property
    def experiment_start_ms(self) -> int:
        """When the experiment starts showing."""
        return self.end_ms - self.experiment_weeks * 7 * DAY_MS

    @property
    def exposure_deadline_ms(self) -> int:
        """Last exposure time: every exposed user gets a full conversion window before the end."""
        return self.end_ms - self.conversion_window_days * DAY_MS

    def factorial_probabilities(self) -> list[float]:
        """Planted conversion probability of each factorial cell (FACTORIAL_VARIANTS order)."""
        tour, badge, both = self.factorial_effects
        logits = [self.factorial_base_log_odds + t * tour + b * badge + t * b * both for b in (0, 1) for t in (0, 1)]
        return [1 / (1 + math.exp(-x)) for x in logits]

    def persona_names(self) -> list[str]:
        """Personas with a positive share, in the catalogue's order."""
        return [name for name in PERSONAS if self.persona_shares.get(name, 0) > 0]

    def to_dict(self) -> dict[str, object]:
        """The config as JSON-ready values."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat().replace("+00:00", "Z")
            out[name] = list(value) if isinstance(value, tuple) else value
        return out
