-- The point in time every mart is computed at: var as_of when set, else the latest event loaded.
with latest_event as (

    select max(event_at) as latest_event_at from {{ ref('stg_events') }}

),

resolved as (

    select
        {% if var('as_of') -%}
        cast('{{ var("as_of") }}' as timestamp)
        {%- else -%}
        latest_event_at
        {%- endif %} as as_of,
        latest_event_at
    from latest_event

)

select
    as_of,
    {{ to_reporting_time('as_of') }} as as_of_local,
    cast({{ to_reporting_time('as_of') }} as date) as as_of_date,
    latest_event_at
from resolved
