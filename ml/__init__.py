"""Plain-Python machine learning (features, clustering, churn, drift, MLflow helpers); never imports dagster."""
