"""The code location: what the UI shows (asset keys, groups, checks, jobs, schedules) and how dbt maps onto it."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.defs.dbt.translator import layer_of


@pytest.fixture
def defs(data_dir) -> dg.Definitions:
    from orchestration.definitions import defs as load_defs

    return load_defs()


def test_the_graph_runs_in_one_piece_from_landing_files_to_the_mart(defs):
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "raw/events",
        "raw/events_rejected",
        "raw/load_manifest",
        "raw/batches",
        "staging/stg_events",
        "intermediate/int_activity_events",
        "intermediate/int_as_of",
        "intermediate/int_experiment_exposures",
        "intermediate/int_experiment_variants",
        "intermediate/int_experiment_user_metrics",
        "intermediate/int_experiment_metric_moments",
        "intermediate/int_experiment_user_features",
        "intermediate/int_experiment_cupac",
        "intermediate/int_experiment_metric_definitions",
        "intermediate/int_funnel_definitions",
        "intermediate/int_funnel_journeys",
        "intermediate/int_funnel_step_definitions",
        "intermediate/int_funnel_step_events",
        "intermediate/int_path_definitions",
        "intermediate/int_path_nodes",
        "intermediate/int_path_steps",
        "intermediate/int_product_interactions",
        "intermediate/int_sessions",
        "intermediate/int_user_daily_activity",
        "intermediate/int_users",
        "seeds/channel_mapping",
        "seeds/engagement_weights",
        "seeds/engagement_band_thresholds",
        "seeds/experiments",
        "seeds/experiment_metrics",
        "seeds/funnels",
        "seeds/funnel_steps",
        "seeds/paths",
        "seeds/retention_brackets",
        "seeds/rfm_segments",
        "marts/audience_cart_abandonment",
        "marts/audience_funnel_dropoffs",
        "marts/audience_churn_risk",
        "marts/audience_reengagement",
        "marts/audience_segments",
        "marts/cohort_conversion",
        "marts/cohort_ltv",
        "marts/cohort_retention",
        "marts/cohort_retention_brackets",
        "marts/cohort_retention_by_dimension",
        "marts/cohort_retention_by_start",
        "marts/cohort_retention_rolling",
        "marts/daily_kpis",
        "marts/data_health_flags",
        "marts/experiment_assignments",
        "marts/experiment_decisions",
        "marts/experiment_metric_results",
        "marts/funnel_conversion",
        "marts/path_steps",
        "marts/path_top_sequences",
        "marts/path_transitions",
        "marts/experiment_results",
        "marts/feature_adoption",
        "marts/kpi_alerts",
        "marts/lifecycle",
        "marts/retention_curve",
        "marts/session_kpis",
        "marts/stickiness",
        "marts/user_segments",
        "marts/kpi_periods",
        "marts/lifecycle_periods",
        "marts/retention_curve_cells",
        "marts/retention_curve_cells_by_dimension",
        "marts/engagement_bands",
        "marts/stickiness_periods",
        "marts/cluster_feature_index",
        "intermediate/int_feature_events",
        "intermediate/int_user_mix_counts",
        "intermediate/int_user_event_flags",
        "marts/ml_user_features",
        "marts/ml_user_mix",
        "marts/ml_churn_snapshots",
        "marts/ml_product_interactions",
        "marts/cluster_profiles",
        "ml/cluster_model",
        "ml/churn_model",
        "ml/user_clusters",
        "ml/churn_scores",
        "ml/model_metrics",
        "ml/recommendation_model",
        "ml/recommendations",
        "ml/popular_products",
        "serving/serving_copy",
        "activation/audience_deliveries",
        "activation/kpi_alert_deliveries",
        "ml/experiment_factorial_effects",
        "quality/data_docs",
    }
    # dbt's source raw.events is the ingestion asset, not a separate external asset
    assert graph.get(dg.AssetKey(["raw", "events"])).is_materializable
    upstream = graph.get(dg.AssetKey(["staging", "stg_events"])).parent_keys
    # staging reads the manifest too: files of a quarantined batch stay out
    assert upstream == {dg.AssetKey(["raw", "events"]), dg.AssetKey(["raw", "load_manifest"])}
    assert {graph.get(dg.AssetKey(k.split("/"))).group_name for k in keys} == {
        "raw",
        "staging",
        "intermediate",
        "marts",
        "seeds",
        "serving",
        "activation",
        "experiments",
        "ml",
        "quality",
    }
    # dbt's source ml.user_clusters is the Python asset that writes it: clusters -> profile mart -> serving copy
    assert graph.get(dg.AssetKey(["marts", "cluster_profiles"])).parent_keys >= {dg.AssetKey(["ml", "user_clusters"])}
    assert dg.AssetKey(["ml", "churn_scores"]) in graph.get(dg.AssetKey(["serving", "serving_copy"])).parent_keys
    # recommendations: interactions and clusters -> model -> ml.recommendations -> serving copy
    assert graph.get(dg.AssetKey(["ml", "recommendation_model"])).parent_keys == {
        dg.AssetKey(["marts", "ml_product_interactions"]),
        dg.AssetKey(["ml", "user_clusters"]),
    }
    assert dg.AssetKey(["ml", "recommendations"]) in graph.get(dg.AssetKey(["serving", "serving_copy"])).parent_keys


def test_dbt_tests_are_asset_checks(defs):
    checks = {(key.asset_key.to_user_string(), key.name) for key in defs.resolve_asset_graph().asset_check_keys}
    assert ("staging/stg_events", "unique_in_new_rows_stg_events_message_id__staged_at") in checks
    assert (
        "marts/cohort_retention",
        "unique_combination_of_columns_cohort_retention_grain__cohort_start__period_number",
    ) in checks


def test_job_and_schedule(defs):
    job = defs.resolve_job_def("materialize_everything")
    # 51, the marts the dashboard reads, the KPI alert deliveries of the architecture issue, and the experiment
    # metrics' seed and two models, the funnels' and paths' three seeds, six intermediate models and five marts, and
    # the live profiles' experiment assignments and recommendations (one intermediate model, a mart, three ml assets)
    assert len(job.asset_layer.executable_asset_keys) == 92
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 3 * * *", "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    weekly = defs.resolve_schedule_def("ml_weekly_training")
    assert (weekly.cron_schedule, weekly.job_name) == ("0 4 * * 1", "ml_training")
    training = defs.resolve_job_def("ml_training")
    trained = {"ml/cluster_model", "ml/churn_model", "ml/recommendation_model"}
    rescored = {"ml/user_clusters", "marts/cluster_profiles", "ml/recommendations"}
    assert trained | rescored <= {key.to_user_string() for key in training.asset_layer.executable_asset_keys}
    assert defs.resolve_sensor_def("ml_drift_sensor").job_name == "ml_training"
    assert "marts/ml_churn_snapshots" in {key.to_user_string() for key in training.asset_layer.executable_asset_keys}
    # the landing sensor's job refreshes and publishes the live marts; scores and the follow-up marts come next
    refresh = defs.resolve_job_def("landing_refresh")
    follow_up = defs.resolve_job_def("refresh_follow_up")
    assert defs.resolve_sensor_def("landing_folder_sensor").job_name == "landing_refresh"
    assert defs.resolve_sensor_def("follow_up_after_refresh").job_name == "refresh_follow_up"
    refreshed = {key.to_user_string() for key in refresh.asset_layer.executable_asset_keys}
    followed = {key.to_user_string() for key in follow_up.asset_layer.executable_asset_keys}
    assert refreshed & followed == {"serving/serving_copy"}  # each publishes what it built
    left_out = {key.to_user_string() for key in job.asset_layer.executable_asset_keys} - refreshed - followed
    assert left_out == {
        "ml/cluster_model", "ml/churn_model", "ml/recommendation_model", "ml/experiment_factorial_effects",
        "marts/ml_churn_snapshots",
    }  # fmt: skip
    assert followed == {
        "intermediate/int_feature_events", "intermediate/int_user_mix_counts", "intermediate/int_user_event_flags",
        "marts/ml_user_features",
        "marts/ml_user_mix", "ml/user_clusters", "ml/churn_scores",
        "ml/model_metrics", "marts/cluster_profiles", "marts/audience_churn_risk", "activation/audience_deliveries",
        "marts/cohort_retention_rolling", "marts/cohort_retention_by_dimension", "marts/cohort_retention_by_start",
        "marts/cohort_retention_brackets", "intermediate/int_experiment_exposures",
        "intermediate/int_experiment_variants", "marts/experiment_results", "marts/data_health_flags",
        "intermediate/int_experiment_user_metrics", "intermediate/int_experiment_metric_moments",
        "marts/experiment_metric_results", "marts/experiment_decisions", "intermediate/int_experiment_user_features",
        "intermediate/int_experiment_cupac", "intermediate/int_experiment_metric_definitions", "serving/serving_copy",
        "quality/data_docs",
        "marts/retention_curve_cells_by_dimension",
        "marts/cluster_feature_index",
        "intermediate/int_funnel_step_events", "intermediate/int_funnel_journeys", "marts/funnel_conversion",
        "marts/audience_funnel_dropoffs",
        "intermediate/int_path_steps", "intermediate/int_path_nodes", "marts/path_steps", "marts/path_transitions",
        "marts/path_top_sequences",
        "intermediate/int_product_interactions", "marts/ml_product_interactions", "ml/recommendations",
        "ml/popular_products", "marts/experiment_assignments",
    }  # fmt: skip
    assert {"marts/daily_kpis", "marts/user_segments", "marts/cohort_retention", "staging/stg_events"} <= refreshed


def test_every_step_that_opens_duckdb_is_in_the_writer_pool(defs):
    pools = {
        name: node.definition.pool
        for name, node in defs.resolve_job_def("materialize_everything").graph.node_dict.items()
    }
    # freshness checks read only Dagster's own records, never the warehouse (the Data Docs index, which reads the GX
    # store the validations write, is in the pool with them)
    duckdb_steps = {name: pool for name, pool in pools.items() if "freshness" not in name}
    assert pools["quality__data_docs"] == "duckdb_writer"
    assert set(duckdb_steps.values()) == {"duckdb_writer"} and len(duckdb_steps) >= 7


def test_resources_follow_data_dir(defs, data_dir):
    warehouse = defs.resources["warehouse"]
    assert warehouse.warehouse_path == data_dir / "warehouse.duckdb"
    assert warehouse.ingest_settings().landing_dir == data_dir / "landing"


@pytest.mark.parametrize(
    ("props", "layer"),
    [
        ({"resource_type": "model", "fqn": ["engagement_warehouse", "marts", "cohorts", "cohort_retention"]}, "marts"),
        ({"resource_type": "model", "fqn": ["engagement_warehouse", "staging", "stg_events"]}, "staging"),
        ({"resource_type": "source", "source_name": "raw", "fqn": ["engagement_warehouse", "staging", "raw"]}, "raw"),
        ({"resource_type": "seed", "fqn": ["engagement_warehouse", "channel_mapping"]}, "seeds"),
    ],
)
def test_layer_of(props, layer):
    assert layer_of(props) == layer


def test_activation_and_experiment_assets_and_checks(defs):
    graph = defs.resolve_asset_graph()
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert {
        ("activation/audience_deliveries", "webhook_accepted_every_batch"),
        ("marts/kpi_alerts", "kpi_alerts_latest_day"),
    } <= checks
    deliveries = graph.get(dg.AssetKey(["activation", "audience_deliveries"]))
    assert {key.to_user_string() for key in deliveries.parent_keys} == {
        "marts/audience_cart_abandonment",
        "marts/audience_churn_risk",
        "marts/audience_funnel_dropoffs",
        "marts/audience_reengagement",
        "marts/audience_segments",
    }
    factorial = graph.get(dg.AssetKey(["ml", "experiment_factorial_effects"]))
    assert {key.to_user_string() for key in factorial.parent_keys} == {"intermediate/int_experiment_variants"}
    churn = graph.get(dg.AssetKey(["marts", "audience_churn_risk"]))
    assert dg.AssetKey(["ml", "churn_scores"]) in churn.parent_keys


def test_great_expectations_gates_are_blocking_checks(defs):
    graph = defs.resolve_asset_graph()
    gates = [
        key
        for key in graph.asset_check_keys
        if key.name.endswith("_expectations") or key.name in ("batch_gate", "files_reconcile")
    ]
    assert all(graph.get_check_spec(key).blocking for key in gates)
    assert {(key.asset_key.to_user_string(), key.name) for key in gates} == {
        ("raw/events", "batch_gate"),
        ("raw/events", "raw_events_expectations"),
        ("raw/load_manifest", "files_reconcile"),
        ("staging/stg_events", "stg_events_expectations"),
        ("marts/cohort_retention", "cohort_retention_expectations"),
        ("marts/daily_kpis", "daily_kpis_expectations"),
    }


def test_only_charted_marts_and_their_descendants_wait_for_dbt_to_exit():
    from orchestration.defs.dbt.assets import charted_and_downstream, dbt_models

    waits = {key.to_user_string() for key in charted_and_downstream(dbt_models)}

    assert {"marts/daily_kpis", "marts/kpi_alerts", "marts/cohort_retention", "marts/retention_curve"} <= waits
    assert not waits & {"staging/stg_events", "intermediate/int_users", "marts/user_segments", "marts/stickiness"}


def test_every_blocking_suite_stands_between_the_models_and_the_publish(defs):
    from dagster._core.execution.api import create_execution_plan

    plan = create_execution_plan(defs.resolve_job_def("landing_refresh"))
    publish_waits_for = set(plan.get_step_by_key("serving__serving_copy").get_execution_dependency_keys())
    # nothing runs after the publish: the next refresh waits for this one to end (freshness has its own sensor)
    assert not [step.key for step in plan.steps if "freshness" in step.key or "data_docs" in step.key]
    assert "freshness" in " ".join(step.key for step in create_execution_plan(defs.resolve_job_def(
        "materialize_everything")).steps)  # fmt: skip

    assert {
        "staging__stg_events_stg_events_expectations",
        "marts__cohort_retention_cohort_retention_expectations",
        "marts__daily_kpis_daily_kpis_expectations",
    } <= publish_waits_for
