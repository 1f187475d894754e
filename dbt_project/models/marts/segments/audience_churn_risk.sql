-- Churn risk: users whose churn_probability (ml.churn_scores, written by the churn model) is at least var
-- churn_risk_threshold. Scores are a current state, so entries and exits are kept across runs (incremental): a
-- user enters at the scoring as_of when first above the threshold and exits at the first scoring below it.
{{ config(materialized='incremental', unique_key=['audience', 'user_id', 'entered_at']) }}

{{ state_audience(
    members="select 'churn_risk' as audience, user_id, churn_probability, risk_tier, model_version
             from " ~ source('ml', 'churn_scores') ~ "
             where churn_probability >= " ~ var('churn_risk_threshold'),
    observed_at="select max(as_of) as observed_at from " ~ source('ml', 'churn_scores'),
    detail_columns=['churn_probability', 'risk_tier', 'model_version'],
) }}
