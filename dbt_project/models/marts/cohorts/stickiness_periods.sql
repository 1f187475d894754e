-- One row per grain and period of marts.stickiness: its active users and their average number of active days.
select
    grain,
    period_start,
    max(active_users) as active_users,
    sum(active_days * users_exactly) as active_days_total,
    sum(active_days * users_exactly) * 1.0e0 / nullif(max(active_users), 0) as avg_active_days,
    min(case when is_complete then 1 else 0 end) = 1 as is_complete
from {{ ref('stickiness') }}
group by grain, period_start
