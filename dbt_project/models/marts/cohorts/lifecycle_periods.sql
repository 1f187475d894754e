-- marts.lifecycle with one row per grain and period: a column per status (zeros filled) and the quick ratio.
with statuses as (

    select
        grain,
        period_start,
        sum(case when status = 'new' then users else 0 end) as new_users,
        sum(case when status = 'returning' then users else 0 end) as returning_users,
        sum(case when status = 'resurrecting' then users else 0 end) as resurrecting_users,
        sum(case when status = 'dormant' then users else 0 end) as dormant_users
    from {{ ref('lifecycle') }}
    group by grain, period_start

)

select
    grain,
    period_start,
    new_users,
    returning_users,
    resurrecting_users,
    dormant_users,
    -- growth against loss: (new + resurrecting) / dormant, null while nobody went dormant
    (new_users + resurrecting_users) * 1.0e0 / nullif(dormant_users, 0) as quick_ratio
from statuses
