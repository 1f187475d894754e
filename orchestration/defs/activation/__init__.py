"""Audience deliveries (files and webhook) and the KPI alert check."""
