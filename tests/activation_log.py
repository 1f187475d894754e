"""A hand-written event log for the audience, alert and delivery tests, with what each audience must hold."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import event

AS_OF = datetime(2026, 2, 20, 23, 59, 59)  # the latest event: the last second of its day, so that day is complete
SPIKE_DAY = datetime(2026, 2, 20)  # the latest day: the alert check fires on it
BASE_DAY = datetime(2026, 1, 1)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Log:
    """Builds an event list with unique message ids."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, user: str, name: str, moment: datetime, **properties: object) -> None:
        self.rows.append(
            event(f"a{len(self.rows):05d}", user, event=name, timestamp=iso(moment), received_at=iso(moment),
                  properties=properties or None)
        )  # fmt: skip


def activity_log() -> list[dict]:
    log = Log()
    # Background: users b0..b7 make a steady DAU of 5-7 every day from Jan 1 to Feb 20 (b0-b4 daily, b5/b6 on
    # alternate days), so KPIs have a trailing band.
    day = BASE_DAY
    while day <= AS_OF:
        n = 5 + (day - BASE_DAY).days % 3
        for i in range(n):
            log.add(f"b{i}", "Product Viewed", day + timedelta(hours=9, minutes=i))
        day += timedelta(days=1)
    # The spike: 40 one-day visitors on the last day.
    for i in range(40):
        log.add(f"spike{i:02d}", "Page Viewed", SPIKE_DAY + timedelta(hours=12, minutes=i))

    # Re-engagement: r1 active Jan 1 and Jan 20 (gap of 19 days: enters Jan 15 10:00, exits Jan 20), then Jan 22
    # and never again (enters Feb 5 10:00, still a member). r2 active every 10 days: never 14 days away.
    for moment in (datetime(2026, 1, 1, 10), datetime(2026, 1, 20, 10), datetime(2026, 1, 22, 10)):
        log.add("r1", "Feature Used", moment)
    for k in range(6):
        log.add("r2", "Feature Used", datetime(2026, 1, 1, 10) + timedelta(days=10 * k))
    log.add("r2", "Feature Used", datetime(2026, 2, 18, 10))

    # Cart abandonment (24 h): k1 adds twice and orders the same day (no entry). k2 adds Feb 4 10:00 and orders
    # Feb 6 09:00 (enters Feb 5 10:00, exits Feb 6 09:00), adds again Feb 10 10:00 with no order (enters Feb 11
    # 10:00, open). k3 adds 2 hours before as_of (too early to tell).
    log.add("k1", "Product Added", datetime(2026, 2, 3, 10))
    log.add("k1", "Product Added", datetime(2026, 2, 3, 12))
    log.add("k1", "Order Completed", datetime(2026, 2, 3, 20), revenue=20)
    log.add("k2", "Product Added", datetime(2026, 2, 4, 10))
    log.add("k2", "Product Added", datetime(2026, 2, 4, 11))
    log.add("k2", "Order Completed", datetime(2026, 2, 6, 9), revenue=30)
    log.add("k2", "Product Added", datetime(2026, 2, 10, 10))
    log.add("k3", "Product Added", AS_OF - timedelta(hours=2))

    # Segments: s1 active only on Dec 1: lapsed.
    log.add("s1", "Product Viewed", datetime(2025, 12, 1, 10))
    log.add("b0", "Product Viewed", AS_OF)  # pins as_of
    return log.rows


REENGAGEMENT = {
    ("r1", datetime(2026, 1, 15, 10), datetime(2026, 1, 20, 10)),
    ("r1", datetime(2026, 2, 5, 10), None),
}
CART_ABANDONMENT = {
    ("k2", datetime(2026, 2, 5, 10), datetime(2026, 2, 6, 9)),
    ("k2", datetime(2026, 2, 11, 10), None),
}
