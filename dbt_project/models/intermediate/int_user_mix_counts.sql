-- Each user's events per dimension and category of the behaviour mix (marts.ml_user_mix), before categories are
-- folded: the per-event part of the mix, kept per user so that a batch recounts only the users it touches
-- (macros/incremental_users.sql). Categories are client values, bounded by json_label in int_feature_events.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_user_mix_counts')) }}

with feature_events as (

    select * from {{ ref('int_feature_events') }}
    where is_user_action = 1
        and event_name not in (
            {%- for name in var('ml_mix_lifecycle_events') %}'{{ name }}'{{ ", " if not loop.last }}{% endfor -%}
        )
    {% if is_incremental() %}
        and user_id in (select user_id from {{ users_in_scope() }})
    {% endif %}

),

observations as (

    select user_id, 'action' as dimension, event_name as category from feature_events
    union all
    select user_id, 'feature' as dimension, feature_name as category from feature_events
    where feature_name is not null
    union all
    select user_id, 'page' as dimension, page_name as category from feature_events
    where page_name is not null
    union all
    select user_id, 'device' as dimension, coalesce(device_type, '(none)') as category from feature_events
    union all
    select
        user_id,
        'time_of_day' as dimension,
        case
            when hour_of_day < 4 then '00-03h'
            when hour_of_day < 8 then '04-07h'
            when hour_of_day < 12 then '08-11h'
            when hour_of_day < 16 then '12-15h'
            when hour_of_day < 20 then '16-19h'
            else '20-23h'
        end as category
    from feature_events
    union all
    select user_id, 'day_of_week' as dimension, case when is_weekend then 'weekend' else 'weekday' end as category
    from feature_events
    union all
    select
        user_id,
        'order_coupon' as dimension,
        case when is_coupon_order = 1 then 'with coupon' else 'without coupon' end as category
    from feature_events
    where is_order = 1

)

select user_id, dimension, category, count(*) as events, {{ staged_through() }} as staged_through
from observations
group by user_id, dimension, category
