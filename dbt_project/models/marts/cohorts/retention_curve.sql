-- Average retention curve per grain over every cohort: weighted over complete cells only, i.e. total retained
-- users divided by the total users of cohorts that have completed period k (not a mean of cohort rates, not padded
-- with zeros): the sum of marts.retention_curve_cells.
select
    grain,
    period_number,
    count(*) as cohorts,
    sum(users_completed) as users_completed,
    sum(retained_users) as retained_users,
    sum(retained_users) * 1.0e0 / sum(users_completed) as retention_rate,
    sum(retained_users_unbounded) as retained_users_unbounded,
    sum(retained_users_unbounded) * 1.0e0 / sum(users_completed) as retention_rate_unbounded
from {{ ref('retention_curve_cells') }}
group by grain, period_number
