-- Point-in-time training rows for the churn model: features of every user active in the churn window before each
-- past cutoff, computed only from events at or before that cutoff, and whether the user was active again in the
-- following churn window. Cutoffs are midnights (UTC) counted back from as_of, the latest one churn_window_days
-- before it so every label is observed; a later event never changes a cutoff's features, only its label.
with as_of_point as (

    select as_of, cast(as_of as date) as as_of_day from {{ ref('int_as_of') }}

),

cutoffs as (

    select
        snapshot_index.n as snapshot_number,
        cast(
            {{ dbt.dateadd(
                'day',
                '-1 * (' ~ var('churn_window_days') ~ ' + ' ~ var('churn_snapshot_spacing_days') ~ ' * snapshot_index.n)',
                'as_of_point.as_of_day') }}
            as timestamp
        ) as cutoff_at
    from ({{ integer_series(var('churn_snapshot_count')) }}) as snapshot_index
    cross join as_of_point

),

features as (

    {{ ml_user_features('cutoffs') }}

),

returns as (

    -- activity in the churn window after each cutoff (label only, never a feature)
    select cutoffs.cutoff_at, feature_events.user_id, count(*) as events_after_cutoff
    from {{ ref('int_feature_events') }} as feature_events
    inner join cutoffs
        on feature_events.event_at > cutoffs.cutoff_at
        and feature_events.event_at <= {{ dbt.dateadd('day', var('churn_window_days'), 'cutoffs.cutoff_at') }}
    group by cutoffs.cutoff_at, feature_events.user_id

)

select
    cutoffs.snapshot_number,
    as_of_point.as_of,
    features.*,
    returns.user_id is null as is_churned
from features
inner join cutoffs on features.cutoff_at = cutoffs.cutoff_at
cross join as_of_point
left join returns on features.user_id = returns.user_id and features.cutoff_at = returns.cutoff_at
where features.recency_days < {{ var('churn_window_days') }}
