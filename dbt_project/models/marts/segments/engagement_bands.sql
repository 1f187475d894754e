-- Users per lifecycle stage and engagement band (seed engagement_band_thresholds), every band of every stage listed.
with bands as (

    select
        band_order,
        min_score,
        band,
        lead(min_score) over (order by min_score) as next_min_score
    from {{ ref('engagement_band_thresholds') }}

),

stages as (

    select distinct lifecycle_stage from {{ ref('user_segments') }}

),

users_in_bands as (

    select segments.lifecycle_stage, bands.band_order, count(*) as users
    from {{ ref('user_segments') }} as segments
    inner join bands
        on segments.engagement_score >= bands.min_score
        and (bands.next_min_score is null or segments.engagement_score < bands.next_min_score)
    group by segments.lifecycle_stage, bands.band_order

)

select
    stages.lifecycle_stage,
    bands.band_order,
    bands.band,
    bands.min_score,
    coalesce(users_in_bands.users, 0) as users
from stages
cross join bands
left join users_in_bands
    on stages.lifecycle_stage = users_in_bands.lifecycle_stage and bands.band_order = users_in_bands.band_order
