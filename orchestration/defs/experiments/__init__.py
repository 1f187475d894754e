"""Factorial experiment analysis (ml/experiments.py) as an asset, tracked in MLflow."""
