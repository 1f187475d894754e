"""Users: persona, acquisition channel, country, device, signup time, activity rate and churn date."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from demo_events.config import (
    CAMPAIGNS,
    CHANNELS,
    COUNTRIES,
    DAY_MS,
    DEVICES,
    HOUR_MS,
    HOUR_PROFILES,
    OS_BY_DEVICE,
    PERSONAS,
    WEEKDAY_WEIGHTS,
    GeneratorConfig,
)
from demo_events.sampling import categorical, exact_labels, grouped_categorical


@dataclass
class Users:
    """One row per user; codes index `config.persona_names()`, CHANNELS, COUNTRIES, DEVICES, ..."""

    persona: np.ndarray  # int8
    channel: np.ndarray  # int8
    campaign: np.ndarray  # int8, which of the channel's CAMPAIGNS
    country: np.ndarray  # int8
    device: np.ndarray  # int8
    os: np.ndarray  # int8, index into OPERATING_SYSTEMS
    plan: np.ndarray  # int8, index into PLANS
    signup_ms: np.ndarray  # int64
    churn_ms: np.ndarray  # int64
    activity_rate: np.ndarray  # float64, active days per week before any decay
    lifetime_days: np.ndarray  # float64, mean of the exponential time to churn

    def __len__(self) -> int:
        return len(self.signup_ms)

    def take(self, index: np.ndarray | slice) -> Users:
        """The users at `index`."""
        return Users(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def horizon_ms(self, end_ms: int) -> np.ndarray:
        """Time of the last possible activity: churn or the end of the data, whichever is first."""
        return np.minimum(self.churn_ms, end_ms)


def persona_table(config: GeneratorConfig, attribute: str) -> np.ndarray:
    """A persona attribute as an array indexed by persona code."""
    return np.array([getattr(PERSONAS[name], attribute) for name in config.persona_names()])


def persona_hours(config: GeneratorConfig) -> np.ndarray:
    """Weights of the 24 UTC hours for each persona code (rows) when a signup or session starts."""
    return np.array([HOUR_PROFILES[PERSONAS[name].hours] for name in config.persona_names()])


def signup_days(config: GeneratorConfig) -> tuple[int, np.ndarray]:
    """First signup day (days since the epoch) and the relative signup weight of every day up to the end."""
    first = config.start_ms // DAY_MS
    days = (config.end_ms - 1) // DAY_MS - first + 1
    d = np.arange(days)
    trend = config.signup_growth ** (d / max(days - 1, 1))
    weekday = np.asarray(WEEKDAY_WEIGHTS)[(first + d + 3) % 7]  # 1970-01-01 was a Thursday
    return first, trend * weekday


def make_users(config: GeneratorConfig, n: int, rng: np.random.Generator) -> Users:
    """Draw `n` users; persona shares are exact up to rounding, everything else is random."""
    names = config.persona_names()
    persona = exact_labels(rng, [config.persona_shares[name] for name in names], n)
    channel = categorical(rng, [share for share, _ in CHANNELS.values()], n).astype(np.int8)
    campaign = rng.integers(0, len(next(iter(CAMPAIGNS.values()))), n).astype(np.int8)
    country = categorical(rng, [share for share, _ in COUNTRIES.values()], n).astype(np.int8)
    device = grouped_categorical(rng, persona, persona_table(config, "device_weights")).astype(np.int8)
    os = grouped_categorical(rng, device, np.array([OS_BY_DEVICE[d] for d in DEVICES])).astype(np.int8)
    plan = grouped_categorical(rng, persona, persona_table(config, "plan_weights")).astype(np.int8)

    first_day, weights = signup_days(config)
    day = first_day + categorical(rng, weights, n).astype(np.int64)
    hour = grouped_categorical(rng, persona, persona_hours(config)).astype(np.int64)
    signup = day * DAY_MS + hour * HOUR_MS + rng.integers(0, HOUR_MS, n)
    # Leave every signup an hour before the end so that its first session fits.
    signup = np.where(signup > config.end_ms - HOUR_MS, signup - HOUR_MS, signup)

    base_rate = persona_table(config, "active_days_per_week")[persona]
    sigma = config.activity_sigma
    noise = np.exp(rng.normal(-(sigma**2) / 2, sigma, n))  # mean 1
    rate = base_rate * noise
    channel_mult = np.array([mult for _, mult in CHANNELS.values()])[channel]
    country_mult = np.array([mult for _, mult in COUNTRIES.values()])[country]
    # Engagement drives retention: expected lifetime scales with the user's rate relative to the persona's.
    lifetime = persona_table(config, "lifetime_days")[persona] * noise * channel_mult * country_mult
    # One hour of grace so the signup session always completes before churn.
    churn = signup + HOUR_MS + (rng.exponential(1.0, n) * lifetime * DAY_MS).astype(np.int64)

    return Users(
        persona=persona.astype(np.int8),
        channel=channel,
        campaign=campaign,
        country=country,
        device=device,
        os=os,
        plan=plan,
        signup_ms=signup,
        churn_ms=churn,
        activity_rate=rate,
        lifetime_days=lifetime,
    )
