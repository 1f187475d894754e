-- Users who dropped off a funnel, as audiences the activation layer sends (one audience per funnel and step:
-- funnel_<funnel_id>_dropped_after_step_<n>). An entry that reached step n but not step n + 1 joins when its
-- conversion window ends (only windows ended by as_of: until then the user may still convert); entries an
-- exclusion disqualified are left out. With entry 'recurring' each daily entry is its own audience entry.
with as_of_point as (

    select as_of from {{ ref('int_as_of') }}

),

definitions as (

    select funnel_id, step_count from {{ ref('int_funnel_definitions') }}
    where config_error is null

)

select
    {{ dbt.concat(["'funnel_'", "journeys.funnel_id", "'_dropped_after_step_'",
                   "cast(journeys.step_number as " ~ dbt.type_string() ~ ")"]) }} as audience,
    journeys.user_id,
    journeys.window_ends_at as entered_at,
    cast(null as timestamp) as exited_at,
    journeys.funnel_id,
    journeys.step_number as dropped_after_step,
    journeys.entered_at as entered_funnel_at,
    journeys.reached_at as last_step_at
from {{ ref('int_funnel_journeys') }} as journeys
inner join definitions on journeys.funnel_id = definitions.funnel_id
cross join as_of_point
where journeys.is_day_entry
    and not journeys.is_excluded
    and journeys.step_number = journeys.last_step_number
    and journeys.last_step_number < definitions.step_count
    and journeys.window_ends_at <= as_of_point.as_of
