-- The mix of each user's behaviour at as_of, one row per user, dimension and category: which actions, features,
-- pages, devices, times of day and days of the week its activity falls on, and how often its orders use a coupon.
-- Categories are client values: per dimension the var ml_mix_max_categories most used ones are kept and the rest
-- fold into '(other)', so a client cannot add columns to the clustering. Every user gets a row for every category
-- of every dimension (0 events where it has none), and a share shrunk towards the population's by empirical Bayes:
-- one event does not make a user extreme, a hundred events speak for themselves.
with user_category_counts as (

    select user_id, dimension, category, events from {{ ref('int_user_mix_counts') }}

),

category_ranks as (

    select
        dimension,
        category,
        row_number() over (partition by dimension order by sum(events) desc, category) as category_rank
    from user_category_counts
    group by dimension, category

),

folded_counts as (

    select
        user_category_counts.user_id,
        user_category_counts.dimension,
        case
            when category_ranks.category_rank > {{ var('ml_mix_max_categories') }} then '(other)'
            else user_category_counts.category
        end as category,
        user_category_counts.events
    from user_category_counts
    inner join category_ranks
        on user_category_counts.dimension = category_ranks.dimension
        and user_category_counts.category = category_ranks.category

),

user_category_events as (

    select user_id, dimension, category, sum(events) as events
    from folded_counts
    group by user_id, dimension, category

),

population_events as (

    select dimension, category, sum(events) as events
    from user_category_events
    group by dimension, category

),

population_shares as (

    select
        dimension,
        category,
        events * 1.0e0 / sum(events) over (partition by dimension) as population_share
    from population_events

),

mixed_users as (

    select distinct user_id from {{ ref('int_feature_events') }}

),

user_category_grid as (

    select
        mixed_users.user_id,
        population_shares.dimension,
        population_shares.category,
        population_shares.population_share,
        coalesce(user_category_events.events, 0) as events
    from mixed_users
    cross join population_shares
    left join user_category_events
        on mixed_users.user_id = user_category_events.user_id
        and population_shares.dimension = user_category_events.dimension
        and population_shares.category = user_category_events.category

),

grid_with_totals as (

    select
        *,
        sum(events) over (partition by user_id, dimension) as dimension_events
    from user_category_grid

),

user_distances as (

    -- squared distance of each user's raw shares from the population's, for users with 2 or more events
    select
        dimension,
        user_id,
        dimension_events,
        sum(power(events * 1.0e0 / dimension_events - population_share, 2)) as squared_distance
    from grid_with_totals
    where dimension_events >= 2
    group by dimension, user_id, dimension_events

),

dimension_diversity as (

    -- expected squared distance of one event's category from the population mix (Gini-Simpson index)
    select dimension, 1 - sum(power(population_share, 2)) as diversity
    from population_shares
    group by dimension

),

dimension_moments as (

    select
        dimension_diversity.dimension,
        dimension_diversity.diversity,
        avg(user_distances.squared_distance) as mean_squared_distance,
        avg(1.0e0 / user_distances.dimension_events) as mean_inverse_events
    from dimension_diversity
    left join user_distances on dimension_diversity.dimension = user_distances.dimension
    group by dimension_diversity.dimension, dimension_diversity.diversity

),

prior_strengths as (

    -- Dirichlet-multinomial method of moments: E[distance] = D/n + (1 - 1/n) * D / (m + 1) over users with n
    -- events, D the diversity; solved for the prior strength m (in events), clamped to its vars' range
    -- rounded: the averages above are sums of doubles in whatever order the threads add them, and a last-bit
    -- difference would change every shrunk share from one rebuild to the next
    select
        dimension,
        round(case
            when diversity <= 0 or mean_squared_distance is null then {{ var('ml_mix_prior_max_events') }}
            else least(greatest(
                1.0e0 / greatest(
                    (mean_squared_distance - diversity * mean_inverse_events) / (diversity * (1 - mean_inverse_events)),
                    1e-9
                ) - 1,
                {{ var('ml_mix_prior_min_events') }}
            ), {{ var('ml_mix_prior_max_events') }})
        end, 6) as prior_events
    from dimension_moments

)

select
    grid_with_totals.user_id,
    as_of_point.as_of as cutoff_at,
    grid_with_totals.dimension,
    grid_with_totals.category,
    grid_with_totals.events,
    grid_with_totals.dimension_events,
    case
        when grid_with_totals.dimension_events > 0
            then grid_with_totals.events * 1.0e0 / grid_with_totals.dimension_events
    end as share,
    grid_with_totals.population_share,
    prior_strengths.prior_events,
    (grid_with_totals.events + prior_strengths.prior_events * grid_with_totals.population_share)
        / (grid_with_totals.dimension_events + prior_strengths.prior_events) as shrunk_share
from grid_with_totals
inner join prior_strengths on grid_with_totals.dimension = prior_strengths.dimension
cross join {{ ref('int_as_of') }} as as_of_point
