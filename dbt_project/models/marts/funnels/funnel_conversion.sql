-- Funnel conversion per funnel, cohort grain and period (day, week, month of entering; 'all' = the whole history,
-- labelled by the funnel's first entry day), breakdown value ('(all)' = everyone) and step: users reaching the step,
-- conversion from the previous step and from step 1, and the time it took. Dense: every step of every cohort and
-- breakdown value, zeros included. Entries whose conversion window is still open at as_of are counted and flagged
-- (is_complete false), as the retention marts do; entries an exclusion disqualified are left out and counted.
with as_of_point as (

    select as_of from {{ ref('int_as_of') }}

),

definitions as (

    select * from {{ ref('int_funnel_definitions') }}
    where config_error is null

),

journeys as (

    select
        journeys.*,
        cast({{ to_reporting_time('journeys.entered_at') }} as date) as entered_date
    from {{ ref('int_funnel_journeys') }} as journeys

),

funnel_users as (

    select distinct funnel_id, user_id from journeys

),

user_breakdown_values as (

    -- breakdowns that belong to the user rather than to an event: the value today
    select
        funnel_users.funnel_id,
        funnel_users.user_id,
        case definitions.breakdown_kind
            when 'user' then case definitions.breakdown_field
                {%- for column in funnel_user_breakdown_columns() %}
                when '{{ column }}' then cast(users.{{ column }} as {{ dbt.type_string() }})
                {%- endfor %}
            end
            when 'rfm_segment' then segments.rfm_segment
            when 'cluster' then clusters.cluster_name
            when 'variant' then exposures.variant
        end as breakdown_value
    from funnel_users
    inner join definitions on funnel_users.funnel_id = definitions.funnel_id
    left join {{ ref('int_users') }} as users on funnel_users.user_id = users.user_id
    left join {{ ref('user_segments') }} as segments on funnel_users.user_id = segments.user_id
    left join {{ source('ml', 'user_clusters') }} as clusters on funnel_users.user_id = clusters.user_id
    left join {{ ref('int_experiment_exposures') }} as exposures
        on funnel_users.user_id = exposures.user_id
        and definitions.breakdown_kind = 'variant'
        and exposures.experiment_id = definitions.breakdown_field
    where definitions.breakdown_kind in ('user', 'rfm_segment', 'cluster', 'variant')

),

valued_journeys as (

    select
        journeys.*,
        definitions.breakdown_kind,
        coalesce(journeys.breakdown_value, user_breakdown_values.breakdown_value, '(none)') as raw_breakdown_value
    from journeys
    inner join definitions on journeys.funnel_id = definitions.funnel_id
    left join user_breakdown_values
        on journeys.funnel_id = user_breakdown_values.funnel_id
        and journeys.user_id = user_breakdown_values.user_id

),

label_ranks as (

    -- per funnel, the var label_max_values values with the most users keep a row; the rest are '(other)'
    select
        funnel_id,
        raw_breakdown_value,
        raw_breakdown_value = '(other)'
            or (raw_breakdown_value not in ('(none)', '(invalid)', '(not reached)')
                and row_number() over (
                    partition by funnel_id, raw_breakdown_value in ('(none)', '(invalid)', '(not reached)')
                    order by count(distinct user_id) desc, raw_breakdown_value
                ) > {{ var('label_max_values') }}) as is_folded
    from valued_journeys
    where breakdown_kind <> 'none'
    group by funnel_id, raw_breakdown_value

),

broken_down as (

    -- every journey step twice: under '(all)' and under its breakdown value (funnels with a breakdown)
    select valued_journeys.*, '(all)' as breakdown_value_or_all
    from valued_journeys

    union all

    select
        valued_journeys.*,
        case when label_ranks.is_folded then '(other)' else valued_journeys.raw_breakdown_value end
    from valued_journeys
    inner join label_ranks
        on valued_journeys.funnel_id = label_ranks.funnel_id
        and valued_journeys.raw_breakdown_value = label_ranks.raw_breakdown_value

),

in_cohorts as (

    {%- for grain in ['all', 'day', 'week', 'month'] %}
    select
        broken_down.*,
        '{{ grain }}' as grain,
        {%- if grain == 'all' %}
        min(entered_date) over (partition by funnel_id) as cohort_start
        {%- else %}
        cast({{ dbt.date_trunc(grain, 'entered_date') }} as date) as cohort_start
        {%- endif %}
    from broken_down
    where {{ 'is_first_entry' if grain == 'all' else 'is_' ~ grain ~ '_entry' }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

cohort_totals as (

    select
        funnel_id,
        grain,
        cohort_start,
        breakdown_value_or_all as breakdown_value,
        cast(sum(case when is_excluded then 1 else 0 end) as {{ dbt.type_bigint() }}) as excluded_users,
        cast(sum(case when not is_excluded and window_ends_at > as_of_point.as_of then 1 else 0 end) as {{ dbt.type_bigint() }})
            as users_window_open
    from in_cohorts
    cross join as_of_point
    where step_number = 1
    group by funnel_id, grain, cohort_start, breakdown_value_or_all

),

step_counts as (

    select
        funnel_id,
        grain,
        cohort_start,
        breakdown_value_or_all as breakdown_value,
        step_number,
        count(*) as users,
        {{ percentile_cont('seconds_from_previous', 0.5) }} as median_seconds_from_previous,
        {{ percentile_cont('seconds_from_previous', 0.25) }} as p25_seconds_from_previous,
        {{ percentile_cont('seconds_from_previous', 0.75) }} as p75_seconds_from_previous,
        {{ percentile_cont('seconds_from_previous', 0.9) }} as p90_seconds_from_previous,
        {{ percentile_cont('seconds_from_entry', 0.5) }} as median_seconds_from_entry
    from in_cohorts
    where not is_excluded
    group by funnel_id, grain, cohort_start, breakdown_value_or_all, step_number

),

step_filters as (

    select
        steps.funnel_id,
        steps.step_number,
        max(steps.event_name) as event_name,
        -- (Spark's form gives '' where DuckDB's gives null: no filters)
        nullif({{ sorted_text_agg(dbt.concat([
            'steps.property', "' '", 'steps.operator', "coalesce(" ~ dbt.concat(["' '", 'steps.value']) ~ ", '')"
        ])) }}, '') as filter_text
    from {{ ref('int_funnel_step_definitions') }} as steps
    inner join definitions on steps.funnel_id = definitions.funnel_id
    where steps.step_kind = 'step'
    group by steps.funnel_id, steps.step_number

),

steps as (

    -- a step's name: its event and filters (any order: "k of n steps")
    select
        step_filters.funnel_id,
        step_filters.step_number,
        case
            when definitions.ordering = 'any' then {{ dbt.concat([
                "cast(step_filters.step_number as " ~ dbt.type_string() ~ ")", "' of '",
                "cast(definitions.step_count as " ~ dbt.type_string() ~ ")", "' steps'"]) }}
            else {{ dbt.concat([
                'step_filters.event_name',
                "coalesce(" ~ dbt.concat(["' ('", 'step_filters.filter_text', "')'"]) ~ ", '')"]) }}
        end as step_name
    from step_filters
    inner join definitions on step_filters.funnel_id = definitions.funnel_id

),

dense as (

    select
        cohort_totals.*,
        steps.step_number,
        steps.step_name,
        coalesce(step_counts.users, 0) as users,
        step_counts.median_seconds_from_previous,
        step_counts.p25_seconds_from_previous,
        step_counts.p75_seconds_from_previous,
        step_counts.p90_seconds_from_previous,
        step_counts.median_seconds_from_entry
    from cohort_totals
    inner join steps on cohort_totals.funnel_id = steps.funnel_id
    left join step_counts
        on cohort_totals.funnel_id = step_counts.funnel_id
        and cohort_totals.grain = step_counts.grain
        and cohort_totals.cohort_start = step_counts.cohort_start
        and cohort_totals.breakdown_value = step_counts.breakdown_value
        and steps.step_number = step_counts.step_number

),

with_conversion as (

    select
        dense.*,
        lag(users) over (
            partition by funnel_id, grain, cohort_start, breakdown_value order by step_number
        ) as previous_step_users,
        max(case when step_number = 1 then users end) over (
            partition by funnel_id, grain, cohort_start, breakdown_value
        ) as entered_users
    from dense

)

select
    with_conversion.funnel_id,
    definitions.description,
    definitions.ordering,
    definitions.conversion_window,
    definitions.window_unit,
    with_conversion.grain,
    with_conversion.cohort_start,
    definitions.breakdown,
    with_conversion.breakdown_value,
    with_conversion.step_number,
    with_conversion.step_name,
    with_conversion.users,
    with_conversion.entered_users,
    case
        when with_conversion.step_number = 1 then 1.0
        when with_conversion.previous_step_users > 0
            then cast(with_conversion.users as double) / with_conversion.previous_step_users
    end as conversion_from_previous,
    case
        when with_conversion.entered_users > 0 then cast(with_conversion.users as double) / with_conversion.entered_users
    end as conversion_from_first,
    with_conversion.median_seconds_from_previous,
    with_conversion.p25_seconds_from_previous,
    with_conversion.p75_seconds_from_previous,
    with_conversion.p90_seconds_from_previous,
    with_conversion.median_seconds_from_entry,
    with_conversion.excluded_users,
    with_conversion.users_window_open,
    with_conversion.users_window_open = 0 as is_complete
from with_conversion
inner join definitions on with_conversion.funnel_id = definitions.funnel_id
