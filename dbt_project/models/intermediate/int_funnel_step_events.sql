-- Every event matching a funnel step or exclusion (seeds funnels and funnel_steps without a config_error), one row
-- per event and step it matches with all the step's filters (macro funnel_step_events): the events
-- int_funnel_journeys follows. On DuckDB a view, for analysts: int_funnel_journeys computes the same rows in memory,
-- once, for the users it recomputes (writing them to a table cost more than finding them). On Spark a table,
-- incremental per user (macros/incremental_users.sql; every user is recomputed when the funnel definitions change):
-- Spark inlines a CTE into every reader, and the journeys read the matched events a dozen times.
-- depends_on: {{ ref('stg_events') }}
{%- if target.type == 'spark' %}
{{ config(**per_user_incremental_config('int_funnel_step_events', definitions='funnels')) }}

select
    matched.*,
    ({{ definitions_fingerprint('funnels') }}) as definitions_hash,
    {{ staged_through() }} as staged_through
from ({{ funnel_step_events(users_in_scope() if is_incremental() else none) }}) as matched
{%- else %}
{{ config(materialized='view') }}

{{ funnel_step_events() }}
{%- endif %}
