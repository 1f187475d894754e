{#- Behavioural features of every user at each cutoff, from activity events at or before that cutoff only.
    `cutoffs` is a relation or subquery with one column, cutoff_at (UTC timestamp). The ML feature mart calls it
    with as_of, the churn snapshots with several past cutoffs, so both models see the same definitions.
    per_user=true: `cutoffs` has user_id and cutoff_at, each user's own cutoff (an experiment exposure), and only
    events strictly before it count (the exposure's own event is not a feature of the user before it). -#}
{% macro ml_user_features(cutoffs, per_user=false) -%}
with cutoffs as (

    select {{ 'user_id, ' if per_user }}cutoff_at from {{ cutoffs }}

),

events_before_cutoff as (

    select
        cutoffs.cutoff_at,
        feature_events.*,
        {{ dbt.datediff('feature_events.event_at', 'cutoffs.cutoff_at', 'second') }} / 86400.0e0 as days_before
    from {{ ref('int_feature_events') }} as feature_events
    {%- if per_user %}
    inner join cutoffs
        on feature_events.user_id = cutoffs.user_id and feature_events.event_at < cutoffs.cutoff_at
    {%- else %}
    inner join cutoffs on feature_events.event_at <= cutoffs.cutoff_at
    {%- endif %}

),

per_user as (

    select
        user_id,
        cutoff_at,
        min(event_at) as first_active_at,
        max(event_at) as last_active_at,
        count(*) as events_total,
        count(distinct event_date) as active_days_total,
        {%- for days in [7, 28, 90] %}
        count(distinct case when days_before < {{ days }} then event_date end) as active_days_{{ days }},
        sum(case when days_before < {{ days }} then is_session_start else 0 end) as sessions_{{ days }},
        sum(case when days_before < {{ days }} then 1 else 0 end) as events_{{ days }},
        {%- endfor %}
        sum(is_session_start) as sessions_total,
        sum(in_session_seconds) as session_seconds_total,
        sum(is_order) as orders_total,
        sum(case when days_before < 90 then is_order else 0 end) as orders_90,
        sum(order_revenue) as revenue_total,
        sum(is_coupon_order) as coupon_orders,
        sum(is_feature_use) as feature_uses,
        sum(is_page_view) as page_views,
        sum(is_product_view) as product_views,
        sum(is_cart_add) as cart_adds,
        sum(is_search) as searches,
        sum(is_user_action) as user_actions
    from events_before_cutoff
    group by user_id, cutoff_at

)

select
    user_id,
    cutoff_at,
    first_active_at,
    last_active_at,
    {{ dbt.datediff('first_active_at', 'cutoff_at', 'second') }} / 86400.0e0 as tenure_days,
    {{ dbt.datediff('last_active_at', 'cutoff_at', 'second') }} / 86400.0e0 as recency_days,
    {{ dbt.datediff('first_active_at', 'last_active_at', 'second') }} / 86400.0e0 as active_span_days,
    events_total,
    active_days_total,
    sessions_total,
    {%- for days in [7, 28, 90] %}
    active_days_{{ days }},
    sessions_{{ days }},
    events_{{ days }},
    {%- endfor %}
    -- visits per week over the user's active span (at least a week), so a lapsed user keeps its habit's rate
    active_days_total * 7.0e0
        / greatest({{ dbt.datediff('first_active_at', 'last_active_at', 'second') }} / 86400.0e0, 7.0e0)
        as active_days_per_week,
    cast(sessions_total as double) / active_days_total as sessions_per_active_day,
    cast(events_total as double) / sessions_total as events_per_session,
    session_seconds_total / 60.0e0 / sessions_total as avg_session_minutes,
    orders_total,
    orders_90,
    cast(orders_total as double) / sessions_total as orders_per_session,
    revenue_total,
    case when orders_total > 0 then revenue_total / orders_total else 0 end as avg_order_value,
    case when orders_total > 0 then cast(coupon_orders as double) / orders_total else 0 end as coupon_order_share,
    cast(feature_uses as double) / greatest(user_actions, 1) as feature_use_share,
    cast(page_views as double) / greatest(user_actions, 1) as page_view_share,
    cast(product_views as double) / greatest(user_actions, 1) as product_view_share,
    cast(cart_adds as double) / greatest(user_actions, 1) as cart_add_share,
    cast(searches as double) / greatest(user_actions, 1) as search_share,
    -- recent pace against the longer window's pace; 1 = steady, below 1 = slowing down (+1 smooths small counts)
    (active_days_7 + 1.0e0) / (active_days_28 * 7.0e0 / 28 + 1.0e0) as trend_7_28,
    (active_days_28 + 1.0e0) / (active_days_90 * 28.0e0 / 90 + 1.0e0) as trend_28_90
from per_user
{%- endmacro %}


{#- The features a cluster profile shows (means of its members), in order: marts.cluster_profiles averages them and
    marts.cluster_feature_index compares each cluster's mean with all clustered users'. -#}
{% macro cluster_profile_features() -%}
    {{ return([
        'active_days_per_week', 'sessions_per_active_day', 'events_per_session', 'avg_session_minutes',
        'active_days_28', 'tenure_days', 'recency_days', 'active_span_days', 'orders_total', 'orders_per_session',
        'avg_order_value', 'revenue_total', 'coupon_order_share', 'feature_use_share', 'page_view_share',
        'product_view_share', 'cart_add_share', 'search_share', 'trend_28_90',
    ]) }}
{%- endmacro %}


{#- The numeric features of ml_user_features, in order (ml/features.py CHURN_FEATURES is the same list; a test
    holds them equal): int_experiment_user_features carries them all as CUPAC's covariates. -#}
{% macro ml_feature_names() -%}
    {{ return([
        'tenure_days', 'recency_days', 'active_span_days', 'events_total', 'active_days_total', 'sessions_total',
        'active_days_7', 'sessions_7', 'events_7', 'active_days_28', 'sessions_28', 'events_28', 'active_days_90',
        'sessions_90', 'events_90', 'active_days_per_week', 'sessions_per_active_day', 'events_per_session',
        'avg_session_minutes', 'orders_total', 'orders_90', 'orders_per_session', 'revenue_total', 'avg_order_value',
        'coupon_order_share', 'feature_use_share', 'page_view_share', 'product_view_share', 'cart_add_share',
        'search_share', 'trend_7_28', 'trend_28_90',
    ]) }}
{%- endmacro %}
