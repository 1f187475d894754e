-- What the recommendation model learns from: one row per user, product and day with the user's product events
-- and their weight (var recommendation_interaction_weights: an order says more about wanting a product than a view).
{%- set weights = var('recommendation_interaction_weights') %}
with interactions as (

    select * from {{ ref('int_product_interactions') }}

)

select
    user_id,
    product_id,
    activity_date,
    sum(events) as events,
    sum(
        events * case event_name
            {% for name, weight in weights.items() -%}
            when '{{ name }}' then {{ weight }}
            {% endfor -%}
            else 0
        end
    ) as interaction_weight,
    max(last_event_at) as last_event_at
from interactions
group by user_id, product_id, activity_date
