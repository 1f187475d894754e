-- One row per experiment with metrics in seed experiment_metrics: the decision marts.experiment_metric_results
-- reached (ship / keep running / stop), in words, beside the rules it follows and what it rests on.
with metric_results as (

    select * from {{ ref('experiment_metric_results') }}

),

-- every metric counts the same exposed users; the largest count is the experiment's
metric_users as (

    select experiment_id, metric, sum(users) as users
    from metric_results
    group by experiment_id, metric

),

experiment_users as (

    select experiment_id, max(users) as users
    from metric_users
    group by experiment_id

),

-- the decision columns are the same on every row of an experiment
decided as (

    select
        experiment_id,
        max(decision) as decision,
        max(decision_variant) as decision_variant,
        max(decision_reason) as decision_reason,
        max(decision_rules) as decision_rules,
        max(correction) as correction,
        max(target_lift) as target_lift,
        max(exposure_days) as exposure_days,
        max(config_error) as config_error,
        count(distinct case when role = 'primary' then metric end) as primary_metrics,
        count(distinct case when role = 'guardrail' then metric end) as guardrail_metrics,
        sum(case when guardrail_status = 'breached' then 1 else 0 end) as guardrails_breached,
        sum(case when guardrail_status = 'not yet known' then 1 else 0 end) as guardrails_not_yet_known
    from metric_results
    group by experiment_id

)

select
    decided.experiment_id,
    decided.decision,
    decided.decision_variant,
    decided.decision_reason,
    decided.decision_rules,
    experiment_users.users,
    decided.exposure_days,
    decided.correction,
    decided.target_lift,
    decided.primary_metrics,
    decided.guardrail_metrics,
    decided.guardrails_breached,
    decided.guardrails_not_yet_known,
    decided.config_error
from decided
inner join experiment_users on decided.experiment_id = experiment_users.experiment_id
