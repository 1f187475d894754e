-- Each user's interactions with each product per day (product views, adds to cart, orders naming
-- properties.product_id), kept per user so that a batch recounts only the users it touches
-- (macros/incremental_users.sql). Product ids are client values, bounded by json_label: '(invalid)' ones are left
-- out, so a flood of made-up ids costs rows of the user who sent them, never a key of their own elsewhere.
-- depends_on: {{ ref('stg_events') }}
{{ config(**per_user_incremental_config('int_product_interactions')) }}
{%- set weights = var('recommendation_interaction_weights') %}

with product_events as (

    select
        user_id,
        event_name,
        event_at,
        event_date,
        {{ json_label('properties', 'product_id') }} as product_id
    from {{ ref('int_activity_events') }}
    where event_name in ({% for name in weights %}'{{ name }}'{{ ", " if not loop.last }}{% endfor %})
    {% if is_incremental() %}
        and user_id in (select user_id from {{ users_in_scope() }})
    {% endif %}

)

select
    user_id,
    product_id,
    event_date as activity_date,
    event_name,
    count(*) as events,
    max(event_at) as last_event_at,
    {{ staged_through() }} as staged_through
from product_events
where product_id is not null and product_id <> '(invalid)'
group by user_id, product_id, event_date, event_name
