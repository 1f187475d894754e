"""ML assets: clustering and churn trained and tracked in MLflow, champions scored into ml.* tables."""
