-- One row per user: first and last activity, first touch, latest traits, signup and first order.
-- Incremental per user: see macros/incremental_users.sql.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_users')) }}

with users_in_scope as (

    {% if is_incremental() %}
    select user_id from {{ users_in_scope() }}
    {% else %}
    select distinct user_id from {{ ref('int_activity_events') }}
    {% endif %}

),

-- first and last activity and the milestones in one pass over the activity events
activity_bounds as (

    select
        user_id,
        min(event_at) as first_active_at,
        max(event_at) as last_active_at,
        min(case when event_name = 'signed_up' then event_at end) as signed_up_at,
        min(case when event_name = 'order_completed' then event_at end) as first_order_at
    from {{ ref('int_activity_events') }}
    where user_id in (select user_id from users_in_scope)
    group by user_id

),

first_event_ids as (

    -- the id first, then its context: ranking whole rows would carry every event's context through the sort
    select user_id, {{ first_by('message_id', ['event_at', 'message_id']) }} as message_id
    from {{ ref('stg_events') }}
    where event_at <= (select as_of from {{ ref('int_as_of') }})
      and user_id in (select user_id from users_in_scope)
    group by user_id

),

first_events as (

    select first_event_ids.user_id, events.context
    from first_event_ids
    inner join {{ ref('stg_events') }} as events on first_event_ids.message_id = events.message_id

),

first_touch as (

    select
        user_id,
        -- client text: bounded labels ('(invalid)' when an object or longer than var label_max_length)
        lower({{ json_label('context', 'campaign.source') }}) as first_touch_source,
        lower({{ json_label('context', 'campaign.medium') }}) as first_touch_medium,
        {{ json_label('context', 'campaign.name') }} as first_touch_campaign
    from first_events

),

latest_traits as (

    select user_id, traits
    from (
        select
            user_id,
            traits,
            row_number() over (partition by user_id order by event_at desc, message_id desc) as identify_rank
        from {{ ref('stg_events') }}
        where event_type = 'identify' and traits is not null
          and event_at <= (select as_of from {{ ref('int_as_of') }})
          and user_id in (select user_id from users_in_scope)
    ) as ranked_identifies
    where identify_rank = 1

)

select
    activity_bounds.user_id,
    activity_bounds.first_active_at,
    activity_bounds.last_active_at,
    cast({{ to_reporting_time('activity_bounds.first_active_at') }} as date) as first_active_date,
    activity_bounds.signed_up_at,
    activity_bounds.first_order_at,
    first_touch.first_touch_source,
    first_touch.first_touch_medium,
    first_touch.first_touch_campaign,
    case
        when first_touch.first_touch_medium is null and first_touch.first_touch_source is null then 'direct'
        else coalesce(channel_mapping.channel, 'other')
    end as first_touch_channel,
    -- traits are client values and split cohorts (cohort_retention_by_dimension): bounded labels, see json_label
    coalesce({{ json_label('latest_traits.traits', 'country') }}, 'unknown') as country,
    coalesce({{ json_label('latest_traits.traits', 'plan') }}, 'unknown') as plan,
    {{ staged_through() }} as staged_through
from activity_bounds
left join first_touch on activity_bounds.user_id = first_touch.user_id
left join {{ ref('channel_mapping') }} as channel_mapping
    on first_touch.first_touch_medium = channel_mapping.utm_medium
left join latest_traits on activity_bounds.user_id = latest_traits.user_id
