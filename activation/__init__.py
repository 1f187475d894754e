"""Activation: audience entries and KPI alerts out of the warehouse, as files and a signed, idempotent webhook.

Plain Python (no dagster import); orchestration/defs/activation calls it.
"""

from activation.delivery import (
    ActivationReport,
    ActivationSettings,
    AudienceReport,
    audience_tables,
    deliver_alerts,
    deliver_audiences,
    ensure_log,
)
from activation.webhook import SIGNATURE_HEADER, WebhookClient, sign, verify_signature

__all__ = [
    "SIGNATURE_HEADER",
    "ActivationReport",
    "ActivationSettings",
    "AudienceReport",
    "WebhookClient",
    "audience_tables",
    "deliver_alerts",
    "deliver_audiences",
    "ensure_log",
    "sign",
    "verify_signature",
]
