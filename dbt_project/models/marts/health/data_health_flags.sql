-- One row per kind of flagged client value, always (a count of 0 when there is none): how many, how many users,
-- and one example. Client values (events, properties, variant names, traits) can make a row flagged or left out,
-- never a model, a test or a run fail; this mart is where what was flagged is counted. See data_health_flags.yml.
{%- set fold = "'(other unplanned)'" %}
with results as (

    select * from {{ ref('experiment_results') }}

),

exposures as (

    select * from {{ ref('int_experiment_exposures') }}

),

users as (

    select * from {{ ref('int_users') }}

),

-- every event-level flag, from the per-user counts
event_flags as (

    select
        {%- for flag in event_flag_names() %}
        sum({{ flag }}) as {{ flag }},
        count(case when {{ flag }} > 0 then 1 end) as {{ flag }}_users,
        min({{ flag }}_example) as {{ flag }}_example{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('int_user_event_flags') }}

),

-- rows of raw.events that name neither a user nor an anonymous id: staging leaves them out
events_without_user as (

    select count(*) as events, min(message_id) as example
    from {{ source('raw', 'events') }}
    where nullif(trim(user_id), '') is null and nullif(trim(anonymous_id), '') is null

),

-- feature names folded into marts.feature_adoption's '(other)' (the same ranks as that model)
feature_uses as (

    select user_id, {{ json_label('properties', 'feature') }} as feature
    from {{ ref('int_activity_events') }}
    where event_name = 'feature_used'

),

folded_features as (

    select feature_ranks.label, feature_uses.user_id
    from ({{ label_ranks('feature_uses', 'feature', 'user_id') }}) as feature_ranks
    inner join feature_uses on feature_ranks.label = feature_uses.feature
    where feature_ranks.is_folded

),

