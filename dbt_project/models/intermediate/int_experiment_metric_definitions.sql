-- One row per experiment and metric that the experiment statistics read: the rows of seed experiment_metrics, and
-- for an experiment exposed users saw that has no row there, a default metric (better than no decision at all):
-- conversion to the experiment's goal event within its window (seed experiments or its defaults, order_completed
-- and 7 days), primary, increase, with a 28-day pre-period for CUPED. Defaults go only to the experiments
-- int_experiment_variants keeps by name, so a client's flood of experiment ids adds at most
-- var experiment_max_unplanned_experiments of them.
with seed_metrics as (

    select
        experiment_id,
        metric,
        kind,
        event_name,
        denominator_event,
        window_days,
        period_days,
        period_index,
        cap_percentile,
        pre_period_days,
        role,
        direction,
        tolerance
    from {{ ref('experiment_metrics') }}

),

experiments_without_metrics as (

    select distinct variants.experiment_id, variants.goal_event, variants.window_days
    from {{ ref('int_experiment_variants') }} as variants
    left join seed_metrics on variants.experiment_id = seed_metrics.experiment_id
    where seed_metrics.experiment_id is null and variants.experiment_id <> '(other unplanned)'

)

select * from seed_metrics

union all

select
    experiment_id,
    'conversion' as metric,
    'conversion' as kind,
    goal_event as event_name,
    cast(null as {{ dbt.type_string() }}) as denominator_event,
    cast(window_days as {{ dbt.type_int() }}) as window_days,
    cast(null as {{ dbt.type_int() }}) as period_days,
    cast(null as {{ dbt.type_int() }}) as period_index,
    cast(null as double) as cap_percentile,
    cast(28 as {{ dbt.type_int() }}) as pre_period_days,
    'primary' as role,
    'increase' as direction,
    cast(null as double) as tolerance
from experiments_without_metrics
