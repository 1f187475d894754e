-- Average retention curve per grain: weighted over complete cells only, i.e. total retained users divided by
-- the total users of cohorts that have completed period k (not a mean of cohort rates, not padded with zeros).
select
    grain,
    period_number,
    count(*) as cohorts,
    sum(cohort_size) as users_completed,
    sum(retained_users) as retained_users,
    sum(retained_users) * 1.0 / sum(cohort_size) as retention_rate,
    sum(retained_users_unbounded) as retained_users_unbounded,
    sum(retained_users_unbounded) * 1.0 / sum(cohort_size) as retention_rate_unbounded
from {{ ref('cohort_retention') }}
where is_complete
group by grain, period_number
