-- One row per behavioural cluster of the champion clustering model (ml.user_clusters): its size and the mean
-- features of its members at as_of. Empty until a clustering model has been trained.
with clusters as (

    select * from {{ source('ml', 'user_clusters') }}

),

features as (

    select * from {{ ref('ml_user_features') }}

),

members as (

    select clusters.cluster_id, clusters.cluster_name, clusters.model_version, features.*
    from clusters
    inner join features on clusters.user_id = features.user_id

),

profiles as (

    select
        cluster_id,
        max(cluster_name) as cluster_name,
        max(model_version) as model_version,
        count(*) as users,
        avg(active_days_per_week) as active_days_per_week,
        avg(sessions_per_active_day) as sessions_per_active_day,
        avg(events_per_session) as events_per_session,
        avg(avg_session_minutes) as avg_session_minutes,
        avg(active_days_28) as active_days_28,
        avg(tenure_days) as tenure_days,
        avg(recency_days) as recency_days,
        avg(active_span_days) as active_span_days,
        avg(orders_total) as orders_total,
        avg(orders_per_session) as orders_per_session,
        avg(avg_order_value) as avg_order_value,
        avg(revenue_total) as revenue_total,
        avg(coupon_order_share) as coupon_order_share,
        avg(feature_use_share) as feature_use_share,
        avg(page_view_share) as page_view_share,
        avg(product_view_share) as product_view_share,
        avg(cart_add_share) as cart_add_share,
        avg(search_share) as search_share,
        avg(trend_28_90) as trend_28_90
    from members
    group by cluster_id

)

select
    cluster_id,
    cluster_name,
    model_version,
    users,
    cast(users as double) / sum(users) over () as share_of_users,
    active_days_per_week,
    sessions_per_active_day,
    events_per_session,
    avg_session_minutes,
    active_days_28,
    tenure_days,
    recency_days,
    active_span_days,
    orders_total,
    orders_per_session,
    avg_order_value,
    revenue_total,
    coupon_order_share,
    feature_use_share,
    page_view_share,
    product_view_share,
    cart_add_share,
    search_share,
    trend_28_90
from profiles
