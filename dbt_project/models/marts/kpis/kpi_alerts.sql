-- KPI values outside their expected band: for each complete day and KPI of var kpi_alert_kpis, the trailing
-- var kpi_alert_trailing_days (28) days before it give the expected value (mean) and the band mean +- k sd
-- (var kpi_alert_k); a day with fewer than var kpi_alert_min_history_days days of history is not judged.
-- The day holding as_of is left out unless as_of is its last second: a partial day is no drop.
with as_of_point as (

    select as_of, as_of_local, as_of_date from {{ ref('int_as_of') }}

),

complete_days as (

    select daily_kpis.*
    from {{ ref('daily_kpis') }} as daily_kpis
    cross join as_of_point
    where daily_kpis.activity_date < as_of_point.as_of_date
       or {{ dbt.datediff('as_of_point.as_of_date', 'as_of_point.as_of_local', 'second') }} >= 86399

),

kpi_values as (

    {% for kpi in var('kpi_alert_kpis') %}
    select activity_date, '{{ kpi }}' as kpi, cast({{ kpi }} as double) as value
    from complete_days
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

trailing_stats as (

    select
        activity_date,
        kpi,
        value,
        avg(value) over trailing_window as expected,
        stddev_samp(value) over trailing_window as trailing_sd,
        count(value) over trailing_window as history_days
    from kpi_values
    window trailing_window as (
        partition by kpi order by activity_date
        rows between {{ var('kpi_alert_trailing_days') }} preceding and 1 preceding
    )

),

banded as (

    select
        *,
        expected - {{ var('kpi_alert_k') }} * trailing_sd as band_low,
        expected + {{ var('kpi_alert_k') }} * trailing_sd as band_high
    from trailing_stats
    where history_days >= {{ var('kpi_alert_min_history_days') }}

)

select
    activity_date,
    kpi,
    value,
    expected,
    band_low,
    band_high,
    case when value > band_high then 'up' else 'down' end as direction,
    (value - expected) / nullif(trailing_sd, 0) as z_score,
    history_days
from banded
where value > band_high or value < band_low
