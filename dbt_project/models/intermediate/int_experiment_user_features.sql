-- One row per experiment and exposed user: the churn model's behavioural features (macro ml_user_features) as of
-- the user's exposure, from events strictly before it, so that no feature can carry the treatment's effect. They
-- are CUPAC's covariates (int_experiment_cupac). A user with no event before the exposure has has_history false
-- and every feature 0.
with exposures as (

    -- the experiments read on metrics only (bounded by int_experiment_variants): a client's flood of experiment ids
    -- must not multiply each user's history by the number of ids it sent
    select experiment_id, user_id, exposed_at
    from {{ ref('int_experiment_exposures') }}
    where experiment_id in (select experiment_id from {{ ref('int_experiment_metric_definitions') }})

),

exposure_cutoffs as (

    select distinct user_id, exposed_at as cutoff_at from exposures

),

features as (

    {{ ml_user_features('exposure_cutoffs', per_user=true) }}

)

select
    exposures.experiment_id,
    exposures.user_id,
    exposures.exposed_at,
    features.user_id is not null as has_history,
    {%- for name in ml_feature_names() %}
    cast(coalesce(features.{{ name }}, 0) as double) as {{ name }}{{ ',' if not loop.last }}
    {%- endfor %}
from exposures
left join features on exposures.user_id = features.user_id and exposures.exposed_at = features.cutoff_at
