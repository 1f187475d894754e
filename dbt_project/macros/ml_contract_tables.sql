{#- The ml.* tables are written by Python assets; create them empty (with their contract columns) when missing so
    that models reading them build on a warehouse where no model has been trained yet. -#}
{% macro create_ml_contract_tables() %}
  {% if execute %}
    create schema if not exists ml;
    create table if not exists ml.user_clusters (
        user_id varchar, cluster_id integer, cluster_name varchar, confidence double, events bigint,
        is_low_data boolean, model_version varchar
    );
    create table if not exists ml.churn_scores (
        user_id varchar, churn_probability double, risk_tier varchar, as_of timestamp, model_version varchar
    );
    create table if not exists ml.model_metrics (
        model_name varchar, model_version varchar, is_champion boolean, trained_at timestamp, as_of timestamp,
        metric varchar, value double, run_id varchar
    );
  {% endif %}
{% endmacro %}