-- trait values folded into marts.cohort_retention_by_dimension's '(other)' (the same ranks as macro cohort_retention)
folded_dimension_values as (

    {% for dimension in retention_split_dimensions() %}
    select {{ dbt.concat(["'" ~ dimension ~ ": '", 'dimension_ranks.label']) }} as label, users.user_id
    from ({{ label_ranks(ref('int_users'), dimension, 'user_id', reserved=['(invalid)', 'unknown']) }}) as dimension_ranks
    inner join users on dimension_ranks.label = users.{{ dimension }}
    where dimension_ranks.is_folded
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

unplanned_experiments as (

    select
        count(distinct exposures.experiment_id) as experiments,
        count(*) as users,
        min(exposures.experiment_id) as example
    from exposures
    left join {{ ref('experiments') }} as seed on exposures.experiment_id = seed.experiment_id
    where seed.experiment_id is null

),

kept_unplanned_experiments as (

    select count(distinct experiment_id) as experiments
    from results
    where not is_planned_experiment and experiment_id <> {{ fold }}

),

flag_rows as (

select
    'unplanned_variant' as flag,
    coalesce(sum(variant_names), 0) as flagged,
    coalesce(sum(users), 0) as users,
    coalesce(
        min(case when variant <> {{ fold }} then {{ dbt.concat(['experiment_id', "': '", 'variant']) }} end),
        min({{ dbt.concat(['experiment_id', "': '", 'variant']) }})
    ) as example,
    'marts.experiment_results (is_planned_variant false)' as flagged_in,
    'Variant names of an experiment that its seed row does not plan: reported with counts, not compared' as description
from results
where not is_planned_variant and experiment_id <> {{ fold }}

union all

select
    'unplanned_experiment',
    unplanned_experiments.experiments,
    unplanned_experiments.users,
    unplanned_experiments.example,
    'marts.experiment_results (is_planned_experiment false)',
    'Experiment ids seen in experiment_viewed events but not in seed experiments (analysed with the defaults)'
from unplanned_experiments

union all

select
    'experiments_folded',
    unplanned_experiments.experiments - kept_unplanned_experiments.experiments,
    (select coalesce(sum(users), 0) from results where experiment_id = {{ fold }}),
    (select min(experiment_id) from exposures
     where experiment_id not in (select experiment_id from results)),
    'marts.experiment_results (experiment ''(other unplanned)'')',
    'Unplanned experiments beyond var experiment_max_unplanned_experiments, folded into one row'
from unplanned_experiments
cross join kept_unplanned_experiments

union all

select
    'variants_folded',
    coalesce(sum(variant_names), 0),
    coalesce(sum(users), 0),
    min(experiment_id),
    'marts.experiment_results (variant ''(other unplanned)'')',
    'Variant names beyond var experiment_max_variants per experiment, folded into one row per experiment'
from results
where variant = {{ fold }} and experiment_id <> {{ fold }}

union all

select
    'experiment_config_error',
    count(distinct experiment_id),
    coalesce(sum(users), 0),
    min({{ dbt.concat(['experiment_id', "': '", 'config_error']) }}),
    'marts.experiment_results (config_error)',
    'Experiments whose seed row is malformed (planned_split, factors) or whose statistics could not be computed'
from results
where config_error is not null

union all

select
    'invalid_experiment_name',
    count(*),
    count(distinct user_id),
    min(user_id),
    'intermediate.int_experiment_exposures (''(invalid)'')',
    'Exposures whose experiment_id or variant is an object, an array or longer than var experiment_max_name_length'
from exposures
where experiment_id = '(invalid)' or variant = '(invalid)'

union all

select
    'experiment_revenue_capped',
    count(*),
    count(distinct user_id),
    min({{ dbt.concat(['experiment_id', "': '", 'user_id']) }}),
    'intermediate.int_experiment_exposures (is_revenue_capped)',
    'Exposed users whose window revenue is beyond +- var experiment_max_user_revenue, capped there'
from exposures
where is_revenue_capped

union all

select
    'experiment_view_incomplete',
    experiment_view_incomplete,
    experiment_view_incomplete_users,
    experiment_view_incomplete_example,
    'intermediate.int_experiment_exposures (left out)',
    'experiment_viewed events without properties.experiment_id or properties.variant: not exposures'
from event_flags

union all

select
    'revenue_unreadable',
    revenue_unreadable,
    revenue_unreadable_users,
    revenue_unreadable_example,
    'staging.stg_events (revenue null)',
    'Events whose properties.revenue is not a number that fits decimal(18, 4): counted as no revenue'
from event_flags

union all

select
    'unknown_event_type',
    unknown_event_type,
    unknown_event_type_users,
    unknown_event_type_example,
    'staging.stg_events (event_type)',
    'Events of a call type other than track, page, screen, identify (ingestion rejects these; counted if any land)'
from event_flags

union all

select
    'invalid_feature',
    invalid_feature,
    invalid_feature_users,
    invalid_feature_example,
    'marts.feature_adoption (feature ''(invalid)'')',
    'feature_used events whose properties.feature is an object, an array or longer than var label_max_length'
from event_flags

union all

select
    'invalid_trait',
    count(*),
    count(*),
    min(user_id),
    'intermediate.int_users (country, plan ''(invalid)'')',
    'Users whose latest traits.country or traits.plan is an object, an array or longer than var label_max_length'
from users
where country = '(invalid)' or plan = '(invalid)'

union all

select
    'invalid_campaign',
    count(*),
    count(*),
    min(user_id),
    'intermediate.int_users (first_touch_* ''(invalid)'')',
    'Users whose first-touch utm source, medium or campaign is an object, an array or longer than var label_max_length'
from users
where first_touch_source = '(invalid)' or first_touch_medium = '(invalid)' or first_touch_campaign = '(invalid)'

union all

select
    'features_folded',
    count(distinct label),
    count(distinct user_id),
    min(label),
    'marts.feature_adoption (feature ''(other)'')',
    'Feature names beyond the var label_max_values with the most users, folded into one ''(other)'' row per week'
from folded_features

union all

select
    'dimension_values_folded',
    count(distinct label),
    count(distinct user_id),
    min(label),
    'marts.cohort_retention_by_dimension (dimension_value ''(other)'')',
    'Trait or channel values beyond the var label_max_values with the most users, folded into ''(other)'''
from folded_dimension_values

union all

select
    'long_id',
    long_id,
    long_id_users,
    long_id_example,
    'staging.stg_events (message_id, known_user_id, anonymous_id ''(long id) <md5>'')',
    'Events whose message_id, user_id or anonymous_id is longer than var id_max_length: kept as its md5'
from event_flags

union all

select
    'unnamed_event',
    unnamed_event,
    unnamed_event_users,
    unnamed_event_example,
    'staging.stg_events (event_name ''(invalid)'')',
    'Events with nothing left of their name (only another path than ingestion can write them): kept as activity'
from event_flags

union all

select
    'event_without_user',
    events_without_user.events,
    0,
    events_without_user.example,
    'raw.events (left out of staging.stg_events)',
    'Rows of raw.events with neither user_id nor anonymous_id (only another path than ingestion writes them)'
from events_without_user

)

-- examples are client text: at most 200 characters
select
    flag,
    flagged,
    users,
    substring(example, 1, 200) as example,
    flagged_in,
    description
from flag_rows
