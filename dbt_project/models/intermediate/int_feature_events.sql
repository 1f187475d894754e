-- Activity events with what each one adds to a user's behavioural features. Every column depends only on the
-- event and the user's earlier events (never later ones), so features cut at any point in time stay unchanged
-- when later events arrive. Incremental per user (macros/incremental_users.sql): the ML features, the behaviour
-- mix and the churn snapshots all read it, so the per-event work (the previous event, the labels read from
-- JSON) is done once per event, not once per reader and refresh.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_feature_events')) }}

with activity_events as (

    select * from {{ ref('int_activity_events') }}
    {% if is_incremental() %}
    where user_id in (select user_id from {{ users_in_scope() }})
    {% endif %}

),

with_previous as (

    select
        user_id,
        message_id,
        event_name,
        event_at,
        event_date,
        revenue,
        properties,
        context,
        event_at_local,
        lag(event_at) over (partition by user_id order by event_at, message_id) as previous_event_at
    from activity_events

),

measured as (

    select
        *,
        {{ dbt.datediff('previous_event_at', 'event_at', 'second') }} as seconds_since_previous
    from with_previous

)

select
    user_id,
    message_id,
    event_name,
    event_at,
    event_date,
    case
        when previous_event_at is null or seconds_since_previous > {{ var('session_timeout_minutes') * 60 }} then 1
        else 0
    end as is_session_start,
    -- time spent inside a session since the previous event (0 when this event starts a session)
    case
        when previous_event_at is null or seconds_since_previous > {{ var('session_timeout_minutes') * 60 }} then 0
        else seconds_since_previous
    end as in_session_seconds,
    -- what counts in the mix of actions (the *_share features): not what the product shows the user (var)
    case
        when event_name in (
            {%- for name in var('ml_not_user_actions') %}'{{ name }}'{{ ", " if not loop.last }}{% endfor -%}
        ) then 0
        else 1
    end as is_user_action,
    case when event_name = 'order_completed' then 1 else 0 end as is_order,
    case when event_name = 'order_completed' then cast(coalesce(revenue, 0) as double) else 0 end as order_revenue,
    case
        when event_name = 'order_completed' and {{ json_text('properties', 'coupon') }} is not null then 1 else 0
    end as is_coupon_order,
    case when event_name = 'feature_used' then 1 else 0 end as is_feature_use,
    case when event_name in ('page_viewed', 'screen_viewed') then 1 else 0 end as is_page_view,
    case when event_name = 'product_viewed' then 1 else 0 end as is_product_view,
    case when event_name = 'product_added' then 1 else 0 end as is_cart_add,
    case when event_name = 'search_performed' then 1 else 0 end as is_search,
    -- what the behaviour mix (marts.ml_user_mix) counts: client values, bounded by json_label and folded there
    {{ json_label('context', 'device.type') }} as device_type,
    case when event_name in ('page_viewed', 'screen_viewed') then {{ json_label('properties', 'name') }} end as page_name,
    case when event_name = 'feature_used' then {{ json_label('properties', 'feature') }} end as feature_name,
    cast(extract(hour from event_at_local) as integer) as hour_of_day,
    {{ iso_weekday('event_at_local') }} >= 6 as is_weekend,
    {{ staged_through() }} as staged_through
from measured
