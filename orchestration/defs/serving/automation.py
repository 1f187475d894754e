"""Freshness of what the serving copy publishes: a check on every mart and on the copy, and their sensor."""

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from orchestration.defs.serving.assets import MART_KEYS, SERVING_COPY
from settings import load as load_settings

# the checks that build_last_update_freshness_checks makes: one of this name on each asset
FRESHNESS_CHECK_KEYS = [dg.AssetCheckKey(key, "freshness_check") for key in (*MART_KEYS, SERVING_COPY)]


def freshness_checks(bound: timedelta) -> Sequence[dg.AssetChecksDefinition]:
    """A freshness check on every mart and on the serving copy: it fails when one is older than `bound`."""
    return dg.build_last_update_freshness_checks(assets=[*MART_KEYS, SERVING_COPY], lower_bound_delta=bound)


@dg.definitions
def freshness() -> dg.Definitions:
    """The checks and their sensor. The bound (FRESHNESS_BOUND_MINUTES) is part of each check's definition, so it
    is read when the code location loads, not through a resource at run time."""
    bound = timedelta(minutes=load_settings().serving.freshness_bound_minutes)
    checks = freshness_checks(bound)
    sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=checks, default_status=dg.DefaultSensorStatus.RUNNING
    )
    return dg.Definitions(asset_checks=checks, sensors=[sensor])
